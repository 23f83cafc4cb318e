//! Voice bots over WebSocket, speaking Twilio's Media Streams protocol
//! (bidirectional): a held caller can be sent to a bot instead of a room.
//! Nothing here touches SIP or RTP; the call layer connects a stream to
//! the call's media.
//!
//! - `proto`: the messages, without I/O (`Outbox` numbers what pinless
//!   sends, `Incoming` reads what the bot sends).
//! - `target`: what a stream URL and its handshake headers may be.
//! - `open`: TCP, TLS, the handshake, `connected` and `start`.
//! - `link`: the task that moves frames between the socket and the call.

mod link;
mod open;
pub mod proto;
mod target;

pub use link::{BotSink, Feeds, StreamLink, StreamTasks, Upkeep};
pub use open::{OpenError, OpenRequest, Opened, open};
pub use proto::{Incoming, Outbox, ProtoError, StartInfo};
pub use target::{HeaderError, StreamUrl, UrlError, check_header};
