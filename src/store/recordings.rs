//! The index of call recordings: a row from a recording's start (so that
//! one under way is listed, and found by its call), its file's summary
//! once finished, or why it failed. The files themselves are the media's.

use super::{Store, StoreError};
use rusqlite::{OptionalExtension, Row, params};

/// Where a recording stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordingState {
    Recording,
    Ready,
    Failed,
}

impl RecordingState {
    fn name(self) -> &'static str {
        match self {
            RecordingState::Recording => "recording",
            RecordingState::Ready => "ready",
            RecordingState::Failed => "failed",
        }
    }

    fn parse(s: &str) -> RecordingState {
        match s {
            "ready" => RecordingState::Ready,
            "failed" => RecordingState::Failed,
            _ => RecordingState::Recording,
        }
    }
}

/// One recording as indexed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingRow {
    pub id: String,
    pub call_id: String,
    pub path: String,
    /// Unix ms.
    pub started_at: u64,
    pub state: RecordingState,
    pub ended_at: Option<u64>,
    pub duration_ms: Option<u64>,
    pub bytes: Option<u64>,
    pub sha256: Option<String>,
    pub sample_rate: u32,
    pub channels: u16,
    pub error: Option<String>,
}

const COLUMNS: &str = "id, call_id, path, started_at, state, ended_at, duration_ms, bytes, \
                       sha256, sample_rate, channels, error";

fn row(r: &Row<'_>) -> rusqlite::Result<RecordingRow> {
    let opt_u64 = |i: usize| -> rusqlite::Result<Option<u64>> {
        Ok(r.get::<_, Option<i64>>(i)?.map(|v| v.max(0) as u64))
    };
    Ok(RecordingRow {
        id: r.get(0)?,
        call_id: r.get(1)?,
        path: r.get(2)?,
        started_at: r.get::<_, i64>(3)?.max(0) as u64,
        state: RecordingState::parse(&r.get::<_, String>(4)?),
        ended_at: opt_u64(5)?,
        duration_ms: opt_u64(6)?,
        bytes: opt_u64(7)?,
        sha256: r.get(8)?,
        sample_rate: r.get::<_, i64>(9)?.clamp(0, i64::from(u32::MAX)) as u32,
        channels: r.get::<_, i64>(10)?.clamp(0, i64::from(u16::MAX)) as u16,
        error: r.get(11)?,
    })
}

impl Store {
    /// Indexes a recording that starts (or, the same id again, one that a
    /// resumed call goes on with: its row is left as it is).
    pub fn recording_started(&self, r: &RecordingRow) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO recordings (id, call_id, path, started_at, state, sample_rate, channels)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (id) DO NOTHING",
            params![
                r.id,
                r.call_id,
                r.path,
                r.started_at as i64,
                r.state.name(),
                r.sample_rate,
                r.channels
            ],
        )?;
        Ok(())
    }

    /// A recording's end: its file's summary (`Ready`) or its error.
    pub fn recording_ended(&self, r: &RecordingRow) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE recordings SET state = ?2, ended_at = ?3, duration_ms = ?4, bytes = ?5,
                    sha256 = ?6, error = ?7 WHERE id = ?1",
            params![
                r.id,
                r.state.name(),
                r.ended_at.map(|v| v as i64),
                r.duration_ms.map(|v| v as i64),
                r.bytes.map(|v| v as i64),
                r.sha256,
                r.error
            ],
        )?;
        Ok(())
    }

    pub fn recording(&self, id: &str) -> Result<Option<RecordingRow>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM recordings WHERE id = ?1");
        Ok(self.conn().query_row(&sql, [id], row).optional()?)
    }

    /// The call's latest recording.
    pub fn latest_recording(&self, call_id: &str) -> Result<Option<RecordingRow>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM recordings WHERE call_id = ?1
              ORDER BY started_at DESC, id DESC LIMIT 1"
        );
        Ok(self.conn().query_row(&sql, [call_id], row).optional()?)
    }

    /// Recordings started at or after `since` (Unix ms), oldest first.
    pub fn recordings(&self, since: u64, limit: u32) -> Result<Vec<RecordingRow>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM recordings WHERE started_at >= ?1
              ORDER BY started_at, id LIMIT ?2"
        );
        let conn = self.conn();
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map(params![since as i64, limit], row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Finished recordings started before `before` (Unix ms): what
    /// `retention_days` deletes.
    pub fn recordings_before(&self, before: u64) -> Result<Vec<RecordingRow>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM recordings WHERE started_at < ?1 AND state != 'recording'
              ORDER BY started_at LIMIT 1000"
        );
        let conn = self.conn();
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map(params![before as i64], row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Drops a recording's row; true when there was one.
    pub fn forget_recording(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn()
            .execute("DELETE FROM recordings WHERE id = ?1", [id])?
            > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started(id: &str, call: &str, at: u64) -> RecordingRow {
        RecordingRow {
            id: id.into(),
            call_id: call.into(),
            path: format!("/r/{id}.wav"),
            started_at: at,
            state: RecordingState::Recording,
            ended_at: None,
            duration_ms: None,
            bytes: None,
            sha256: None,
            sample_rate: 8000,
            channels: 2,
            error: None,
        }
    }

    #[test]
    fn a_recording_is_indexed_from_its_start_to_its_summary() {
        let dir = std::env::temp_dir().join(format!("pinless-rec-db-{}", uuid::Uuid::new_v4()));
        let store = Store::open(&dir).unwrap();
        store.recording_started(&started("c-1", "c", 100)).unwrap();
        store.recording_started(&started("c-2", "c", 200)).unwrap();
        store.recording_started(&started("d-1", "d", 150)).unwrap();
        assert_eq!(store.latest_recording("c").unwrap().unwrap().id, "c-2");
        let ready = RecordingRow {
            state: RecordingState::Ready,
            ended_at: Some(900),
            duration_ms: Some(700),
            bytes: Some(44 + 700 * 32),
            sha256: Some("ab".repeat(32)),
            ..started("c-2", "c", 200)
        };
        store.recording_ended(&ready).unwrap();
        assert_eq!(store.recording("c-2").unwrap(), Some(ready));
        let listed: Vec<String> = (store.recordings(120, 10).unwrap())
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(listed, ["d-1", "c-2"]);
        assert_eq!(
            store.recordings_before(300).unwrap().len(),
            1,
            "only finished ones"
        );
        assert!(store.forget_recording("c-2").unwrap());
        assert!(!store.forget_recording("c-2").unwrap());
        assert_eq!(store.recording("c-2").unwrap(), None);
    }
}
