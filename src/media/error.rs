//! `MediaError`, in a file of its own so that `ports` (which claims saved
//! ports) and the engine in `mod.rs` can both name it without a cycle.

/// Why media could not be set up for a call.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// Every port of the configured range is in use.
    #[error("no free RTP port in the configured range")]
    NoPorts,
    /// The OS refused a socket operation.
    #[error("RTP socket: {0}")]
    Io(#[from] std::io::Error),
    /// A saved call's port could not be bound again (another process or
    /// call holds it, or the address is gone).
    #[error("RTP port {port} of a saved call cannot be bound: {source}")]
    PortTaken {
        port: u16,
        #[source]
        source: std::io::Error,
    },
    /// A saved call's port is not an even port of the configured range
    /// (the range changed since the call was saved).
    #[error("RTP port {port} of a saved call is outside the configured range")]
    PortOutOfRange { port: u16 },
    /// A leg's SRTP could not be keyed (see `srtp`).
    #[error(transparent)]
    Srtp(#[from] super::srtp::SrtpError),
}
