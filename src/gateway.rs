//! Wires the layers together: loads the hold music, starts media, SIP, the
//! API, and the loop that hands each new INVITE to a call driver.

use crate::api::{self, Api, AudioCache, ServeError};
use crate::call::door::admission::{Admission, DoorConfig};
use crate::call::door::registered::Registered;
use crate::call::driver::{self, Ctx};
use crate::call::{
    EntryBook, EntryError, EventFeed, NodeCalls, Registry, SavedCalls, config_entries,
};
use crate::clock::Clock;
use crate::cluster::{self, Cluster, ClusterError};
use crate::codec::AudioCodec;
use crate::config::{Config, ConfigError};
use crate::confine::{MediaDir, Origin, UrlPolicy};
use crate::hep::{self, Hep};
use crate::media::{HoldError, HoldLoop, MediaEngine, MediaError, MediaSettings};
use crate::provisioning::Provisioning;
use crate::provisioning::sync::EntrySync;
use crate::register::Registrations;
use crate::sip::limits::MessageLimits;
use crate::sip::tls;
use crate::sip::{IncomingInvite, Stack, StackConfig, StackError};
use crate::store::{Store, StoreError};
use crate::webhook::{self, RetryPolicy};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

/// Longest wait for the registrars to answer the removal of our bindings.
const REGISTRATIONS_WITHIN: Duration = Duration::from_secs(5);

/// Why the gateway could not start. Each says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Hold(#[from] HoldError),
    #[error(transparent)]
    Media(#[from] MediaError),
    #[error(transparent)]
    Sip(#[from] StackError),
    #[error(transparent)]
    Api(#[from] ServeError),
    #[error(transparent)]
    Entry(#[from] EntryError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// `[cluster]` cannot be used.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// `state_dir` could not be used.
    #[error("node.state_dir {path}: {reason}")]
    State { path: String, reason: String },
}

/// A running gateway. It owns its background tasks (the API server, the
/// INVITE accept loop, the cluster's): `shutdown` asks them to stop,
/// `tasks_done` waits for them, and dropping the gateway aborts those
/// still running. Calls are not among them: a call's driver runs until
/// the call ends or is saved (see `lifecycle`).
pub struct Gateway {
    pub sip_udp: Option<SocketAddr>,
    pub sip_tcp: Option<SocketAddr>,
    pub sip_tls: Option<SocketAddr>,
    pub api: SocketAddr,
    pub call_domain: String,
    pub registry: Registry,
    stop: watch::Sender<bool>,
    node: Arc<NodeCalls>,
    admission: Arc<Admission>,
    stack: Stack,
    /// Bindings at registrars: removed on a drain, kept on a resume stop.
    registrations: Arc<Registrations>,
    /// Voice bots' stream tasks (a stop lets them say `stop`).
    streams: crate::stream::StreamTasks,
    /// The gateway's own tasks; taken by `tasks_done`.
    tasks: std::sync::Mutex<JoinSet<()>>,
}

impl Gateway {
    /// Starts everything the config describes.
    pub async fn start(config: Config) -> Result<Gateway, StartError> {
        let store = Arc::new(Store::open(&config.node.state_dir)?);
        let call_domain = call_domain(&config, &store)?;
        let max_hold = config.hold.max_hold;
        let fixed = config_entries(&config.dialin, &config.node.state_dir, max_hold)?;
        let music = HoldLoop::load(&config.hold.music)?;
        // A node that speaks Opus encodes its clips for it once, now (see
        // `media::hold`); the others never pay for it.
        let opus = config.media.codecs.contains(&AudioCodec::Opus);
        if opus {
            music.prepare_opus();
            crate::media::prompts::PromptSet::bundled().prepare_opus();
            fixed.iter().for_each(|e| e.prepare_opus());
        }
        let entries = EntryBook::new(fixed, &store.entries()?, max_hold);
        let media_settings = MediaSettings::from_config(&config);
        // A bot silent (not even a pong) as long as a dead RTP peer is gone.
        let streams = crate::stream::Upkeep {
            idle: media_settings.rtp_timeout,
            tasks: Default::default(),
        };
        let stream_tasks = streams.tasks.clone();
        let media = Arc::new(MediaEngine::start(music, media_settings)?);
        // One trust for TLS room legs and voice bots' wss:// streams.
        let tls_client = tls_connector(&config)?;
        let (stack, invites) = Stack::start(StackConfig {
            udp: config.sip.udp,
            tcp: config.sip.tcp,
            tls: tls_listener(&config)?,
            tls_connector: Some(tls_client.clone()),
            public_host: config.sip.public_host.clone(),
            invite_queue: 1024,
        })
        .await?;
        // Before any call (resumed ones included) makes its ladder.
        let hep = hep_sender(&config.hep);
        if let Some(hep) = &hep {
            stack.set_hep(hep.clone());
        }
        // Calls an earlier run left up: the clock goes on from theirs, and
        // until their dialogs are back the layer stays silent (not 481)
        // on requests for them, so peers retransmit.
        let saved = SavedCalls::load(&store)?;
        if !saved.is_empty() {
            stack.set_resuming(true);
        }
        let registry = Registry::default();
        // Redis is not waited for: a node starts, and takes calls with its
        // own copy of the entries, while Redis is down.
        let cluster = if config.cluster.enabled() {
            let started = crate::clock::unix_ms();
            Some(Arc::new(Cluster::new(
                &config.cluster,
                &call_domain,
                started,
            )?))
        } else {
            None
        };
        let node = Arc::new(NodeCalls::default());
        let feed = Arc::new(EventFeed::new(crate::clock::unix_ms()));
        let clock = Clock::starting_at(saved.clock_start(crate::clock::unix_ms()));
        let urls = UrlPolicy {
            allow_private: config.api.allow_private_urls,
        };
        let media_dir = match &config.api.media_dir {
            Some(dir) => MediaDir::new(dir).map_err(|e| {
                ConfigError::key("api.media_dir", format!("{}: {e}", dir.display()))
            })?,
            None => MediaDir::none(),
        };
        let recordings_dir = config.recording.dir_in(&config.node.state_dir);
        std::fs::create_dir_all(&recordings_dir).map_err(|e| {
            ConfigError::key(
                "recording.dir",
                format!("{}: {e}", recordings_dir.display()),
            )
        })?;
        let webhooks = webhook::Sender::new(RetryPolicy::default(), urls);
        let ctx = Arc::new(Ctx {
            stack: stack.clone(),
            store: store.clone(),
            events: webhooks.with_policy(RetryPolicy::events()),
            webhooks,
            registry: registry.clone(),
            call_domain: call_domain.clone(),
            media: media.clone(),
            clock,
            node: node.clone(),
            feed: feed.clone(),
            stream_tls: tls_client,
            streams,
            urls,
            recordings_dir,
        });
        // Static URIs handed out by the provisioning API name this node's
        // SIP port unless it is the default.
        let port = stack.udp_addr().or(stack.tcp_addr()).map(|a| a.port());
        let sip_host = match port {
            Some(p) if p != 5060 => format!("{}:{p}", config.sip.public_host),
            _ => config.sip.public_host.clone(),
        };
        let registered = Registered::default();
        let door = DoorConfig {
            registered: registered.clone(),
            invites_per_sec_per_ip: config.limits.invites_per_sec_per_ip,
            realm: config.sip.public_host.clone(),
            limits: MessageLimits {
                max_message_bytes: config.limits.max_message_bytes,
                max_headers: config.limits.max_headers,
                max_header_line_bytes: config.limits.max_header_line_bytes,
            },
            max_calls: config.limits.max_calls,
        };
        let admission = Arc::new(Admission::new(door, entries.clone(), media, node.clone()));
        let probed = admission.clone();
        stack.set_busy_probe(Box::new(move || probed.busy()));
        // Registered once the API can show it; calls that come through a
        // binding meet the door above.
        let registrations = Arc::new(Registrations::start(
            &stack,
            &config.registration,
            &registered,
        ));
        let api_state = Arc::new(Api {
            hep: hep.as_ref().map(Hep::stats),
            registrations: registrations.clone(),
            admission: admission.stats.clone(),
            registry: registry.clone(),
            call_domain: call_domain.clone(),
            tokens: config.api.bearer_tokens.clone(),
            media: ctx.media.stats().clone(),
            provisioning: Provisioning {
                store: store.clone(),
                entries: entries.clone(),
                config_entries: config.dialin.clone(),
                verifier: ctx
                    .webhooks
                    .with_policy(RetryPolicy::verification())
                    .for_origin(Origin::ApiClient),
                files: media_dir.clone(),
                urls,
                sip_host,
                cluster: cluster.clone(),
            },
            node: node.clone(),
            cluster: cluster.clone(),
            feed: feed.clone(),
            audio: AudioCache::new(media_dir, urls, opus),
            urls,
        });
        // Calls of the last run first: the API (and /readyz) answers only
        // once they are taken over.
        if !saved.is_empty() {
            let (resumed, failed) = saved.resume(&ctx, &entries, &admission).await;
            stack.set_resuming(false);
            tracing::info!(
                resumed,
                not_resumed = failed,
                "calls of the last run taken over"
            );
        }
        let (stop, stopped) = watch::channel(false);
        let api_addr = config.api.listen;
        let mut api_stop = stopped.clone();
        let (api_bound, server) = api::serve(api_state, api_addr, async move {
            let _ = api_stop.wait_for(|s| *s).await;
            // Event streams never end by themselves: end them, or the
            // server's graceful stop would wait for them.
            feed.close();
        })?;
        let mut tasks = JoinSet::new();
        tasks.spawn(server);
        if let Some(cluster) = cluster {
            join_cluster(cluster, &registry, &store, &entries, &stopped, &mut tasks).await;
        }
        if config.recording.retention_days > 0 {
            tasks.spawn(api::recording_retention(
                store.clone(),
                config.recording.retention_days,
            ));
        }
        tasks.spawn(accept_loop(ctx, invites, admission.clone(), stopped));
        tracing::info!(
            udp = ?stack.udp_addr(), tcp = ?stack.tcp_addr(), tls = ?stack.tls_addr(), api = %api_bound, %call_domain,
            "pinless is up"
        );
        Ok(Gateway {
            sip_udp: stack.udp_addr(),
            sip_tcp: stack.tcp_addr(),
            sip_tls: stack.tls_addr(),
            api: api_bound,
            call_domain,
            registry,
            stop,
            node,
            admission,
            streams: stream_tasks,
            stack,
            registrations,
            tasks: std::sync::Mutex::new(tasks),
        })
    }

    /// Stops taking new calls and stops the API.
    pub fn shutdown(&self) {
        let _ = self.stop.send(true);
    }

    /// After `shutdown`: waits until the gateway's own tasks have ended
    /// (the API server answers the requests it has, then stops), or
    /// `within` passes; true when all ended. A task that panicked is
    /// logged.
    pub async fn tasks_done(&self, within: Duration) -> bool {
        let mut tasks = match self.tasks.lock() {
            Ok(mut t) => std::mem::take(&mut *t),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        };
        let all = async {
            while let Some(ended) = tasks.join_next().await {
                if let Err(e) = ended
                    && e.is_panic()
                {
                    tracing::error!(error = %e, "a gateway task panicked");
                }
            }
        };
        tokio::time::timeout(within, all).await.is_ok()
    }

    /// Ends the registrations: removing the bindings at their registrars
    /// (a drain) or keeping them for the next start (a resume stop).
    /// Bounded by `REGISTRATIONS_WITHIN`; false when one did not end.
    pub async fn stop_registrations(&self, unregister: bool) -> bool {
        self.registrations
            .stop(unregister, REGISTRATIONS_WITHIN)
            .await
    }

    /// The first step of a stop: from now on INVITEs and OPTIONS get 503
    /// and `/readyz` 503; live calls keep full service.
    pub fn stop_taking_calls(&self) {
        self.node.start_draining();
        // OPTIONS 503 too, so a dispatcher in front moves traffic at once.
        self.stack.set_draining(true);
    }

    /// Calls whose driver still runs: ringing, live, or writing its record.
    pub fn calls_running(&self) -> usize {
        self.admission.calls()
    }

    /// Hangs up every live call, reason `shutdown`.
    pub fn hang_up_all(&self) {
        for call in self.registry.live_handles() {
            call.shutdown();
        }
    }

    /// Resume mode's stop: every live call is saved and left up on the
    /// wire (room INVITEs still unanswered are CANCELed first); returns how
    /// many were saved.
    pub async fn suspend_all(&self) -> usize {
        let calls = self.registry.live_handles();
        let saves = calls.iter().map(|c| c.suspend());
        let saved = futures_util::future::join_all(saves).await;
        // Let the CANCELs and the last writes leave before the exit.
        tokio::time::sleep(Duration::from_millis(200)).await;
        saved.into_iter().filter(|s| *s).count()
    }

    /// Waits until every voice bot's stream has said `stop` and closed
    /// (ended calls' streams do so on their own task), or `within`
    /// passes; true when none is left.
    pub async fn streams_done(&self, within: Duration) -> bool {
        self.streams.done(within).await
    }

    /// Waits until no call runs (records written), or `within` passes;
    /// true when none is left.
    pub async fn calls_done(&self, within: Duration) -> bool {
        self.admission.running().idle_within(within).await
    }
}

/// Starts the cluster's tasks: the heartbeat (this node's record and its
/// calls' owners), the entry-change subscription and the entries' sync,
/// after one first sync so that entries provisioned elsewhere take calls
/// here from the start (a Redis that is down delays the start by its
/// timeout only).
async fn join_cluster(
    cluster: Arc<Cluster>,
    registry: &Registry,
    store: &Arc<Store>,
    entries: &EntryBook,
    stopped: &watch::Receiver<bool>,
    tasks: &mut JoinSet<()>,
) {
    let sync = EntrySync {
        cluster: cluster.clone(),
        store: store.clone(),
        entries: entries.clone(),
    };
    if let Err(e) = sync.sync().await {
        tracing::warn!(error = %e, "cluster: entries not synced at start; this node's copy is in force");
    }
    let live = registry.clone();
    tasks.spawn(cluster::heartbeat::run(
        cluster.clone(),
        move || live.live_ids().into_iter().map(|id| id.0).collect(),
        registry.changed(),
        stopped.clone(),
    ));
    let notice = Arc::new(tokio::sync::Notify::new());
    tasks.spawn(cluster::notices::listen(
        cluster.clone(),
        notice.clone(),
        stopped.clone(),
    ));
    tasks.spawn(sync.run(notice, stopped.clone()));
    tracing::info!(node = %cluster.me.call_domain, api = %cluster.me.api, "joined the cluster");
}

/// Hands every new INVITE to the one door; what it admits becomes a call.
async fn accept_loop(
    ctx: Arc<Ctx>,
    mut invites: mpsc::Receiver<IncomingInvite>,
    admission: Arc<Admission>,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        let invite = tokio::select! {
            i = invites.recv() => match i { Some(i) => i, None => return },
            _ = stopped.wait_for(|s| *s) => return,
        };
        let info = &invite.info;
        match admission.admit(info, crate::clock::unix_ms()) {
            Ok(admitted) => {
                tokio::spawn(driver::run(ctx.clone(), admitted, invite));
            }
            Err(r) => {
                // Challenges and load shedding are routine; other
                // refusals are worth an operator's eye.
                if matches!(r.code, 407 | 503) {
                    tracing::debug!(source = %info.source, to = %info.to_uri, why = r.why, "INVITE refused: {}", r.code);
                } else {
                    tracing::info!(source = %info.source, to = %info.to_uri, why = r.why, "INVITE refused: {}", r.code);
                }
                invite.refuse(&r).await;
            }
        }
    }
}

/// The TLS listener of `sip.tls`, with its certificate, if enabled.
fn tls_listener(
    config: &Config,
) -> Result<Option<(SocketAddr, tokio_rustls::TlsAcceptor)>, StartError> {
    let Some(addr) = config.sip.tls else {
        return Ok(None);
    };
    // Both are there with `tls` (checked with the config).
    let (Some(cert), Some(key)) = (&config.sip.tls_cert, &config.sip.tls_key) else {
        return Err(ConfigError::key("sip.tls", "tls needs tls_cert and tls_key").into());
    };
    let acceptor =
        tls::acceptor(cert, key).map_err(|e| ConfigError::unusable("sip.tls_cert", e))?;
    Ok(Some((addr, acceptor)))
}

/// The HEP sender of `[hep]`, if on.
fn hep_sender(c: &crate::config::HepConfig) -> Option<Hep> {
    let collector = c.collector?;
    tracing::info!(%collector, node_id = c.node_id, "SIP capture sent as HEP3");
    Some(Hep::start(hep::Settings {
        collector,
        node_id: c.node_id,
        password: c.password.clone(),
    }))
}

/// The connector for TLS room legs: web PKI roots and `sip.tls_ca`.
fn tls_connector(config: &Config) -> Result<tokio_rustls::TlsConnector, StartError> {
    Ok(tls::connector(config.sip.tls_ca.as_deref())
        .map_err(|e| ConfigError::unusable("sip.tls_ca", e))?)
}

/// The node's `callDomain`: configured, or generated once and kept in the
/// database. A `state_dir/call_domain` file left by an earlier release is
/// taken over, so the node keeps its id across the upgrade.
fn call_domain(config: &Config, store: &Store) -> Result<String, StartError> {
    if let Some(d) = &config.node.call_domain {
        return Ok(d.clone());
    }
    if let Some(d) = store.node_value("call_domain")? {
        return Ok(d);
    }
    let legacy = config.node.state_dir.join("call_domain");
    let id = match std::fs::read_to_string(&legacy) {
        Ok(text) if !text.trim().is_empty() => text.trim().to_string(),
        Ok(_) => {
            return Err(StartError::State {
                path: legacy.display().to_string(),
                reason: "file is empty; delete it to generate a new call domain".into(),
            });
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => uuid::Uuid::new_v4().to_string(),
        Err(e) => {
            return Err(StartError::State {
                path: legacy.display().to_string(),
                reason: e.to_string(),
            });
        }
    };
    Ok(store.node_value_or_insert("call_domain", &id)?)
}

#[cfg(test)]
#[path = "gateway_tests.rs"]
mod tests;
