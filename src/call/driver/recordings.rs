//! A call's recordings as its driver holds them: the one under way and
//! those whose files are being finished (the driver's actions on them are
//! in `recording.rs`).

use crate::media::record::{Ended, Recording};
use std::future::Future;
use std::pin::Pin;

/// A stopped recording whose file is being finished: its id and end.
pub(super) type Finishing = Pin<Box<dyn Future<Output = (String, Ended)> + Send>>;

/// A call's recordings. Boxed in `Call` and made at the first recording:
/// a call that records nothing pays one pointer.
#[derive(Default)]
pub(super) struct Recordings {
    /// The recording under way, and its id.
    pub current: Option<(String, Recording)>,
    /// Stopped ones, until their files are finished.
    pub finishing: Vec<Finishing>,
}

/// The next stopped recording's end; never while none is finishing.
pub(super) async fn finished(r: &mut Option<Box<Recordings>>) -> (String, Ended) {
    let Some(r) = r.as_mut().filter(|r| !r.finishing.is_empty()) else {
        return std::future::pending().await;
    };
    let (done, i, _) = futures_util::future::select_all(r.finishing.iter_mut()).await;
    drop(r.finishing.swap_remove(i));
    done
}
