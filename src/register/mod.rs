//! Registration to providers and PBXs (`[[registration]]`): each binding
//! is a sans-IO machine (`machine`) driven by a thin task (`task`) that
//! sends its REGISTERs through the SIP stack and tells the door
//! (`call::door::registered`) where the binding's INVITEs may come from;
//! `view` is what the API shows. `Registrations` is the set a node keeps.

pub mod machine;
mod task;
mod view;

pub use task::contact_user;
pub use view::RegistrationView;

use crate::call::door::registered::Registered;
use crate::config::RegistrationConfig;
use crate::sip::Stack;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

/// The node's bindings, one task each.
pub struct Registrations {
    items: Vec<(watch::Receiver<RegistrationView>, mpsc::Sender<bool>)>,
    tasks: std::sync::Mutex<JoinSet<()>>,
}

impl Registrations {
    /// Starts one task per registration; each registers at once.
    pub fn start(
        stack: &Stack,
        configs: &[RegistrationConfig],
        registered: &Registered,
    ) -> Registrations {
        let mut tasks = JoinSet::new();
        let mut items = Vec::new();
        for config in configs {
            let (view_tx, view_rx) = watch::channel(RegistrationView::new(&config.name));
            let (stop_tx, stop_rx) = mpsc::channel(1);
            let task = task::Task {
                stack: stack.clone(),
                config: config.clone(),
                registered: registered.clone(),
                view: view_tx,
                stop: stop_rx,
            };
            tasks.spawn(task.run());
            items.push((view_rx, stop_tx));
        }
        Registrations {
            items,
            tasks: std::sync::Mutex::new(tasks),
        }
    }

    /// Every binding as the API shows it, in config order.
    pub fn views(&self) -> Vec<RegistrationView> {
        self.items.iter().map(|(v, _)| v.borrow().clone()).collect()
    }

    /// Ends every binding's task: removing the bindings first when
    /// `unregister` (a drain), keeping them otherwise (a resume-mode stop:
    /// the next start registers again at once). Waits `within` at most;
    /// true when all ended.
    pub async fn stop(&self, unregister: bool, within: Duration) -> bool {
        for (_, stop) in &self.items {
            let _ = stop.try_send(unregister);
        }
        let mut tasks = match self.tasks.lock() {
            Ok(mut t) => std::mem::take(&mut *t),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        };
        let all = async { while tasks.join_next().await.is_some() {} };
        tokio::time::timeout(within, all).await.is_ok()
    }
}
