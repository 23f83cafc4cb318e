//! One call's media on its shard: the handle the call's driver holds, and
//! the task behind it, which reads both legs, relays between them and
//! hands the caller's stream to the shard's pacer and back.
//!
//! Split by job, so that each part reads on its own:
//! - `handle`: `CallMedia`, what the driver holds, and `Presses`; each
//!   method sends the task a `command`.
//! - `start`: what a task starts with (its legs, its stream, what the
//!   caller hears first).
//! - `task`: the task's loop: commands, both legs' packets, key presses,
//!   snapshots of its state.
//! - `mode`: what the caller hears, one of three (`Mode`): music, a voice
//!   bot, or a room.
//! - `leg`: one leg (the caller's, or the room's): every packet from it
//!   goes through `Leg::receive` (foreign packets dropped, SRTP, latching,
//!   liveness), the same steps for both.
//! - `relay`: a bridged call's room leg and what the relay keeps for it
//!   (payload mapping, codec conversion, the caller's stream rewritten).

mod command;
mod handle;
mod leg;
mod mode;
mod relay;
mod start;
mod task;

pub use crate::codec::LegCodec;
pub(super) use handle::spawn;
pub use handle::{CallMedia, Presses};
pub use leg::LegQuality;
pub(super) use start::{LegStart, Start, Then};

/// What each of a call's legs received (the room's: while bridged), for
/// the quality report at the call's end.
#[derive(Debug, Clone, Copy)]
pub struct CallQuality {
    pub caller: LegQuality,
    pub room: Option<LegQuality>,
}
