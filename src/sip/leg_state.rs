//! A leg's dialog as data (issue 11): everything a new process needs to
//! answer the peer's in-dialog requests and to send its own, without the
//! live handles (channels, sockets) of the process that set it up. The
//! call core saves it at each state change; `Stack::resume_leg` turns it
//! back into a `Leg`. A leaf of `sip`: plain data, no SIP machinery.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// The transport a dialog's requests travel on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SipTransport {
    Udp,
    Tcp,
    Tls,
}

impl SipTransport {
    /// "udp", "tcp" or "tls", as `InviteInfo::transport` and URIs say it.
    pub fn as_str(self) -> &'static str {
        match self {
            SipTransport::Udp => "udp",
            SipTransport::Tcp => "tcp",
            SipTransport::Tls => "tls",
        }
    }
}

impl std::fmt::Display for SipTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A confirmed dialog, as data. Serialize it with serde (JSON, …) and give
/// it to `Stack::resume_leg` in the next process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegState {
    /// Call-ID of the dialog (half of its key).
    pub call_id: String,
    /// Our tag (the other half): To-tag of what the peer sends us.
    pub local_tag: String,
    /// Our side, printed with tag: From of our requests.
    pub local_from: String,
    /// Their side, printed with tag: To of our requests.
    pub remote_to: String,
    /// The peer's Contact: Request-URI of our requests.
    pub remote_target: String,
    /// Route headers of our requests, in order.
    pub route_set: Vec<String>,
    /// Last CSeq we used.
    pub cseq: u32,
    /// Last CSeq the peer used (0 when unknown).
    pub remote_cseq: u32,
    /// What the dialog's requests travel on.
    pub transport: SipTransport,
    /// Where our requests went: the INVITE's source for a leg the peer
    /// began (so replies cross its NAT), the INVITE's destination for ours.
    pub peer: SocketAddr,
    /// Our Contact, as sent in the dialog.
    pub contact: String,
    /// Our SDP: what a re-INVITE is answered with.
    pub local_sdp: String,
    /// RFC 4028 session timer, when the dialog negotiated one (absent in
    /// states saved before timers existed).
    #[serde(default)]
    pub session_timer: Option<SessionTimer>,
}

/// RFC 4028's floor for Session-Expires (its recommended Min-SE): a peer
/// asking for less gets no timer. `Stack::set_min_session_expires_for_tests`
/// lowers it, for tests only.
pub const MIN_SESSION_EXPIRES_SECS: u32 = 90;

/// A negotiated RFC 4028 session timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionTimer {
    /// Session-Expires: the session ends unless refreshed within it.
    pub interval_secs: u32,
    /// We refresh (re-INVITE at half the interval); else the peer does
    /// and we only watch.
    pub we_refresh: bool,
}

/// Why a saved leg cannot be resumed.
#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    /// The saved remote target does not parse as a SIP URI.
    #[error("saved remote target is not a SIP URI: {uri}")]
    BadTarget {
        uri: String,
        /// The parser's account (nom's, as ezk's `SipUri` reports it).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The dialog went over UDP and this stack has no UDP listener.
    #[error("cannot resume a {transport} dialog: SIP over {transport} is not enabled")]
    NoTransport { transport: SipTransport },
    /// A leg with the same dialog key is already live on this stack.
    #[error("dialog {call_id} is already live")]
    AlreadyLive { call_id: String },
}
