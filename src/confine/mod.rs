//! What an API client can make the gateway read or reach. A bearer token
//! is handed to apps, consoles and scripts; a leaked one must not open the
//! host's files or its loopback services and cloud metadata.
//!
//! - `files`: file names from the API (`audio` of play, a provisioned
//!   entry's audio files) resolve only inside `[api] media_dir`.
//! - `urls`: URLs from the API (play `audio`, `streamUrl`, a provisioned
//!   entry's webhook URLs) are checked after name resolution, connect to
//!   the checked address, and never reach link-local or metadata
//!   addresses, nor loopback and private ones unless
//!   `[api] allow_private_urls`.
//! - `addr`: which addresses are which (pure).
//!
//! What the operator wrote in the config file is not confined: it is
//! theirs.

mod addr;
mod files;
mod urls;

pub use addr::Kind;
pub use files::{FileRefused, MediaDir};
pub use urls::{UrlPolicy, UrlRefused, refusal_in};

/// Who wrote a URL or a file name: the operator (the config file) or an
/// API client (a request, a provisioned entry). Only the latter is
/// confined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Operator,
    ApiClient,
}
