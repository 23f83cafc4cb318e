//! A record of every finished call: parties, targets, outcome, hold and
//! talk time, and the whole timeline, as `GET /v1/calls/{id}` showed it.

use super::{Store, StoreError};
use crate::call::CallView as Machine;
use rusqlite::params;

/// `GET /v1/call-records?since=…&limit=…`.
#[derive(Debug, Clone, Copy)]
pub struct RecordQuery {
    /// Calls that ended at or after this Unix ms.
    pub since: u64,
    pub limit: u32,
}

impl Store {
    /// Records a finished call (a second record for the same call replaces
    /// the first).
    pub fn record_call(&self, m: &Machine) -> Result<(), StoreError> {
        let json = serde_json::to_string(m).map_err(|e| StoreError::Sql(e.to_string()))?;
        self.conn().execute(
            "INSERT OR REPLACE INTO call_records
               (call_id, entry, from_party, to_party, created_at, ended_at, end_reason,
                target, hold_ms, talk_ms, record)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                m.call_id,
                m.entry,
                m.from,
                m.to,
                m.created_at as i64,
                m.ended_at.unwrap_or(m.created_at) as i64,
                m.end_reason.map(|r| r.name()),
                m.target,
                m.hold_ms as i64,
                m.talk_ms as i64,
                json
            ],
        )?;
        Ok(())
    }

    /// Records of calls that ended at or after `q.since`, oldest first.
    pub fn records(&self, q: RecordQuery) -> Result<Vec<serde_json::Value>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT record FROM call_records WHERE ended_at >= ?1
              ORDER BY ended_at, call_id LIMIT ?2",
        )?;
        let rows = stmt
            .query_map(params![q.since as i64, q.limit], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        rows.iter()
            .map(|text| {
                serde_json::from_str(text)
                    .map_err(|e| StoreError::Sql(format!("stored record unreadable: {e}")))
            })
            .collect()
    }
}
