//! A bridged call's relay: the room's leg, and what relaying between it
//! and the caller keeps. Packets go untouched when the legs agree on the
//! codec; PCMU↔PCMA and G.722↔G.711 are converted when they differ (see
//! `transcode`, one converter per direction since G.722's is stateful);
//! telephone-events pass with their payload type mapped. What goes to the
//! caller is rewritten into the caller's one stream (`Rewriter`), so the
//! caller sees no new SSRC or jump at the switch from music, nor when a
//! room changes its own stream.

use super::LegCodec;
use super::leg::Leg;
use crate::codec::AudioCodec;
use crate::media::liveness::Liveness;
use crate::media::pacer::StreamState;
use crate::media::rewrite::Rewriter;
use crate::media::rtp;
use crate::media::state::RoomState;
use crate::media::stats::RelayStats;
use crate::media::transcode::Transcoder;
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
}

impl Relay {
    pub fn new(room: Leg, rewriter: Rewriter) -> Relay {
        Relay {
            room,
            rewriter,
            to_room: Transcoder::new(),
            to_caller: Transcoder::new(),
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
        if map_payload(packet, caller, self.room.codec(), &mut self.to_room) {
            self.room.send(packet);
            stats.relayed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A packet from the room (plain, already taken in by its leg), on to
    /// the caller, in the caller's stream.
    pub fn pass_to_caller(&mut self, packet: &mut [u8], caller: &Leg, stats: &RelayStats) {
        let Some((header, _)) = rtp::parse(packet) else {
            return;
        };
        if !map_payload(
            packet,
            self.room.codec(),
            caller.codec(),
            &mut self.to_caller,
        ) {
            return;
        }
        let mut out = self.rewriter.rewrite(&header, Instant::now());
        out.payload_type = packet[1] & 0x7F;
        out.rewrite(packet);
        caller.send(packet);
        stats.relayed.fetch_add(1, Ordering::Relaxed);
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

/// Rewrites `packet`'s payload type (and payload, for audio in another
/// codec, through `transcoder`) from leg `from` to leg `to`. Returns false
/// for packets to drop: not RTP, or a payload type the other leg did not
/// negotiate.
fn map_payload(
    packet: &mut [u8],
    from: LegCodec,
    to: LegCodec,
    transcoder: &mut Transcoder,
) -> bool {
    let Some((header, payload)) = rtp::parse(packet) else {
        return false;
    };
    let pt = if header.payload_type == from.payload_type {
        transcoder.convert(&mut packet[payload], from.audio, to.audio);
        to.payload_type
    } else if Some(header.payload_type) == from.event_payload_type {
        match to.event_payload_type {
            Some(pt) => pt,
            None => return false,
        }
    } else if let Some(audio) = AudioCodec::from_payload_type(header.payload_type) {
        // A static type of ours the leg did not pick but sent anyway.
        transcoder.convert(&mut packet[payload], audio, to.audio);
        to.payload_type
    } else {
        return false;
    };
    packet[1] = (packet[1] & 0x80) | pt;
    true
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

    const MU: LegCodec = LegCodec {
        audio: AudioCodec::Pcmu,
        payload_type: 0,
        event_payload_type: Some(101),
    };
    const A: LegCodec = LegCodec {
        audio: AudioCodec::Pcma,
        payload_type: 8,
        event_payload_type: Some(96),
    };

    #[test]
    fn audio_is_transcoded_and_events_remapped() {
        let mut p = packet(0, &[ulaw_encode(1000), ulaw_encode(-1000)]);
        assert!(map_payload(&mut p, MU, A, &mut Transcoder::new()));
        assert_eq!(p[1] & 0x7F, 8);
        let via = |s: i16| alaw_encode(ulaw_decode(ulaw_encode(s)));
        assert_eq!(&p[12..], &[via(1000), via(-1000)][..]);
        let mut e = packet(101, &[5, 0x80, 0, 160]);
        assert!(map_payload(&mut e, MU, A, &mut Transcoder::new()));
        assert_eq!(e[1] & 0x7F, 96);
        assert_eq!(&e[12..], &[5, 0x80, 0, 160]);
    }

    #[test]
    fn unknown_or_unnegotiated_types_are_dropped() {
        let mut p = packet(18, &[1, 2]);
        assert!(!map_payload(&mut p, MU, A, &mut Transcoder::new()));
        let no_events = LegCodec {
            event_payload_type: None,
            ..A
        };
        let mut e = packet(101, &[5, 0x80, 0, 160]);
        assert!(!map_payload(&mut e, MU, no_events, &mut Transcoder::new()));
    }

    const WIDE: LegCodec = LegCodec {
        audio: AudioCodec::G722,
        payload_type: 9,
        event_payload_type: Some(101),
    };

    #[test]
    fn g722_is_relayed_untouched_to_g722_and_transcoded_to_g711() {
        let pcm: Vec<i16> = (0..320)
            .map(|i| ((i as f64 * 0.3).sin() * 8000.0) as i16)
            .collect();
        let g722 = G722Encoder::new().encode(&pcm);
        let mut p = packet(9, &g722);
        assert!(map_payload(&mut p, WIDE, WIDE, &mut Transcoder::new()));
        assert_eq!(&p[12..], &g722[..], "bytes untouched");
        assert_eq!(p[1] & 0x7F, 9);
        let mut t = Transcoder::new();
        assert!(map_payload(&mut p, WIDE, MU, &mut t));
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
        assert!(map_payload(&mut q, WIDE, MU, &mut t));
        assert_eq!(q[12], ulaw_encode(alaw_decode_of(1000)));
    }

    fn alaw_decode_of(s: i16) -> i16 {
        crate::media::g711::alaw_decode(alaw_encode(s))
    }
}
