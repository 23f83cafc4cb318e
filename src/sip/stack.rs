//! A running SIP endpoint: what every leg needs to build its messages
//! (the ezk endpoint, the dialog registry, Contact per transport). Starting
//! one (binding sockets, installing the layer) is `bind`'s job, so that the
//! legs, which take a `&Stack`, do not depend on the layer that creates them.

use super::dialogs::Shared;
use super::leg_state::SipTransport;
use super::target::sent_by;
use ezk_sip_core::Endpoint;
use ezk_sip_core::transport::TpHandle;
use ezk_sip_types::host::HostPort;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// A running SIP endpoint. Cheap to clone.
#[derive(Clone)]
pub struct Stack {
    pub(crate) endpoint: Endpoint,
    pub(crate) shared: Arc<Shared>,
    pub(super) udp: Option<SocketAddr>,
    pub(super) tcp: Option<SocketAddr>,
    pub(super) tls: Option<SocketAddr>,
    pub(super) public_host: Arc<str>,
}

impl Stack {
    /// The bound UDP address, if UDP is enabled.
    pub fn udp_addr(&self) -> Option<SocketAddr> {
        self.udp
    }

    /// The bound TCP address, if TCP is enabled.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp
    }

    /// The bound TLS address, if TLS is enabled.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls
    }

    /// Drains (or stops draining): while on, an OPTIONS outside a dialog
    /// is answered 503 with `Retry-After` (`Refusal::draining`), so a
    /// dispatcher probing us (Kamailio, OpenSIPS) stops sending calls at
    /// once. Requests inside a dialog are answered as ever. New INVITEs
    /// are the admission's to refuse.
    pub fn set_draining(&self, on: bool) {
        self.shared.draining.store(on, Ordering::Relaxed);
    }

    /// Sets what OPTIONS outside a dialog asks before answering 200: while
    /// `probe` returns a refusal (the node is full or its media is
    /// overloaded), OPTIONS gets that 503, so a dispatcher skips this node
    /// as it does a draining one. Set once; later calls are ignored.
    pub fn set_busy_probe(&self, probe: crate::sip::BusyProbe) {
        let _ = self.shared.busy.set(probe);
    }

    /// Sends every call's SIP messages to `hep` as well, from now on (the
    /// ladders of calls made before are not). Set once; later calls are
    /// ignored.
    pub fn set_hep(&self, hep: crate::hep::Hep) {
        let _ = self.shared.hep.set(hep);
    }

    /// The node's HEP sender, when `[hep]` is on.
    pub fn hep(&self) -> Option<&crate::hep::Hep> {
        self.shared.hep.get()
    }

    /// TEST ONLY: lowers the smallest RFC 4028 Session-Expires we accept
    /// and enforce below the RFC's 90 s (`MIN_SESSION_EXPIRES_SECS`),
    /// so that tests see a session expire in seconds. Production code
    /// never calls it: a peer asking for less than 90 s gets no timer.
    pub fn set_min_session_expires_for_tests(&self, secs: u32) {
        self.shared.min_se.store(secs, Ordering::Relaxed);
    }

    /// While on, a request in a dialog we do not know gets no answer (not
    /// 481): set while the legs of an earlier run are being resumed, so
    /// that a peer's BYE or re-INVITE sent meanwhile is retransmitted to
    /// the resumed leg instead of ending its transaction.
    pub fn set_resuming(&self, on: bool) {
        self.shared.resuming.store(on, Ordering::Release);
    }

    /// Whether `set_draining(true)` is in force.
    pub fn is_draining(&self) -> bool {
        self.shared.draining.load(Ordering::Relaxed)
    }

    /// The Contact URI for messages on `transport`: our public host and the
    /// port of that transport's listener, so in-dialog requests come back
    /// the way the dialog started.
    pub(crate) fn contact_for(&self, transport: &TpHandle) -> String {
        let (port, param) = match self.shared.transport_kind(transport) {
            SipTransport::Udp => (self.udp.map(|a| a.port()), ""),
            SipTransport::Tls => (self.tls.map(|a| a.port()), ";transport=tls"),
            SipTransport::Tcp => (self.tcp.map(|a| a.port()), ";transport=tcp"),
        };
        let port = port.unwrap_or_else(|| transport.bound().port());
        format!(
            "<sip:pinless@{}:{port}{param}>",
            host_literal(&self.public_host)
        )
    }

    /// A Contact for a request we are about to send over an as yet
    /// unselected transport (the URI tells which).
    pub(crate) fn contact_for_uri(&self, uri: &str) -> String {
        let (port, param) = self.listener_for_uri(uri);
        format!(
            "<sip:pinless@{}:{port}{param}>",
            host_literal(&self.public_host)
        )
    }

    /// Our listener's port and URI parameter for a request to `uri`.
    pub(super) fn listener_for_uri(&self, uri: &str) -> (u16, &'static str) {
        let lower = uri.to_ascii_lowercase();
        let tls = lower.starts_with("sips:") || lower.contains("transport=tls");
        let tcp = lower.contains("transport=tcp");
        match (tls, tcp, self.udp, self.tcp) {
            (true, ..) if self.tls.is_some() => {
                (self.tls.map(|a| a.port()).unwrap_or(5061), ";transport=tls")
            }
            (_, true, _, Some(t)) => (t.port(), ";transport=tcp"),
            (_, _, Some(u), _) => (u.port(), ""),
            (_, _, None, Some(t)) => (t.port(), ";transport=tcp"),
            (_, _, None, None) => (5060, ""),
        }
    }

    /// Via sent-by for requests over `kind`: the public host and our
    /// listener's port for that transport (`bound` when there is none).
    /// ezk would write the socket's bound address (`0.0.0.0`, a private
    /// address behind 1:1 NAT, or an outgoing TCP connection's ephemeral
    /// port), so every request we build sets it.
    pub(crate) fn sent_by(&self, kind: SipTransport, bound: u16) -> HostPort {
        let port = match kind {
            SipTransport::Udp => self.udp,
            SipTransport::Tcp => self.tcp,
            SipTransport::Tls => self.tls,
        };
        sent_by(&self.public_host, port.map_or(bound, |a| a.port()))
    }
}

/// IPv6 literals go in brackets in URIs.
pub(super) fn host_literal(host: &str) -> String {
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => format!("[{v6}]"),
        _ => host.to_string(),
    }
}
