//! Where a leg's requests go: the transport, the peer's address, and what
//! we write as our Via sent-by.
//!
//! A leg set up in this process starts with the live transport of its
//! INVITE. A resumed leg (`Stack::resume_leg`) has none: it is found when
//! the first request goes out, and the same happens when a TCP/TLS
//! connection has closed since. Over UDP that is the stack's own UDP
//! socket and the saved address. Over TCP/TLS the old connection died
//! with the old process, so:
//!
//! 1. a connection the peer opens to us first (it sends a request in the
//!    dialog) is adopted, and our requests go back over it;
//! 2. otherwise we connect to the dialog's next hop (first Route, else the
//!    peer's Contact), then to the saved address.
//!
//! A peer that only accepts its own connection (a phone behind NAT over
//! TCP, which listens nowhere we can reach) cannot be reached by us until
//! it sends something: our BYE then fails (logged), and its own BYE is
//! still answered when it comes.

use super::leg_state::SipTransport;
use ezk_sip_core::Endpoint;
use ezk_sip_core::transport::{TargetTransportInfo, TpHandle, TransportState};
use ezk_sip_types::host::{Host, HostPort};
use ezk_sip_types::uri::SipUri;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// A live transport and where on it requests go.
struct Live {
    handle: Option<TpHandle>,
    peer: SocketAddr,
}

/// Where a leg's requests go. Clones share the transport found.
#[derive(Clone)]
pub(crate) struct Target {
    pub kind: SipTransport,
    live: Arc<Mutex<Live>>,
    /// Our Via sent-by: the public host and our listener's port, so that
    /// nothing we send names a bound (maybe private, maybe 0.0.0.0) address.
    via: HostPort,
}

impl Target {
    /// A target with its transport known (a leg set up in this process).
    pub fn new(kind: SipTransport, handle: TpHandle, peer: SocketAddr, via: HostPort) -> Self {
        Self::with(kind, Some(handle), peer, via)
    }

    /// A target whose transport is found when first used (a resumed leg).
    pub fn unresolved(kind: SipTransport, peer: SocketAddr, via: HostPort) -> Self {
        Self::with(kind, None, peer, via)
    }

    fn with(kind: SipTransport, handle: Option<TpHandle>, peer: SocketAddr, via: HostPort) -> Self {
        Self {
            kind,
            live: Arc::new(Mutex::new(Live { handle, peer })),
            via,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Live> {
        // Nothing panics while holding it; a poisoned lock still holds
        // a consistent value.
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Where requests go now.
    pub fn peer(&self) -> SocketAddr {
        self.lock().peer
    }

    /// A request of the dialog arrived on `transport` from `source`: over
    /// TCP/TLS, when we have no open connection, answer back over the
    /// peer's (see the module doc).
    pub fn adopt(&self, transport: &TpHandle, source: SocketAddr) {
        if self.kind == SipTransport::Udp || transport.is_udp() {
            return;
        }
        let mut live = self.lock();
        if live.handle.as_ref().is_some_and(usable) {
            return;
        }
        live.peer = transport.connection_remote().unwrap_or(source);
        live.handle = Some(transport.clone());
    }

    /// The transport for the next request, connecting if needed.
    /// `next_hops` are the dialog's first Route and remote target, in
    /// that order (only used over TCP/TLS).
    pub async fn info(
        &self,
        endpoint: &Endpoint,
        next_hops: &[SipUri],
    ) -> Result<TargetTransportInfo, ezk_sip_core::Error> {
        let saved = {
            let live = self.lock();
            if let Some(handle) = live.handle.as_ref().filter(|h| usable(h)) {
                return Ok(self.info_for(handle.clone(), live.peer));
            }
            live.peer
        };
        let mut candidates = Vec::new();
        if self.kind != SipTransport::Udp {
            candidates.extend(next_hops.iter().map(|u| self.uri_for(&u.host_port)));
        }
        candidates.push(self.uri_for(&HostPort {
            host: saved.ip().into(),
            port: Some(saved.port()),
        }));
        let mut last = None;
        for text in candidates {
            let Ok(uri) = text.parse::<SipUri>() else {
                continue;
            };
            match endpoint.select_transport(&uri).await {
                Ok((handle, peer)) => {
                    let mut live = self.lock();
                    live.handle = Some(handle.clone());
                    live.peer = peer;
                    return Ok(self.info_for(handle, peer));
                }
                Err(e) => {
                    tracing::debug!(uri = %text, error = %e, "no transport to this dialog's peer here");
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or(ezk_sip_core::Error::RequestTimedOut))
    }

    fn info_for(&self, handle: TpHandle, peer: SocketAddr) -> TargetTransportInfo {
        TargetTransportInfo {
            via_host_port: Some(self.via.clone()),
            transport: Some((handle, peer)),
        }
    }

    /// `sip:host:port;transport=…` for our transport, with the transport's
    /// default port when the address has none.
    fn uri_for(&self, hp: &HostPort) -> String {
        let default = if self.kind == SipTransport::Tls {
            5061
        } else {
            5060
        };
        let host = match &hp.host {
            Host::IP6(ip) => format!("[{ip}]"),
            Host::IP4(ip) => ip.to_string(),
            Host::Name(name) => name.to_string(),
        };
        format!(
            "sip:{host}:{};transport={}",
            hp.port.unwrap_or(default),
            self.kind
        )
    }
}

/// A UDP socket always is; a connection is until it closes.
fn usable(handle: &TpHandle) -> bool {
    handle.is_udp() || matches!(*handle.watch_state().borrow(), TransportState::Ok)
}

/// Our Via sent-by for `host` (the public host) and `port`.
pub(crate) fn sent_by(host: &str, port: u16) -> HostPort {
    let host = match host.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.into(),
        Err(_) => Host::Name(host.to_string().into()),
    };
    HostPort {
        host,
        port: Some(port),
    }
}
