//! A call's media as plain data, saved at each state change of the call
//! and used by a new process to take the call's media up again (issue 11):
//! the same ports, peers and codecs, and the caller's stream continued on
//! its SSRC with sequence number and timestamp moved on by the time the
//! media was down.
//!
//! Sans-IO: taking a stream's position (`position`) and projecting it over
//! a gap (`project`) are arithmetic on numbers, tested here without
//! sockets.

use super::pacer::StreamState;
use super::rewrite::Mapping;
use super::srtp::SrtpState;
use crate::codec::{AudioCodec, LegCodec, OpusSend};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Everything needed to take a call's media up again in another process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaState {
    /// The caller's leg.
    pub caller: LegState,
    /// Our stream to the caller (music or the relayed room).
    pub stream: StreamPosition,
    /// The room's leg, when the call is bridged; `None` when held.
    pub room: Option<RoomState>,
    /// The caller leg's SRTP keys and indexes (None: plain RTP). Keys in
    /// the state DB: a call resumed without them could not be heard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_srtp: Option<SrtpState>,
    /// The room leg's, when bridged to an SRTP room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_srtp: Option<SrtpState>,
}

/// One leg: our port and the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegState {
    /// Our RTP port (the one in the SDP the peer got).
    pub port: u16,
    /// Where we send: the peer's SDP address, or where its packets came
    /// from once `latched`.
    pub remote: SocketAddr,
    /// The peer's packets were seen and `remote` is their source; packets
    /// from anywhere else are dropped.
    pub latched: bool,
    pub codec: CodecState,
    /// The peer's SDP says it sends (sendrecv or sendonly), so its silence
    /// means it is gone (see `[media] rtp_timeout_secs`).
    #[serde(default = "yes")]
    pub sends: bool,
}

fn yes() -> bool {
    true
}

/// What the leg negotiated (`LegCodec`, as saved).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodecState {
    /// `"PCMU"`, `"PCMA"`, `"G722"` or `"opus"`. The key is still `law`, as when
    /// only G.711 was spoken, so calls saved then and now read alike.
    pub law: SavedLaw,
    pub payload_type: u8,
    pub event_payload_type: Option<u8>,
    /// An Opus peer's `maxplaybackrate` below 16000 (`OpusSend`); absent
    /// when false, and in calls saved before it was kept.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub opus_narrowband: bool,
    /// 20 ms frames per packet an Opus peer asked for; absent when 1.
    #[serde(default = "one_frame", skip_serializing_if = "is_one_frame")]
    pub opus_frames: u8,
}

fn one_frame() -> u8 {
    1
}

fn is_one_frame(frames: &u8) -> bool {
    *frames == 1
}

/// An audio codec by its SDP encoding name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SavedLaw {
    #[serde(rename = "PCMU")]
    Pcmu,
    #[serde(rename = "PCMA")]
    Pcma,
    #[serde(rename = "G722")]
    G722,
    #[serde(rename = "opus")]
    Opus,
}

/// The room's leg of a bridged call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomState {
    pub leg: LegState,
    /// How the room's packets map onto the caller's stream; `None` until
    /// the room's first packet.
    pub mapping: Option<Mapping>,
}

/// Where our stream to the caller stood: the packet due at `due_unix_ms`
/// carries `next_sequence` and `next_timestamp`.
///
/// Why wall time here, when every deadline of a call is monotonic: this is
/// read by another process, maybe after a reboot, where no monotonic clock
/// of ours means anything. A wall clock stepped meanwhile only moves the
/// estimate of the gap, which `project`'s margin absorbs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamPosition {
    pub ssrc: u32,
    pub next_sequence: u16,
    pub next_timestamp: u32,
    pub due_unix_ms: u64,
}

/// Packet period.
const PERIOD: Duration = Duration::from_millis(20);

/// Sequence numbers skipped on top of the packets the gap would have held.
/// Why: the caller's jitter buffer must never see a number it has seen
/// (an old number after the gap reads as a late duplicate and is dropped,
/// or as a wrap and resets the stream). The estimate of the gap is exact
/// for hold music (the pacer sends one packet per period, catching up
/// when late), but a room's numbering runs a little ahead of the clock
/// (RFC 4733 end packets are sent three times) and the wall clock may be
/// stepped between save and resume. 100 packets (2 s) covers those, and
/// stays far below the 3,000 that RFC 3550's receivers still take as a
/// gap in the same stream rather than a new one.
pub const SEQUENCE_MARGIN: u16 = 100;

impl From<LegCodec> for CodecState {
    fn from(c: LegCodec) -> Self {
        CodecState {
            law: match c.audio {
                AudioCodec::Pcmu => SavedLaw::Pcmu,
                AudioCodec::Pcma => SavedLaw::Pcma,
                AudioCodec::G722 => SavedLaw::G722,
                AudioCodec::Opus => SavedLaw::Opus,
            },
            payload_type: c.payload_type,
            event_payload_type: c.event_payload_type,
            opus_narrowband: c.opus.narrowband,
            opus_frames: c.opus.frames,
        }
    }
}

impl From<CodecState> for LegCodec {
    fn from(c: CodecState) -> Self {
        LegCodec {
            audio: match c.law {
                SavedLaw::Pcmu => AudioCodec::Pcmu,
                SavedLaw::Pcma => AudioCodec::Pcma,
                SavedLaw::G722 => AudioCodec::G722,
                SavedLaw::Opus => AudioCodec::Opus,
            },
            payload_type: c.payload_type,
            event_payload_type: c.event_payload_type,
            // Read back through `asked`'s bounds: a hand-edited or corrupt
            // record cannot ask for more than we join.
            opus: OpusSend {
                narrowband: c.opus_narrowband,
                frames: c.opus_frames.clamp(1, OpusSend::MAX_FRAMES),
            },
        }
    }
}

impl StreamPosition {
    /// The position of a stream that stands at `s` at `now`, which is
    /// `unix_now` on the wall clock.
    pub fn of(s: StreamState, now: Instant, unix_now: u64) -> StreamPosition {
        // The next packet is due a period after the last one left; a stream
        // that sent nothing yet is due now.
        let due_in = s
            .last_sent
            .map(|at| PERIOD.saturating_sub(now.saturating_duration_since(at)))
            .unwrap_or(Duration::ZERO);
        let overdue = s
            .last_sent
            .map(|at| now.saturating_duration_since(at).saturating_sub(PERIOD))
            .unwrap_or(Duration::ZERO);
        let due = u128::from(unix_now) + due_in.as_millis();
        let due = due.saturating_sub(overdue.as_millis());
        StreamPosition {
            ssrc: s.ssrc,
            next_sequence: s.next_sequence,
            next_timestamp: s.next_timestamp,
            due_unix_ms: u64::try_from(due).unwrap_or(u64::MAX),
        }
    }

    /// Packets the stream would have carried between its save and
    /// `unix_now` (without `SEQUENCE_MARGIN`).
    pub fn gap_packets(&self, unix_now: u64) -> u64 {
        unix_now.saturating_sub(self.due_unix_ms) / PERIOD.as_millis() as u64
    }

    /// The SRTP gap of a leg over the same time (see `srtp::Gap`): our
    /// stream, if the leg carries it, moves exactly as `project` moves
    /// its sequence number.
    pub fn srtp_gap(&self, unix_now: u64, ours: bool) -> super::srtp::Gap {
        let packets = self.gap_packets(unix_now);
        super::srtp::Gap {
            packets,
            ours: ours.then_some((self.ssrc, packets + u64::from(SEQUENCE_MARGIN))),
        }
    }

    /// Where the stream continues at `unix_now`, after the gap since it was
    /// saved: the timestamp moved on by the time passed (the caller's
    /// clock ran on: a timestamp that did not would squeeze the gap into
    /// nothing and upset its jitter buffer and lip timing), the sequence by
    /// the packets the gap would have held plus `SEQUENCE_MARGIN` (see
    /// there). The result's `last_sent` (at `now`) says a packet is due now.
    /// `frame_ticks` is the stream's clock: ticks per 20 ms (160, or 960 for
    /// Opus).
    pub fn project(&self, unix_now: u64, now: Instant, frame_ticks: u32) -> StreamState {
        // A clock stepped back makes the gap zero, not negative.
        let gap_ms = unix_now.saturating_sub(self.due_unix_ms);
        let packets = self.gap_packets(unix_now);
        // Both kept modulo their width, as RTP numbers wrap by design.
        let sequence = self
            .next_sequence
            .wrapping_add(packets as u16)
            .wrapping_add(SEQUENCE_MARGIN);
        let ticks = u128::from(gap_ms) * u128::from(frame_ticks) / PERIOD.as_millis();
        StreamState {
            ssrc: self.ssrc,
            next_sequence: sequence,
            next_timestamp: self.next_timestamp.wrapping_add(ticks as u32),
            last_sent: now.checked_sub(PERIOD),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNIX: u64 = 1_700_000_000_000;

    fn stream(last_sent: Option<Instant>) -> StreamState {
        StreamState {
            ssrc: 7,
            next_sequence: 65_500,
            next_timestamp: u32::MAX - 100,
            last_sent,
        }
    }

    #[test]
    fn the_position_is_when_the_next_packet_is_due() {
        let now = Instant::now();
        let p = StreamPosition::of(stream(now.checked_sub(Duration::from_millis(5))), now, UNIX);
        assert_eq!(p.due_unix_ms, UNIX + 15);
        assert_eq!((p.ssrc, p.next_sequence), (7, 65_500));
        let late = StreamPosition::of(
            stream(now.checked_sub(Duration::from_millis(32))),
            now,
            UNIX,
        );
        assert_eq!(late.due_unix_ms, UNIX - 12);
        assert_eq!(
            StreamPosition::of(stream(None), now, UNIX).due_unix_ms,
            UNIX
        );
    }

    #[test]
    fn a_gap_moves_sequence_and_timestamp_on_never_back() {
        let now = Instant::now();
        let p = StreamPosition::of(stream(None), now, UNIX);
        // 3 s down: 150 packets and 24,000 ticks, wrapping both.
        let s = p.project(UNIX + 3_000, now, 160);
        assert_eq!(s.ssrc, 7);
        assert_eq!(
            s.next_sequence,
            65_500u16.wrapping_add(150 + SEQUENCE_MARGIN)
        );
        assert_eq!(s.next_timestamp, (u32::MAX - 100).wrapping_add(24_000));
        assert_eq!(s.last_sent.map(|at| now - at), Some(PERIOD));
        // An Opus caller's clock runs at 48 kHz: six times the ticks.
        let opus = p.project(UNIX + 3_000, now, 960);
        assert_eq!(opus.next_sequence, s.next_sequence);
        assert_eq!(opus.next_timestamp, (u32::MAX - 100).wrapping_add(144_000));
        // A wall clock stepped back: no gap, but still the margin.
        let back = p.project(UNIX - 60_000, now, 160);
        assert_eq!(back.next_sequence, 65_500u16.wrapping_add(SEQUENCE_MARGIN));
        assert_eq!(back.next_timestamp, u32::MAX - 100);
        // Days down: modulo arithmetic, no overflow.
        let days = p.project(UNIX + 9 * 86_400_000, now, 160);
        let ticks = (9u64 * 86_400_000 * 8) % (1 << 32);
        assert_eq!(
            days.next_timestamp,
            (u32::MAX - 100).wrapping_add(ticks as u32)
        );
    }

    #[test]
    fn saved_state_reads_back_and_names_the_law() {
        let state = MediaState {
            caller: LegState {
                port: 20_000,
                remote: "192.0.2.1:4000".parse().unwrap(),
                latched: true,
                codec: CodecState {
                    law: SavedLaw::Pcma,
                    payload_type: 8,
                    event_payload_type: Some(101),
                    opus_narrowband: false,
                    opus_frames: 1,
                },
                sends: true,
            },
            stream: StreamPosition::of(stream(None), Instant::now(), UNIX),
            room: None,
            caller_srtp: None,
            room_srtp: None,
        };
        let json = serde_json::to_string(&state).unwrap();
        assert!(json.contains("\"PCMA\""), "{json}");
        assert_eq!(serde_json::from_str::<MediaState>(&json).unwrap(), state);
        let codec: LegCodec = state.caller.codec.into();
        assert_eq!(CodecState::from(codec), state.caller.codec);
    }

    #[test]
    fn a_g722_leg_saves_by_name_and_a_call_saved_before_g722_still_reads() {
        let g722 = LegCodec::new(AudioCodec::G722, 9, None);
        let json = serde_json::to_string(&CodecState::from(g722)).unwrap();
        assert_eq!(
            json,
            r#"{"law":"G722","payload_type":9,"event_payload_type":null}"#
        );
        let back: CodecState = serde_json::from_str(&json).unwrap();
        assert_eq!(LegCodec::from(back), g722);
        // As the previous version wrote it.
        let old = r#"{"law":"PCMU","payload_type":0,"event_payload_type":101}"#;
        let codec = LegCodec::from(serde_json::from_str::<CodecState>(old).unwrap());
        assert_eq!(codec.audio, AudioCodec::Pcmu);
        assert_eq!(codec.event_payload_type, Some(101));
    }

    #[test]
    fn an_opus_leg_saves_by_its_sdp_name_with_its_dynamic_type() {
        let opus = LegCodec::new(AudioCodec::Opus, 96, Some(110));
        let json = serde_json::to_string(&CodecState::from(opus)).unwrap();
        assert_eq!(
            json,
            r#"{"law":"opus","payload_type":96,"event_payload_type":110}"#
        );
        let back: CodecState = serde_json::from_str(&json).unwrap();
        assert_eq!(LegCodec::from(back), opus);
        // What the peer asked of it is kept, and read back within bounds.
        let asked = LegCodec {
            opus: OpusSend {
                narrowband: true,
                frames: 3,
            },
            ..opus
        };
        let json = serde_json::to_string(&CodecState::from(asked)).unwrap();
        assert!(
            json.ends_with(r#""opus_narrowband":true,"opus_frames":3}"#),
            "{json}"
        );
        assert_eq!(
            LegCodec::from(serde_json::from_str::<CodecState>(&json).unwrap()),
            asked
        );
        let wild = json.replace(r#""opus_frames":3"#, r#""opus_frames":200"#);
        let read = LegCodec::from(serde_json::from_str::<CodecState>(&wild).unwrap());
        assert_eq!(read.opus.frames, OpusSend::MAX_FRAMES);
    }
}
