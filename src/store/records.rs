//! A record of every finished call: parties, targets, outcome, hold and
//! talk time, and the whole timeline. The store sits below `call`: it
//! takes a `CallRecord` of its own, never the call machine.

use super::{CallRecord, Store, StoreError, record_form};
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
    pub fn record_call(&self, r: &CallRecord) -> Result<(), StoreError> {
        let json = record_form::encode(r)?;
        self.conn().execute(
            "INSERT OR REPLACE INTO call_records
               (call_id, entry, from_party, to_party, created_at, ended_at, end_reason,
                target, hold_ms, talk_ms, record)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                r.call_id,
                r.entry,
                r.from,
                r.to,
                r.created_at as i64,
                r.ended_at as i64,
                r.end_reason,
                r.target,
                r.hold_ms as i64,
                r.talk_ms as i64,
                json
            ],
        )?;
        Ok(())
    }

    /// Records of calls that ended at or after `q.since`, oldest first.
    pub fn records(&self, q: RecordQuery) -> Result<Vec<CallRecord>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT call_id, ended_at, record FROM call_records WHERE ended_at >= ?1
              ORDER BY ended_at, call_id LIMIT ?2",
        )?;
        let rows = stmt
            .query_map(params![q.since as i64, q.limit], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.iter()
            .map(|(call_id, ended_at, text)| record_form::decode(call_id, *ended_at as u64, text))
            .collect()
    }
}
