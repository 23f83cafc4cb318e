//! Restarts that drop no caller: `saved` is a live call as saved at each
//! state change; `resume` takes the saved calls over at start.

pub mod resume;
pub mod saved;
