//! Call recording on the machine: when a recording starts (the entry's
//! `record`, an update's `"record"`, the recording API), pauses, resumes
//! and stops, and what the timeline says of it. One recording runs at a
//! time; each start/stop span is a recording of its own, `{callId}-{n}`.
//! The files themselves are the media's (`media::record`); the machine
//! only asks (`Action::StartRecording`, …) and logs what it is told of
//! their end (`Input::RecordingEnded`).

use super::recording::{ConsentFor, RecordRequest, Recording, RecordingEnd, RecordingNow};
use super::{Action, EventKind, Machine, State, UpdateRefused};
use crate::call::machine::plan::{Mode, TransferRequest};
use crate::clock::Instant;
use crate::config::RecordMode;
use crate::media::record::PauseMode;
use serde_json::json;

impl Machine {
    /// The next recording's id, counted.
    fn next_recording_id(&mut self) -> String {
        self.recordings += 1;
        format!("{}-{}", self.parties.call_id, self.recordings)
    }

    /// Capture starts now, into recording `id`.
    fn capture(&mut self, id: String, now: Instant) -> Vec<Action> {
        self.recording = Some(Recording {
            id: id.clone(),
            started_at: self.shown(now),
            paused: None,
            skipped_ms: 0,
        });
        self.log(
            now,
            EventKind::RecordingStarted,
            json!({ "recordingId": id }),
        );
        vec![Action::StartRecording {
            id,
            resume_at: None,
        }]
    }

    fn stop_recording(&mut self, now: Instant) -> Vec<Action> {
        let Some(r) = self.recording.take() else {
            return vec![];
        };
        let detail = json!({ "recordingId": r.id });
        self.log(now, EventKind::RecordingStopped, detail);
        vec![Action::StopRecording]
    }

    /// The caller must hear the entry's recording announcement before
    /// a recording starts.
    fn needs_consent(&self) -> bool {
        self.policy.consent.is_some() && !self.consented
    }

    /// The announcement can be played now: the caller is on music (the
    /// pacer plays prompts, not a room's or a bot's stream) and none is
    /// playing.
    fn can_announce(&self) -> bool {
        let held = matches!(self.state, State::Held | State::Transferring);
        held && self.room.is_none() && self.consent.is_none()
    }

    /// Recording `id` starts after the announcement, or now.
    fn record_with_consent(&mut self, id: String, now: Instant) -> Vec<Action> {
        if self.needs_consent() {
            self.consent = Some(ConsentFor::Record { id });
            return vec![Action::PlayConsent];
        }
        self.capture(id, now)
    }

    /// What the entry's `record = "answer"` asks once the call is up.
    pub fn start_actions(&mut self, now: Instant) -> Vec<Action> {
        if self.policy.record == RecordMode::Answer && self.recordings == 0 {
            let id = self.next_recording_id();
            return self.record_with_consent(id, now);
        }
        vec![]
    }

    /// Whether `request` records the call from its bridge while the
    /// caller must first hear the announcement: the transfer then waits
    /// for it, on hold (see `transfer_after_consent`).
    pub(super) fn transfer_needs_consent(&self, request: &TransferRequest) -> bool {
        let records = match request.record {
            Some(asked) => asked && self.recording.is_none(),
            None => self.policy.record == RecordMode::Bridge && self.recordings == 0,
        };
        records && request.mode == Mode::Bridge && self.needs_consent()
    }

    /// The transfer just planned starts once the caller has heard the
    /// announcement (None: it cannot be played now, and the transfer
    /// starts at once; its bridge then records nothing).
    pub(super) fn transfer_after_consent(&mut self) -> Option<Vec<Action>> {
        if !self.can_announce() {
            return None;
        }
        self.consent = Some(ConsentFor::Transfer);
        Some(vec![Action::PlayConsent])
    }

    /// The announcement is over (`played` to its end, or not).
    pub(super) fn consent_over(&mut self, played: bool, now: Instant) -> Vec<Action> {
        let Some(waiting) = self.consent.take() else {
            return vec![];
        };
        self.consented |= played;
        match waiting {
            ConsentFor::Record { id } if played => self.capture(id, now),
            ConsentFor::Record { id } => {
                self.not_announced(id, now);
                vec![]
            }
            // The transfer goes on either way; unheard, its bridge records
            // nothing (`record_at_bridge`).
            ConsentFor::Transfer => match self.plan.as_ref() {
                Some(p) if p.attempts == 0 => self.attempt(now),
                _ => vec![],
            },
        }
    }

    /// Recording `id` cannot start: its announcement was not heard.
    fn not_announced(&mut self, id: String, now: Instant) {
        let error = "the recording announcement was not played to the caller";
        let detail = json!({ "recordingId": id, "error": error });
        self.log(now, EventKind::RecordingFailed, detail);
    }

    /// The caller was just bridged: the entry's `record = "bridge"` (the
    /// first bridge), and the update's `"record"` for this transfer on.
    pub(super) fn record_at_bridge(&mut self, now: Instant) -> Vec<Action> {
        let asked = self.room_request.as_ref().and_then(|r| r.record);
        let by_entry = self.policy.record == RecordMode::Bridge && self.recordings == 0;
        let start = match (asked, self.recording.is_some()) {
            (Some(true), false) => true,
            (Some(false), true) => return self.stop_recording(now),
            (None, false) => by_entry,
            _ => false,
        };
        if !start {
            return vec![];
        }
        let id = self.next_recording_id();
        if self.needs_consent() {
            // Never recorded unannounced (the transfer waited for the
            // announcement, which did not play).
            self.not_announced(id, now);
            return vec![];
        }
        self.capture(id, now)
    }

    /// A resumed call goes on recording into the same file, its clock
    /// moved on by the time the node was down.
    pub(super) fn resume_recording(&self, now: Instant) -> Vec<Action> {
        // An announcement cut by the restart plays again from its start.
        if self.consent.is_some() {
            return vec![Action::PlayConsent];
        }
        let Some(r) = &self.recording else {
            return vec![];
        };
        let mut ms = self.shown(now).saturating_sub(r.started_at);
        ms = ms.saturating_sub(r.skipped_ms);
        if let Some((since, PauseMode::Skip)) = r.paused {
            ms = ms.saturating_sub(super::millis(now.since(since)));
        }
        let mut actions = vec![Action::StartRecording {
            id: r.id.clone(),
            resume_at: Some(ms),
        }];
        if let Some((_, mode)) = r.paused {
            actions.push(Action::PauseRecording(mode));
        }
        actions
    }

    /// The call ends: so does its recording.
    pub(super) fn end_recording(&mut self, now: Instant) -> Vec<Action> {
        self.stop_recording(now)
    }

    /// The recording API's request.
    pub(super) fn request_record(
        &mut self,
        request: RecordRequest,
        now: Instant,
    ) -> Result<(RecordingNow, Vec<Action>), UpdateRefused> {
        if self.state == State::Ended {
            return Err(self.refuse(now, "call is ended".into()));
        }
        let now_of = |r: &Recording| RecordingNow {
            recording_id: r.id.clone(),
            state: if r.paused.is_some() {
                "paused"
            } else {
                "recording"
            },
        };
        // Waiting for its announcement: started, not yet capturing.
        if let Some(ConsentFor::Record { id }) = &self.consent {
            let id = id.clone();
            return match request {
                RecordRequest::Start => Ok((announcing(id), vec![])),
                RecordRequest::Stop => {
                    self.consent = None;
                    Ok((
                        RecordingNow {
                            recording_id: id,
                            state: "stopped",
                        },
                        vec![],
                    ))
                }
                RecordRequest::Pause(_) | RecordRequest::Resume => Err(self.refuse(
                    now,
                    "the recording announcement is playing; capture has not started".into(),
                )),
            };
        }
        let Some(r) = self.recording.as_mut() else {
            if request != RecordRequest::Start {
                return Err(self.refuse(now, "the call is not being recorded".into()));
            }
            if self.needs_consent() && !self.can_announce() {
                let reason = "the recording announcement plays only to a caller on hold";
                return Err(self.refuse(now, reason.into()));
            }
            let id = self.next_recording_id();
            let actions = self.record_with_consent(id.clone(), now);
            let status = match self.recording.as_ref() {
                Some(r) => now_of(r),
                None => announcing(id),
            };
            return Ok((status, actions));
        };
        let actions = match request {
            // Already recording: the same recording, nothing new.
            RecordRequest::Start => vec![],
            RecordRequest::Pause(_) | RecordRequest::Resume
                if r.paused.is_some() == matches!(request, RecordRequest::Pause(_)) =>
            {
                vec![]
            }
            RecordRequest::Pause(mode) => {
                r.paused = Some((now, mode));
                let detail = json!({ "recordingId": r.id, "pause": mode });
                self.log(now, EventKind::RecordingPaused, detail);
                vec![Action::PauseRecording(mode)]
            }
            RecordRequest::Resume => {
                if let Some((since, PauseMode::Skip)) = r.paused {
                    r.skipped_ms += super::millis(now.since(since));
                }
                r.paused = None;
                let detail = json!({ "recordingId": r.id });
                self.log(now, EventKind::RecordingResumed, detail);
                vec![Action::ResumeRecording]
            }
            RecordRequest::Stop => {
                let id = r.id.clone();
                let actions = self.stop_recording(now);
                return Ok((
                    RecordingNow {
                        recording_id: id,
                        state: "stopped",
                    },
                    actions,
                ));
            }
        };
        let r = self.recording.as_ref().map(now_of);
        Ok((r.unwrap_or_else(stopped), actions))
    }

    /// A recording's file is complete, or failed.
    pub(super) fn recording_ended(&mut self, id: &str, end: RecordingEnd, now: Instant) {
        let (kind, mut detail) = match end {
            RecordingEnd::Ready(detail) => (EventKind::RecordingReady, detail),
            RecordingEnd::Failed(error) => (EventKind::RecordingFailed, json!({ "error": error })),
        };
        if let Some(obj) = detail.as_object_mut() {
            obj.insert("recordingId".into(), json!(id));
        }
        // A recording that failed while running is over.
        if kind == EventKind::RecordingFailed && self.recording.as_ref().is_some_and(|r| r.id == id)
        {
            self.recording = None;
        }
        self.log(now, kind, detail);
    }

    /// The recording under way, if any.
    pub fn recording(&self) -> Option<&Recording> {
        self.recording.as_ref()
    }
}

fn announcing(id: String) -> RecordingNow {
    RecordingNow {
        recording_id: id,
        state: "announcing",
    }
}

fn stopped() -> RecordingNow {
    RecordingNow {
        recording_id: String::new(),
        state: "stopped",
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{parties, policy, t};
    use super::*;
    use crate::call::machine::{Input, Reply};

    fn call(record: RecordMode) -> Machine {
        let policy = crate::call::machine::Policy { record, ..policy() };
        Machine::answered(parties(), policy, t(0), 1_000)
    }

    fn ask(m: &mut Machine, r: RecordRequest, at: u64) -> Vec<Action> {
        m.handle(Input::RecordRequested(r), t(at))
    }

    fn events(m: &Machine) -> Vec<&'static str> {
        m.timeline().iter().map(|e| e.event.name()).collect()
    }

    #[test]
    fn an_entry_that_records_from_the_answer_starts_at_once_and_stops_at_the_end() {
        let mut m = call(RecordMode::Answer);
        let start = m.start_actions(t(0));
        assert_eq!(
            start,
            vec![Action::StartRecording {
                id: "c1-1".into(),
                resume_at: None
            }]
        );
        assert!(m.start_actions(t(1)).is_empty(), "once");
        let end = m.handle(Input::CallerHungUp, t(5_000));
        assert!(end.contains(&Action::StopRecording), "{end:?}");
        assert!(events(&m).contains(&"call.recording_started"));
        // The file's end comes after the call's, and is still told.
        m.handle(
            Input::RecordingEnded {
                id: "c1-1".into(),
                end: RecordingEnd::Ready(json!({ "durationMs": 5000 })),
            },
            t(5_100),
        );
        let last = m.timeline().last().unwrap();
        assert_eq!(last.event, EventKind::RecordingReady);
        assert_eq!(last.detail["recordingId"], "c1-1");
        assert_eq!(last.detail["durationMs"], 5000);
    }

    #[test]
    fn the_api_starts_pauses_resumes_and_stops_spans_each_with_its_id() {
        let mut m = call(RecordMode::Off);
        assert!(m.start_actions(t(0)).is_empty());
        let refused = ask(&mut m, RecordRequest::Pause(PauseMode::Silence), 10);
        assert!(matches!(&refused[0], Action::Reply(Reply::Record(Err(_)))));
        let a = ask(&mut m, RecordRequest::Start, 20);
        assert!(a.contains(&Action::StartRecording {
            id: "c1-1".into(),
            resume_at: None
        }));
        let a = ask(&mut m, RecordRequest::Pause(PauseMode::Skip), 1_000);
        assert_eq!(a[1], Action::PauseRecording(PauseMode::Skip));
        // Paused twice: the same pause, nothing new.
        assert_eq!(
            ask(&mut m, RecordRequest::Pause(PauseMode::Skip), 1_100).len(),
            1
        );
        let a = ask(&mut m, RecordRequest::Resume, 3_000);
        assert_eq!(a[1], Action::ResumeRecording);
        assert_eq!(m.recording().unwrap().skipped_ms, 2_000);
        let a = ask(&mut m, RecordRequest::Stop, 4_000);
        assert_eq!(a[1], Action::StopRecording);
        let a = ask(&mut m, RecordRequest::Start, 5_000);
        assert!(a.contains(&Action::StartRecording {
            id: "c1-2".into(),
            resume_at: None
        }));
        assert_eq!(
            events(&m)
                .into_iter()
                .filter(|e| e.starts_with("call.recording"))
                .collect::<Vec<_>>(),
            [
                "call.recording_started",
                "call.recording_paused",
                "call.recording_resumed",
                "call.recording_stopped",
                "call.recording_started"
            ]
        );
    }

    fn with_consent(record: RecordMode) -> Machine {
        let mut m = call(record);
        m.policy.consent = Some(std::time::Duration::from_secs(3));
        m
    }

    fn consent_over(m: &mut Machine, played: bool, at: u64) -> Vec<Action> {
        let end = crate::call::machine::PromptEnd::Consent { played };
        m.handle(Input::PromptFinished(end), t(at))
    }

    fn update_to_room(m: &mut Machine, at: u64) -> Vec<Action> {
        let request = crate::call::machine::tests::to_one(
            "sip:room@example.com",
            crate::call::machine::plan::Mode::Bridge,
        );
        m.handle(Input::UpdateRequested { request, key: None }, t(at))
    }

    #[test]
    fn capture_starts_only_once_the_announcement_has_played_and_it_plays_once() {
        let mut m = with_consent(RecordMode::Answer);
        assert_eq!(m.start_actions(t(0)), vec![Action::PlayConsent]);
        assert!(m.recording().is_none(), "not while it plays");
        // The API sees it started, announcing.
        let a = ask(&mut m, RecordRequest::Start, 100);
        assert_eq!(
            a,
            vec![Action::Reply(Reply::Record(Ok(RecordingNow {
                recording_id: "c1-1".into(),
                state: "announcing"
            })))]
        );
        assert_eq!(
            consent_over(&mut m, true, 3_000),
            vec![Action::StartRecording {
                id: "c1-1".into(),
                resume_at: None
            }]
        );
        let started = m.timeline().last().unwrap();
        assert_eq!(started.event, EventKind::RecordingStarted);
        assert_eq!(started.at, 1_000 + 3_000, "capture starts after it");
        // A second span: heard already, no second announcement.
        ask(&mut m, RecordRequest::Stop, 4_000);
        let a = ask(&mut m, RecordRequest::Start, 5_000);
        assert!(a.contains(&Action::StartRecording {
            id: "c1-2".into(),
            resume_at: None
        }));
    }

    #[test]
    fn an_announcement_cut_short_records_nothing_and_says_why() {
        let mut m = with_consent(RecordMode::Answer);
        m.start_actions(t(0));
        assert!(consent_over(&mut m, false, 500).is_empty());
        assert!(m.recording().is_none());
        let last = m.timeline().last().unwrap();
        assert_eq!(last.event, EventKind::RecordingFailed);
        assert_eq!(last.detail["recordingId"], "c1-1");
    }

    #[test]
    fn a_recorded_transfer_waits_on_hold_for_the_announcement() {
        let mut m = with_consent(RecordMode::Bridge);
        let a = update_to_room(&mut m, 100);
        assert_eq!(a[1..], [Action::PlayConsent], "no INVITE yet: {a:?}");
        let a = consent_over(&mut m, true, 3_100);
        assert!(matches!(a[..], [Action::Dial(_)]), "{a:?}");
        let a = m.handle(Input::RoomAnswered, t(4_000));
        assert!(
            a.contains(&Action::StartRecording {
                id: "c1-1".into(),
                resume_at: None
            }),
            "{a:?}"
        );
    }

    #[test]
    fn with_an_announcement_a_bridged_caller_cannot_start_recording() {
        let mut m = with_consent(RecordMode::Off);
        update_to_room(&mut m, 100);
        m.handle(Input::RoomAnswered, t(500));
        assert_eq!(m.state(), State::Bridged);
        let a = ask(&mut m, RecordRequest::Start, 1_000);
        let Action::Reply(Reply::Record(Err(e))) = &a[0] else {
            panic!("{a:?}");
        };
        assert!(
            e.reason.contains("only to a caller on hold"),
            "{}",
            e.reason
        );
    }

    #[test]
    fn a_resumed_call_goes_on_recording_with_its_clock_moved_on() {
        let mut m = call(RecordMode::Answer);
        m.start_actions(t(1_000));
        ask(&mut m, RecordRequest::Pause(PauseMode::Skip), 3_000);
        ask(&mut m, RecordRequest::Resume, 4_000);
        // Saved, and resumed by the next process 10 s after the start.
        let saved: Machine = serde_json::from_value(serde_json::to_value(&m).unwrap()).unwrap();
        assert_eq!(
            saved.resume_recording(t(10_000)),
            vec![Action::StartRecording {
                id: "c1-1".into(),
                resume_at: Some(8_000)
            }]
        );
    }
}
