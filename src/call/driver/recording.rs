//! The call's recordings as its driver carries them out: the machine's
//! `StartRecording`, `PauseRecording`, `ResumeRecording` and
//! `StopRecording` on the node's recorder and the call's media, the
//! recordings' index rows, and each file's end fed back to the machine
//! (`Input::RecordingEnded`), also after the call itself has ended.

use super::Call;
use crate::call::machine::Input;
use crate::call::machine::recording::RecordingEnd;
use crate::media::record::{Ended, PauseMode, Spec};
use crate::store::{RecordingRow, RecordingState};
use serde_json::json;
use std::time::Duration;

/// How long a call's end waits for its recordings' files to be finished
/// (a flush and a checksum: milliseconds, unless the disk is stuck).
const FINISH_WAIT: Duration = Duration::from_secs(30);

impl Call {
    /// `Action::StartRecording`.
    pub(super) async fn start_recording(&mut self, id: String, resume_at: Option<u64>) {
        // The machine stops one before it starts the next; were one still
        // here, it is finished apart rather than lost.
        self.stop_recording();
        let rate = self.media.caller_codec().audio.sample_rate();
        let path = self.ctx.recordings_dir.join(format!("{id}.wav"));
        let recording = self.ctx.media.recorder().start(Spec {
            path: path.clone(),
            sample_rate: rate,
            origin: std::time::Instant::now(),
            resume_at,
        });
        self.media.record(Some(recording.tap()));
        let r = self.recordings.get_or_insert_with(Box::default);
        r.current = Some((id.clone(), recording));
        let row = RecordingRow {
            id,
            call_id: self.machine.parties().call_id.clone(),
            path: path.display().to_string(),
            started_at: crate::clock::unix_ms(),
            state: RecordingState::Recording,
            ended_at: None,
            duration_ms: None,
            bytes: None,
            sha256: None,
            sample_rate: rate,
            channels: 2,
            error: None,
        };
        if let Err(error) = self
            .ctx
            .store_write(move |s| s.recording_started(&row))
            .await
        {
            tracing::warn!(%error, "recording not indexed");
        }
    }

    pub(super) fn pause_recording(&self, mode: PauseMode) {
        if let Some((_, r)) = self.recordings.as_ref().and_then(|r| r.current.as_ref()) {
            r.pause(mode);
        }
    }

    pub(super) fn resume_recording(&self) {
        if let Some((_, r)) = self.recordings.as_ref().and_then(|r| r.current.as_ref()) {
            r.resume();
        }
    }

    /// `Action::StopRecording`: the media stops feeding it at once; its
    /// file is finished apart (`finished`).
    pub(super) fn stop_recording(&mut self) {
        let Some(r) = self.recordings.as_mut() else {
            return;
        };
        let Some((id, recording)) = r.current.take() else {
            return;
        };
        self.media.record(None);
        r.finishing
            .push(Box::pin(async move { (id, recording.stop().await) }));
    }

    /// The recording under way is written out and left for the next
    /// process to go on with (a stop in resume mode).
    pub(super) async fn detach_recording(&mut self) {
        if let Some((_, recording)) = self.recordings.as_mut().and_then(|r| r.current.take()) {
            self.media.record(None);
            recording.detach().await;
        }
    }

    /// A recording's file is finished (or failed): indexed, and told to
    /// the machine.
    pub(super) async fn recording_done(&mut self, id: String, ended: Ended) -> Input {
        let now = crate::clock::unix_ms();
        let path = self.ctx.recordings_dir.join(format!("{id}.wav"));
        let (row, end) = match ended {
            Ended::Finished(f) => {
                let detail = json!({
                    "durationMs": f.duration_ms,
                    "bytes": f.bytes,
                    "sha256": f.sha256,
                    "sampleRate": f.sample_rate,
                    "channels": f.channels,
                    "location": format!("file:{}", path.display()),
                    "lostPackets": f.lost_packets,
                });
                let row = RecordingRow {
                    state: RecordingState::Ready,
                    duration_ms: Some(f.duration_ms),
                    bytes: Some(f.bytes),
                    sha256: Some(f.sha256),
                    ..ended_row(&id, now)
                };
                (row, RecordingEnd::Ready(detail))
            }
            Ended::Failed(error) => {
                tracing::warn!(recording = %id, %error, "recording failed");
                let row = RecordingRow {
                    state: RecordingState::Failed,
                    error: Some(error.clone()),
                    ..ended_row(&id, now)
                };
                (row, RecordingEnd::Failed(error))
            }
            // Not asked of a stopped recording.
            Ended::Detached => (ended_row(&id, now), RecordingEnd::Failed("detached".into())),
        };
        if let Err(error) = self.ctx.store_write(move |s| s.recording_ended(&row)).await {
            tracing::warn!(%error, "recording's end not indexed");
        }
        Input::RecordingEnded { id, end }
    }

    /// At the call's end: waits for every stopped recording's file, and
    /// tells the machine of each (their events are the call's last).
    pub(super) async fn finish_recordings(&mut self) {
        let deadline = tokio::time::Instant::now() + FINISH_WAIT;
        while self
            .recordings
            .as_ref()
            .is_some_and(|r| !r.finishing.is_empty())
        {
            let Ok((id, ended)) = tokio::time::timeout_at(
                deadline,
                super::recordings::finished(&mut self.recordings),
            )
            .await
            else {
                tracing::warn!("recordings not finished in time: their files are left as they are");
                return;
            };
            let input = self.recording_done(id, ended).await;
            let _ = self.feed(input);
        }
    }
}

/// A recording's row as its end updates it (the fields the end sets).
fn ended_row(id: &str, now: u64) -> RecordingRow {
    RecordingRow {
        id: id.to_string(),
        call_id: String::new(),
        path: String::new(),
        started_at: 0,
        state: RecordingState::Failed,
        ended_at: Some(now),
        duration_ms: None,
        bytes: None,
        sha256: None,
        sample_rate: 0,
        channels: 0,
        error: None,
    }
}
