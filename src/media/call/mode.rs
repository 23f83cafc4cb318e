//! What the caller hears: one of three, each carrying what only it needs,
//! so that no combination the call cannot be in (relaying while the pacer
//! has the stream, a bot's uplink without the bot) can be written down.

use super::leg::Leg;
use super::relay::Relay;
use crate::media::bot::Uplink;

/// Bot and Bridged are boxed: their codec converters (G.722 state) are
/// the bulk of a call's state, and a held call has none.
pub(super) enum Mode {
    /// The pacer has the caller's stream and plays music (or prompts).
    Held,
    /// The pacer has the caller's stream and plays a voice bot's queue;
    /// what the caller says goes up to the bot.
    Bot(Box<Uplink>),
    /// The caller's stream is relayed from a room, and the caller's
    /// packets to it.
    Bridged(Box<Relay>),
}

impl Mode {
    /// The pacer has the caller's stream (music, prompts or a bot).
    pub fn paced(&self) -> bool {
        !matches!(self, Mode::Bridged(_))
    }

    pub fn relay(&self) -> Option<&Relay> {
        match self {
            Mode::Bridged(relay) => Some(relay),
            Mode::Held | Mode::Bot(_) => None,
        }
    }

    /// The room's leg, while bridged.
    pub fn room(&self) -> Option<&Leg> {
        self.relay().map(|r| r.room())
    }
}
