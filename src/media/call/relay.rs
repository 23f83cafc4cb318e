//! A bridged call's relay: the room's leg, and what relaying between it
//! and the caller keeps. Packets go untouched when the legs agree on the
//! codec; PCMU↔PCMA and G.722↔G.711 are converted in place when they
//! differ, and Opus↔the others into a packet of their own (see
//! `transcode`, one converter per direction since G.722's and Opus's are
//! stateful); telephone-events pass with their payload type mapped (and
//! their timestamp and duration moved to the other clock, Opus's events
//! counting at 48 kHz). What goes to the
//! caller is rewritten into the caller's one stream (`Rewriter`), so the
//! caller sees no new SSRC or jump at the switch from music, nor when a
//! room changes its own stream. An Opus leg that asked for 40 or 60 ms
//! packets gets the 20 ms ones joined (`Joining`), numbered anew.

use super::LegCodec;
use super::leg::Leg;
use crate::codec::AudioCodec;
use crate::media::joiner::Joiner;
use crate::media::liveness::Liveness;
use crate::media::pacer::StreamState;
use crate::media::record::Tap;
use crate::media::rewrite::Rewriter;
use crate::media::rtp;
use crate::media::state::RoomState;
use crate::media::stats::RelayStats;
use crate::media::transcode::{self, Transcoder};
use std::sync::atomic::Ordering;
use std::time::Instant;

pub(super) struct Relay {
    room: Leg,
    /// The caller's stream, continued from where music (or a former
    /// room) left it.
    rewriter: Rewriter,
    /// Codec conversion state, one per direction.
    to_room: Transcoder,
    to_caller: Transcoder,
    /// A converted packet whose length changed (to or from Opus).
    scratch: Vec<u8>,
    /// Joining for a leg that asked for longer Opus packets, per direction.
    room_joining: Option<Box<Joining>>,
    caller_joining: Option<Box<Joining>>,
}

impl Relay {
    /// Relays between `room` and a caller speaking `caller`, continuing
    /// the caller's stream through `rewriter`.
    pub fn new(room: Leg, rewriter: Rewriter, caller: LegCodec) -> Relay {
        let mut to_room = Transcoder::new();
        to_room.send_narrowband(room.codec().opus.narrowband);
        let mut to_caller = Transcoder::new();
        to_caller.send_narrowband(caller.opus.narrowband);
        Relay {
            room_joining: Joining::for_leg(room.codec()),
            caller_joining: Joining::for_leg(caller),
            room,
            rewriter,
            to_room,
            to_caller,
            scratch: Vec::new(),
        }
    }

    pub fn room(&self) -> &Leg {
        &self.room
    }

    pub fn room_mut(&mut self) -> &mut Leg {
        &mut self.room
    }

    /// A packet from the caller (plain, already taken in by its leg), on
    /// to the room; `caller` is what the caller's leg speaks.
    pub fn pass_to_room(&mut self, packet: &mut [u8], caller: LegCodec, stats: &RelayStats) {
        let to = self.room.codec();
        let Relay {
            room,
            to_room,
            scratch,
            room_joining,
            ..
        } = self;
        let out = match map_payload(packet, caller, to, to_room, scratch) {
            Some(Mapped::InPlace) => packet,
            Some(Mapped::Scratch) => &mut scratch[..],
            None => return,
        };
        let deliver = |out: &mut [u8]| {
            room.send(out);
            stats.relayed.fetch_add(1, Ordering::Relaxed);
        };
        match room_joining {
            Some(joining) => joining.pass(out, to.payload_type, deliver),
            None => deliver(out),
        }
    }

    /// A packet from the room (plain, already taken in by its leg), on to
    /// the caller, in the caller's stream; a recording's `tap` gets its
    /// audio as the caller gets it.
    pub fn pass_to_caller(
        &mut self,
        packet: &mut [u8],
        caller: &Leg,
        tap: Option<&Tap>,
        stats: &RelayStats,
    ) {
        let (from, to) = (self.room.codec(), caller.codec());
        let Relay {
            rewriter,
            to_caller,
            scratch,
            caller_joining,
            ..
        } = self;
        let out = match map_payload(packet, from, to, to_caller, scratch) {
            Some(Mapped::InPlace) => packet,
            Some(Mapped::Scratch) => &mut scratch[..],
            None => return,
        };
        let mut deliver = |out: &mut [u8]| {
            // The header as mapped (its timestamp on the caller's clock).
            let Some((header, payload)) = rtp::parse(out) else {
                return;
            };
            if let Some(tap) = tap
                && let Some(audio) = to.audio_of(header.payload_type)
            {
                tap.heard(audio, &out[payload]);
            }
            let mut rewritten = rewriter.rewrite(&header, Instant::now());
            rewritten.payload_type = header.payload_type;
            rewritten.rewrite(out);
            caller.send(out);
            stats.relayed.fetch_add(1, Ordering::Relaxed);
        };
        match caller_joining {
            Some(joining) => joining.pass(out, to.payload_type, deliver),
            None => deliver(out),
        }
    }

    /// Where the caller's stream stands (to hand it to the pacer, or to a
    /// next room).
    pub fn stream(&self) -> StreamState {
        self.rewriter.state()
    }

    /// The room as saved state.
    pub fn state(&self, liveness: &Liveness) -> RoomState {
        RoomState {
            leg: self.room.state(liveness),
            mapping: self.rewriter.mapping(),
        }
    }
}

/// One direction's joining, towards an Opus leg that asked for longer
/// packets: the joiner, and the numbers of the packets it sends. A joined
/// packet takes one sequence number where its frames came with several,
/// so every packet sent this way is numbered anew, consecutively from the
/// first one's own number (the room's stream gaps nothing; the caller's
/// rewriter maps these numbers as it would the room's).
struct Joining {
    joiner: Joiner,
    next: Option<u16>,
    /// The packet being sent.
    packet: Vec<u8>,
}

impl Joining {
    fn for_leg(leg: LegCodec) -> Option<Box<Joining>> {
        let joiner = Joiner::for_leg(leg)?;
        Some(Box::new(Joining {
            joiner,
            next: None,
            packet: Vec::new(),
        }))
    }

    /// Sends `packet` on through `deliver`: its audio (payload type
    /// `audio`) through the joiner, anything else (an event) as it is,
    /// each packet numbered anew.
    fn pass(&mut self, packet: &[u8], audio: u8, mut deliver: impl FnMut(&mut [u8])) {
        let Some((h, payload)) = rtp::parse(packet) else {
            return;
        };
        let Joining {
            joiner,
            next,
            packet: out,
        } = self;
        let next = next.get_or_insert(h.sequence);
        let mut emit = |timestamp: u32, marker: bool, payload: &[u8]| {
            let mut header = [0u8; rtp::HEADER_LEN];
            rtp::Header {
                marker,
                payload_type: h.payload_type,
                sequence: *next,
                timestamp,
                ssrc: h.ssrc,
            }
            .write(&mut header);
            *next = next.wrapping_add(1);
            out.clear();
            out.extend_from_slice(&header);
            out.extend_from_slice(payload);
            deliver(out);
        };
        let payload = &packet[payload];
        match h.payload_type == audio {
            true => joiner.push(h.timestamp, h.marker, payload, emit),
            false => emit(h.timestamp, h.marker, payload),
        }
    }
}

/// Where `map_payload` left the packet to send.
#[derive(Debug, PartialEq, Eq)]
enum Mapped {
    /// In the packet itself.
    InPlace,
    /// In the scratch buffer: converted to or from Opus, its length
    /// changed.
    Scratch,
}

/// Maps `packet` from leg `from` to leg `to`: its payload type, its audio
/// (in another codec, through `transcoder`), and for legs on different RTP
/// clocks its timestamp (and an event's duration). None for packets to
/// drop: not RTP, a payload type the other leg did not negotiate, or audio
/// that cannot be converted.
fn map_payload(
    packet: &mut [u8],
    from: LegCodec,
    to: LegCodec,
    transcoder: &mut Transcoder,
    scratch: &mut Vec<u8>,
) -> Option<Mapped> {
    let (header, payload) = rtp::parse(packet)?;
    let audio = if header.payload_type == from.payload_type {
        from.audio
    } else if Some(header.payload_type) == from.event_payload_type {
        let pt = to.event_payload_type?;
        let (a, b) = (from.audio.clock_rate(), to.audio.clock_rate());
        if a != b {
            let timestamp = transcoder.timestamp(header.timestamp, a, b);
            packet[4..8].copy_from_slice(&timestamp.to_be_bytes());
            // RFC 4733 §2.3: the event's duration, on the same clock.
            if let Some(d) = packet.get_mut(payload.start + 2..payload.start + 4) {
                let ticks =
                    u64::from(u16::from_be_bytes([d[0], d[1]])) * u64::from(b) / u64::from(a);
                d.copy_from_slice(&u16::try_from(ticks).unwrap_or(u16::MAX).to_be_bytes());
            }
        }
        packet[1] = (packet[1] & 0x80) | pt;
        return Some(Mapped::InPlace);
    } else {
        // A static type of ours the leg did not pick but sent anyway.
        AudioCodec::from_payload_type(header.payload_type)?
    };
    if transcode::in_place(audio, to.audio) {
        transcoder.convert(&mut packet[payload], audio, to.audio);
        packet[1] = (packet[1] & 0x80) | to.payload_type;
        return Some(Mapped::InPlace);
    }
    scratch.clear();
    scratch.extend_from_slice(&packet[..payload.start]);
    let (sequence, payload) = (header.sequence, &packet[payload]);
    // From Opus, the audio may start earlier: a lost packet's, recovered.
    let start = transcoder.convert_packet(
        sequence,
        header.timestamp,
        payload,
        audio,
        to.audio,
        scratch,
    )?;
    // No padding now: the payload is new.
    scratch[0] &= !0x20;
    scratch[1] = (scratch[1] & 0x80) | to.payload_type;
    let timestamp = transcoder.timestamp(start, audio.clock_rate(), to.audio.clock_rate());
    scratch[4..8].copy_from_slice(&timestamp.to_be_bytes());
    Some(Mapped::Scratch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::g711::{alaw_encode, ulaw_decode, ulaw_encode};
    use crate::media::g722::{G722Decoder, G722Encoder};

    fn packet(pt: u8, payload: &[u8]) -> Vec<u8> {
        let mut head = [0u8; rtp::HEADER_LEN];
        rtp::Header {
            marker: false,
            payload_type: pt,
            sequence: 1,
            timestamp: 2,
            ssrc: 3,
        }
        .write(&mut head);
        [&head[..], payload].concat()
    }

    const MU: LegCodec = LegCodec::new(AudioCodec::Pcmu, 0, Some(101));
    const A: LegCodec = LegCodec::new(AudioCodec::Pcma, 8, Some(96));

    #[test]
    fn audio_is_transcoded_and_events_remapped() {
        let mut p = packet(0, &[ulaw_encode(1000), ulaw_encode(-1000)]);
        assert!(map_payload(&mut p, MU, A, &mut Transcoder::new(), &mut Vec::new()).is_some());
        assert_eq!(p[1] & 0x7F, 8);
        let via = |s: i16| alaw_encode(ulaw_decode(ulaw_encode(s)));
        assert_eq!(&p[12..], &[via(1000), via(-1000)][..]);
        let mut e = packet(101, &[5, 0x80, 0, 160]);
        assert!(map_payload(&mut e, MU, A, &mut Transcoder::new(), &mut Vec::new()).is_some());
        assert_eq!(e[1] & 0x7F, 96);
        assert_eq!(&e[12..], &[5, 0x80, 0, 160]);
    }

    #[test]
    fn unknown_or_unnegotiated_types_are_dropped() {
        let mut p = packet(18, &[1, 2]);
        assert!(map_payload(&mut p, MU, A, &mut Transcoder::new(), &mut Vec::new()).is_none());
        let no_events = LegCodec {
            event_payload_type: None,
            ..A
        };
        let mut e = packet(101, &[5, 0x80, 0, 160]);
        assert!(
            map_payload(
                &mut e,
                MU,
                no_events,
                &mut Transcoder::new(),
                &mut Vec::new()
            )
            .is_none()
        );
    }

    const WIDE: LegCodec = LegCodec::new(AudioCodec::G722, 9, Some(101));

    #[test]
    fn g722_is_relayed_untouched_to_g722_and_transcoded_to_g711() {
        let pcm: Vec<i16> = (0..320)
            .map(|i| ((i as f64 * 0.3).sin() * 8000.0) as i16)
            .collect();
        let g722 = G722Encoder::new().encode(&pcm);
        let mut p = packet(9, &g722);
        assert!(map_payload(&mut p, WIDE, WIDE, &mut Transcoder::new(), &mut Vec::new()).is_some());
        assert_eq!(&p[12..], &g722[..], "bytes untouched");
        assert_eq!(p[1] & 0x7F, 9);
        let mut t = Transcoder::new();
        assert!(map_payload(&mut p, WIDE, MU, &mut t, &mut Vec::new()).is_some());
        assert_eq!((p[1] & 0x7F, p.len()), (0, 12 + 160));
        // What the G.711 leg gets is the G.722 decoded and halved: the
        // same tone in µ-law, not the G.722 bytes relabelled.
        assert_ne!(&p[12..], &g722[..]);
        let wide = G722Decoder::new().decode(&g722);
        let narrow: Vec<i16> = p[12..].iter().map(|b| ulaw_decode(*b)).collect();
        let energy =
            |x: &[i16]| x.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / x.len() as f64;
        let ratio = energy(&narrow[40..]) / energy(&wide[80..]);
        assert!(ratio > 0.7 && ratio < 1.3, "{ratio}");
        // A static G.711 packet from a G.722 leg is converted too.
        let mut q = packet(8, &[alaw_encode(1000); 160]);
        assert!(map_payload(&mut q, WIDE, MU, &mut t, &mut Vec::new()).is_some());
        assert_eq!(q[12], ulaw_encode(alaw_decode_of(1000)));
    }

    fn alaw_decode_of(s: i16) -> i16 {
        crate::media::g711::alaw_decode(alaw_encode(s))
    }
}
