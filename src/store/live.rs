//! Calls up on the wire, saved at each of their state changes (answer,
//! transfer started or finished, bridged, back to hold) and removed when
//! they end, so that a restart after a stop or a crash resumes them. The
//! state itself is the call layer's JSON; the store keeps it as text.

use super::{Store, StoreError};
use rusqlite::params;
use std::sync::MutexGuard;

/// One saved call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveCall {
    pub call_id: String,
    /// Unix ms of the save.
    pub saved_at: u64,
    pub state: String,
}

impl Store {
    fn live(&self) -> MutexGuard<'_, rusqlite::Connection> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Saves (or replaces) a live call's state.
    pub fn save_live(&self, call: &LiveCall) -> Result<(), StoreError> {
        self.live().execute(
            "INSERT OR REPLACE INTO live_calls (call_id, saved_at, state) VALUES (?1, ?2, ?3)",
            params![call.call_id, call.saved_at as i64, call.state],
        )?;
        Ok(())
    }

    /// Forgets a call that ended (or could not be resumed).
    pub fn remove_live(&self, call_id: &str) -> Result<(), StoreError> {
        self.live()
            .execute("DELETE FROM live_calls WHERE call_id = ?1", [call_id])?;
        Ok(())
    }

    /// Every saved call, oldest save first.
    pub fn live_calls(&self) -> Result<Vec<LiveCall>, StoreError> {
        let conn = self.live();
        let mut stmt =
            conn.prepare("SELECT call_id, saved_at, state FROM live_calls ORDER BY saved_at")?;
        let rows = stmt
            .query_map([], |r| {
                Ok(LiveCall {
                    call_id: r.get(0)?,
                    saved_at: r.get::<_, i64>(1)?.max(0) as u64,
                    state: r.get(2)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_calls_survive_a_reopen_until_removed() {
        let dir = std::env::temp_dir().join(format!("pinless-live-{}", uuid::Uuid::new_v4()));
        let call = |id: &str, at| LiveCall {
            call_id: id.into(),
            saved_at: at,
            state: format!("{{\"id\":\"{id}\"}}"),
        };
        {
            let store = Store::open(&dir).unwrap();
            store.save_live(&call("a", 2)).unwrap();
            store.save_live(&call("b", 1)).unwrap();
            store.save_live(&call("a", 3)).unwrap(); // a later change replaces
        }
        let store = Store::open(&dir).unwrap();
        assert_eq!(
            store.live_calls().unwrap(),
            vec![call("b", 1), call("a", 3)]
        );
        store.remove_live("b").unwrap();
        assert_eq!(store.live_calls().unwrap(), vec![call("a", 3)]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
