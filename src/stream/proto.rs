//! The Twilio Media Streams messages (bidirectional streams), without I/O.
//!
//! What pinless sends, in order: `connected`, `start`, then `media` every
//! 20 ms with the caller's audio, `dtmf` for its key presses, `mark` when
//! audio the bot marked has been played, and `stop` before closing. What
//! the bot sends: `media` (μ-law 8 kHz, any length), `mark`, `clear`.
//! Field names, and numbers written as strings (`sequenceNumber`, `chunk`,
//! `timestamp`), are Twilio's, so that a bot written for Twilio (pipecat's
//! `TwilioFrameSerializer`, for one) reads pinless unchanged.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// Why a message from the bot could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    /// Not a JSON object with a string `event`.
    #[error("not a Media Streams message: {0}")]
    Json(#[from] serde_json::Error),
    /// A `media` message whose payload is not base64.
    #[error("media payload is not base64: {0}")]
    Payload(#[from] base64::DecodeError),
}

/// A message from the bot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// Audio for the caller: μ-law 8 kHz bytes, any length.
    Media(Vec<u8>),
    /// Tell me when the audio sent before this has been played.
    Mark(String),
    /// Drop the audio not played yet (barge-in).
    Clear,
    /// An event pinless does not act on (its name), ignored as Twilio does.
    Other(String),
}

#[derive(Deserialize)]
struct Raw {
    event: String,
    #[serde(default)]
    media: Option<RawMedia>,
    #[serde(default)]
    mark: Option<RawMark>,
}

#[derive(Deserialize)]
struct RawMedia {
    payload: String,
}

#[derive(Deserialize)]
struct RawMark {
    name: String,
}

impl Incoming {
    /// Reads one text frame from the bot.
    pub fn parse(text: &str) -> Result<Incoming, ProtoError> {
        let raw: Raw = serde_json::from_str(text)?;
        Ok(match (raw.event.as_str(), raw.media, raw.mark) {
            ("media", Some(m), _) => Incoming::Media(B64.decode(m.payload.as_bytes())?),
            ("mark", _, Some(m)) => Incoming::Mark(m.name),
            ("clear", _, _) => Incoming::Clear,
            // `media` without a payload or `mark` without a name: say so
            // through serde's own wording.
            ("media", None, _) => return Err(missing("media")),
            ("mark", _, None) => return Err(missing("mark")),
            (other, _, _) => Incoming::Other(other.to_string()),
        })
    }
}

fn missing(field: &'static str) -> ProtoError {
    ProtoError::Json(serde::de::Error::missing_field(field))
}

/// The stream's description in `start`.
#[derive(Debug, Clone)]
pub struct StartInfo {
    /// The call's `callId` (Twilio's `callSid`).
    pub call_sid: String,
    /// `customParameters`: `callId`, `From`, `To`, the caller's `X-`
    /// headers, then the update's `streamParameters`.
    pub parameters: Vec<(String, String)>,
}

/// Builds the messages pinless sends on one stream, numbering them
/// (`sequenceNumber` counts every message from 1; `chunk` counts `media`
/// messages from 1), as text frames.
#[derive(Debug)]
pub struct Outbox {
    stream_sid: String,
    call_sid: String,
    sequence: u64,
    chunk: u64,
}

/// The only track pinless sends: the caller's audio.
const TRACK: &str = "inbound";

impl Outbox {
    pub fn new(stream_sid: String, call_sid: String) -> Outbox {
        Outbox {
            stream_sid,
            call_sid,
            sequence: 0,
            chunk: 0,
        }
    }

    pub fn stream_sid(&self) -> &str {
        &self.stream_sid
    }

    fn next(&mut self) -> String {
        self.sequence += 1;
        self.sequence.to_string()
    }

    /// The first message: no number, no stream id (as Twilio's).
    pub fn connected(&self) -> String {
        json!({ "event": "connected", "protocol": "Call", "version": "1.0.0" }).to_string()
    }

    pub fn start(&mut self, info: &StartInfo) -> String {
        let mut custom = Map::new();
        for (name, value) in &info.parameters {
            custom.insert(name.clone(), Value::String(value.clone()));
        }
        json!({
            "event": "start",
            "sequenceNumber": self.next(),
            "start": {
                "streamSid": self.stream_sid,
                "callSid": info.call_sid,
                "accountSid": "",
                "tracks": [TRACK],
                "customParameters": custom,
                "mediaFormat": { "encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1 },
            },
            "streamSid": self.stream_sid,
        })
        .to_string()
    }

    /// 20 ms of the caller's audio (μ-law), `timestamp_ms` after the start.
    pub fn media(&mut self, mulaw: &[u8], timestamp_ms: u64) -> String {
        self.chunk += 1;
        json!({
            "event": "media",
            "sequenceNumber": self.next(),
            "media": {
                "track": TRACK,
                "chunk": self.chunk.to_string(),
                "timestamp": timestamp_ms.to_string(),
                "payload": B64.encode(mulaw),
            },
            "streamSid": self.stream_sid,
        })
        .to_string()
    }

    /// A key the caller pressed: `0`-`9`, `*`, `#`, `A`-`D`.
    pub fn dtmf(&mut self, digit: &str) -> String {
        json!({
            "event": "dtmf",
            "sequenceNumber": self.next(),
            "dtmf": { "track": "inbound_track", "digit": digit },
            "streamSid": self.stream_sid,
        })
        .to_string()
    }

    /// The bot's mark `name`: the audio before it has been played (or cleared).
    pub fn mark(&mut self, name: &str) -> String {
        json!({
            "event": "mark",
            "sequenceNumber": self.next(),
            "mark": { "name": name },
            "streamSid": self.stream_sid,
        })
        .to_string()
    }

    /// The last message before pinless closes the socket.
    pub fn stop(&mut self) -> String {
        json!({
            "event": "stop",
            "sequenceNumber": self.next(),
            "stop": { "accountSid": "", "callSid": self.call_sid },
            "streamSid": self.stream_sid,
        })
        .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Value {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn messages_are_twilio_s_shape_and_numbered() {
        let mut o = Outbox::new("MZ1".into(), "call-1".into());
        assert_eq!(v(&o.connected())["event"], "connected");
        let start = v(&o.start(&StartInfo {
            call_sid: "call-1".into(),
            parameters: vec![("X-Lang".into(), "de".into())],
        }));
        assert_eq!(start["sequenceNumber"], "1");
        assert_eq!(start["start"]["callSid"], "call-1");
        assert_eq!(start["start"]["customParameters"]["X-Lang"], "de");
        assert_eq!(start["start"]["mediaFormat"]["encoding"], "audio/x-mulaw");
        assert_eq!(start["start"]["tracks"], json!(["inbound"]));
        let m1 = v(&o.media(&[0xFF; 160], 0));
        let m2 = v(&o.media(&[0x7F; 160], 20));
        assert_eq!(m1["media"]["chunk"], "1");
        assert_eq!(m2["media"]["chunk"], "2");
        assert_eq!(m2["media"]["timestamp"], "20");
        assert_eq!(m2["sequenceNumber"], "3");
        assert_eq!(m2["streamSid"], "MZ1");
        let payload = B64
            .decode(m2["media"]["payload"].as_str().unwrap())
            .unwrap();
        assert_eq!(payload, vec![0x7F; 160]);
        assert_eq!(v(&o.dtmf("5"))["dtmf"]["digit"], "5");
        assert_eq!(v(&o.mark("m"))["mark"]["name"], "m");
        let stop = v(&o.stop());
        assert_eq!(stop["event"], "stop");
        assert_eq!(stop["sequenceNumber"], "6");
    }

    #[test]
    fn bot_messages_parse_or_say_why() {
        let media = r#"{"event":"media","streamSid":"MZ1","media":{"payload":"AAEC"}}"#;
        assert_eq!(
            Incoming::parse(media).unwrap(),
            Incoming::Media(vec![0, 1, 2])
        );
        let mark = r#"{"event":"mark","streamSid":"MZ1","mark":{"name":"a"}}"#;
        assert_eq!(Incoming::parse(mark).unwrap(), Incoming::Mark("a".into()));
        let clear = r#"{"event":"clear","streamSid":"MZ1"}"#;
        assert_eq!(Incoming::parse(clear).unwrap(), Incoming::Clear);
        assert_eq!(
            Incoming::parse(r#"{"event":"hello"}"#).unwrap(),
            Incoming::Other("hello".into())
        );
        assert!(matches!(
            Incoming::parse(r#"{"event":"media","media":{"payload":"@@"}}"#),
            Err(ProtoError::Payload(_))
        ));
        assert!(matches!(
            Incoming::parse(r#"{"event":"media"}"#),
            Err(ProtoError::Json(_))
        ));
        assert!(matches!(Incoming::parse("[1]"), Err(ProtoError::Json(_))));
    }
}
