//! The dialog registry and the types every part of the stack shares: how a
//! dialog is keyed, what the layer hands a leg, and the state the layer and
//! the legs both hold. Nearly a leaf of `sip`: it imports only the plain
//! data of `leg_state`, so the layer (which routes) and the legs (which
//! register) both depend on it rather than on each other.

use super::leg_state::{MIN_SESSION_EXPIRES_SECS, SipTransport};
use super::trace::Trace;
use dashmap::DashMap;
use ezk_sip_core::IncomingRequest;
use rand::Rng;
use tokio::sync::{mpsc, oneshot};

/// A dialog is ours to route by Call-ID and our own tag (To-tag of requests
/// the peer sends us). Our tags are random and unique, so this is enough.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct DialogKey {
    pub call_id: String,
    pub local_tag: String,
}

/// What a leg's owner receives from the layer.
#[derive(Debug)]
pub(crate) enum Inbound {
    /// Boxed: a request is over 1 KiB, and every dialog's channel holds a
    /// block of 32 slots sized for the largest variant (massif: 37 KiB of
    /// heap per held call before this).
    Request(Box<IncomingRequest>),
    /// Our 2xx was never acknowledged (RFC 3261 §13.3.1.4): end the dialog.
    AckTimeout,
}

/// State shared between the layer and the legs.
pub(crate) struct Shared {
    pub dialogs: DashMap<DialogKey, mpsc::UnboundedSender<Inbound>>,
    /// INVITEs not yet answered, by top Via branch, for CANCEL (which
    /// goes into the INVITE's trace).
    pub pending: DashMap<String, (oneshot::Sender<()>, Trace)>,
    /// Traces of INVITEs just challenged (401/407), by Call-ID: the
    /// caller's retry with credentials carries on the same ladder.
    pub challenged: super::trace::Challenged,
    /// Port of our TLS listener: connections bound to it are TLS (ezk does
    /// not tell TLS from TCP on a received message).
    pub tls_port: std::sync::OnceLock<u16>,
    /// The node is stopping: OPTIONS outside a dialog get 503, so that a
    /// dispatcher in front moves traffic away at once.
    pub draining: std::sync::atomic::AtomicBool,
    /// While saved legs are being resumed at start: a request for a dialog
    /// not (yet) known gets no answer rather than 481, so the peer
    /// retransmits it (UDP) to the leg about to be resumed.
    pub resuming: std::sync::atomic::AtomicBool,
    /// Smallest Session-Expires we enforce (RFC 4028); 90 but in tests.
    pub min_se: std::sync::atomic::AtomicU32,
    /// Asked on every OPTIONS outside a dialog: a refusal while the node
    /// cannot take a call (full or overloaded), so a dispatcher probing us
    /// sends calls elsewhere before they are refused one by one.
    pub busy: std::sync::OnceLock<BusyProbe>,
    /// The node's HEP sender, when `[hep]` is on: every call's ladder
    /// sends its messages there too (`new_trace`).
    pub hep: std::sync::OnceLock<crate::hep::Hep>,
}

/// See `Shared::busy`.
pub type BusyProbe = Box<dyn Fn() -> Option<crate::sip::Refusal> + Send + Sync>;

impl Shared {
    pub fn new() -> Self {
        Self {
            dialogs: DashMap::new(),
            pending: DashMap::new(),
            challenged: Default::default(),
            tls_port: std::sync::OnceLock::new(),
            draining: std::sync::atomic::AtomicBool::new(false),
            resuming: std::sync::atomic::AtomicBool::new(false),
            min_se: std::sync::atomic::AtomicU32::new(MIN_SESSION_EXPIRES_SECS),
            busy: std::sync::OnceLock::new(),
            hep: std::sync::OnceLock::new(),
        }
    }

    /// A new call's ladder (recording as the caller's leg).
    pub fn new_trace(&self) -> Trace {
        Trace::with_hep(self.hep.get().cloned())
    }

    /// The transport of a message received on `transport`.
    pub fn transport_kind(&self, transport: &ezk_sip_core::transport::TpHandle) -> SipTransport {
        if transport.is_udp() {
            SipTransport::Udp
        } else if self.tls_port.get() == Some(&transport.bound().port()) {
            SipTransport::Tls
        } else {
            SipTransport::Tcp
        }
    }
}

/// The final status of a request we sent in a dialog; `None` when it could
/// not be sent or got no final answer in time.
pub type Answer = oneshot::Receiver<Option<u16>>;

/// A random tag for From/To headers (our half of a dialog's key).
pub(crate) fn random_tag() -> String {
    rand::thread_rng()
        .sample_iter(rand::distributions::Alphanumeric)
        .take(12)
        .map(char::from)
        .collect()
}
