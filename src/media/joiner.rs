//! Joining 20 ms Opus packets into the longer packets an Opus peer's
//! `a=ptime` asks for (RFC 7587 §7: 40 or 60 ms), without coding anything
//! again. Everything we send an Opus leg starts as 20 ms packets: the
//! pre-encoded loops and prompts, a voice bot's audio, a transcoded or a
//! relayed stream. RFC 6716 §3.2 lets one packet carry several frames of
//! one configuration (the TOC byte's mode, bandwidth, frame size and
//! stereo bit), so a peer that wants 60 ms gets three of ours behind one
//! TOC ("code 3", §3.2.5), frame lengths in front.
//!
//! Sans-IO: packets go in with their timestamp, joined packets come out
//! through a callback; numbering the packets sent is the sender's (one
//! joined packet is one sequence number). A packet that cannot be joined
//! to what waits (another configuration, a frame that is not 20 ms, a
//! jump in the timestamps, a packet of several frames already) first sends
//! what waits as it is, so audio is never held back behind it nor
//! reordered. What a joiner holds is at most two 20 ms frames: a stream
//! that stops (a peer's silence suppression) holds its last 40 ms until its
//! next packet.

use crate::codec::{AudioCodec, LegCodec, OpusSend};

/// The longest frame Opus codes (RFC 6716 §3.2.1: 1275 bytes).
const MAX_FRAME: usize = 1275;
/// The longest payload a joiner sends of our own frames (at most
/// `opus::MAX_PAYLOAD` each): the TOC, the frame count, two bytes for each
/// length but the last, and the frames.
pub const MAX_JOINED: usize = 2
    + 2 * (OpusSend::MAX_FRAMES as usize - 1)
    + OpusSend::MAX_FRAMES as usize * super::opus::MAX_PAYLOAD;
/// RTP ticks of one 20 ms frame on Opus's 48 kHz clock.
const FRAME_TICKS: u32 = 960;

/// One leg's joiner: `frames` 20 ms frames per packet.
#[derive(Debug)]
pub struct Joiner {
    frames: u8,
    /// The TOC byte the waiting frames share (its code bits 0).
    toc: u8,
    /// The waiting frames, back to back, without their TOC bytes.
    waiting: Vec<u8>,
    /// Each waiting frame's length.
    lengths: [u16; OpusSend::MAX_FRAMES as usize],
    count: u8,
    /// The first waiting frame's timestamp and marker: the joined packet's.
    timestamp: u32,
    marker: bool,
    /// The joined packet being sent.
    out: Vec<u8>,
}

impl Joiner {
    /// A joiner of `frames` (2 or 3; at most `OpusSend::MAX_FRAMES`) frames
    /// per packet.
    pub fn new(frames: u8) -> Joiner {
        Joiner {
            frames: frames.clamp(1, OpusSend::MAX_FRAMES),
            toc: 0,
            waiting: Vec::new(),
            lengths: [0; OpusSend::MAX_FRAMES as usize],
            count: 0,
            timestamp: 0,
            marker: false,
            out: Vec::new(),
        }
    }

    /// A joiner for `leg`; None when it takes our 20 ms packets as they
    /// are: not Opus (whatever a saved record says), or no longer ptime.
    pub fn for_leg(leg: LegCodec) -> Option<Joiner> {
        let joins = leg.audio == AudioCodec::Opus && leg.opus.joins();
        joins.then(|| Joiner::new(leg.opus.frames))
    }

    /// Takes one Opus payload sent at `timestamp` (its marker bit with it);
    /// `send` gets each packet due now: (timestamp, marker, payload).
    pub fn push(
        &mut self,
        timestamp: u32,
        marker: bool,
        payload: &[u8],
        mut send: impl FnMut(u32, bool, &[u8]),
    ) {
        let joinable = one_twenty_ms_frame(payload);
        let follows = self.count > 0
            && joinable
            && payload[0] == self.toc
            && timestamp
                == self
                    .timestamp
                    .wrapping_add(u32::from(self.count) * FRAME_TICKS)
            && !marker;
        if self.count > 0 && !follows {
            self.flush(&mut send);
        }
        if !joinable {
            send(timestamp, marker, payload);
            return;
        }
        if self.count == 0 {
            self.toc = payload[0];
            self.timestamp = timestamp;
            self.marker = marker;
            self.waiting.clear();
        }
        self.waiting.extend_from_slice(&payload[1..]);
        // A joinable frame is at most MAX_FRAME bytes: it fits a u16.
        self.lengths[usize::from(self.count)] = (payload.len() - 1) as u16;
        self.count += 1;
        if self.count == self.frames {
            self.flush(&mut send);
        }
    }

    /// Sends what waits, joined (nothing when nothing waits).
    pub fn flush(&mut self, mut send: impl FnMut(u32, bool, &[u8])) {
        let count = usize::from(self.count);
        if count == 0 {
            return;
        }
        self.count = 0;
        let lengths = &self.lengths[..count];
        self.out.clear();
        if count == 1 {
            // One frame: the packet as it came (code 0).
            self.out.push(self.toc);
        } else {
            // Code 3 (RFC 6716 §3.2.5): the frame count, VBR when the
            // lengths differ, then every length but the last.
            self.out.push(self.toc | 3);
            let vbr = lengths.iter().any(|l| *l != lengths[0]);
            self.out.push(if vbr { 0x80 } else { 0 } | count as u8);
            if vbr {
                for &length in &lengths[..count - 1] {
                    write_length(length, &mut self.out);
                }
            }
        }
        self.out.extend_from_slice(&self.waiting);
        send(self.timestamp, self.marker, &self.out);
    }
}

/// Whether `payload` is one 20 ms Opus frame (code 0, RFC 6716 §3.1) that
/// a joined packet may carry.
fn one_twenty_ms_frame(payload: &[u8]) -> bool {
    let Some(&toc) = payload.first() else {
        return false;
    };
    let config = toc >> 3;
    // The frame size each configuration codes (RFC 6716 Table 2): SILK
    // 10/20/40/60 ms, Hybrid 10/20, CELT 2.5/5/10/20.
    let twenty = match config {
        0..=11 => config % 4 == 1,
        12..=15 => config % 2 == 1,
        _ => config % 4 == 3,
    };
    twenty && toc & 3 == 0 && payload.len() - 1 <= MAX_FRAME
}

/// A frame length as RFC 6716 §3.2.1 writes it: one byte below 252, else
/// two (252 to 255, then the rest in fours).
fn write_length(length: u16, out: &mut Vec<u8>) {
    if length < 252 {
        out.push(length as u8);
    } else {
        let first = 252 + (length & 3) as u8;
        out.push(first);
        out.push(((length - u16::from(first)) / 4) as u8);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::opus::{Decoder, Encoder, SILENCE};

    fn tone(n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| ((i as f64 * 0.2).sin() * 8000.0 + (i as f64 * 0.031).sin() * 6000.0) as i16)
            .collect()
    }

    /// 20 ms packets of a tone, encoded at 16 kHz.
    fn packets(count: usize) -> Vec<Vec<u8>> {
        let mut encoder = Encoder::new(16_000).unwrap();
        tone(320 * count)
            .chunks(320)
            .map(|frame| {
                let mut packet = Vec::new();
                assert!(encoder.encode(frame, &mut packet));
                packet
            })
            .collect()
    }

    fn join(joiner: &mut Joiner, packets: &[Vec<u8>]) -> Vec<(u32, bool, Vec<u8>)> {
        let mut sent = Vec::new();
        for (i, p) in packets.iter().enumerate() {
            joiner.push(1000 + 960 * i as u32, i == 0, p, |ts, m, out| {
                sent.push((ts, m, out.to_vec()))
            });
        }
        sent
    }

    fn decode(packets: impl IntoIterator<Item = Vec<u8>>) -> Vec<i16> {
        let mut decoder = Decoder::new(16_000).unwrap();
        let mut pcm = Vec::new();
        for p in packets {
            assert!(decoder.decode(&p, &mut pcm), "libopus reads {p:02x?}");
        }
        pcm
    }

    #[test]
    fn joined_packets_carry_the_same_audio_in_fewer_packets() {
        for frames in [2u8, 3] {
            let twelve = packets(12);
            let mut joiner = Joiner::new(frames);
            let sent = join(&mut joiner, &twelve);
            assert_eq!(sent.len(), 12 / usize::from(frames), "{frames} a packet");
            for (i, (ts, marker, packet)) in sent.iter().enumerate() {
                assert_eq!(*ts, 1000 + 960 * u32::from(frames) * i as u32);
                assert_eq!(*marker, i == 0);
                assert_eq!(packet[0] & 3, 3, "code 3");
                assert_eq!(usize::from(packet[1] & 0x3f), usize::from(frames));
                let samples = ::opus::packet::get_nb_samples(packet, 48_000).unwrap();
                assert_eq!(samples, 960 * usize::from(frames), "{frames} × 20 ms");
            }
            // Bit for bit what the packets one by one decode to.
            let joined = decode(sent.into_iter().map(|s| s.2));
            assert_eq!(joined, decode(twelve));
        }
    }

    #[test]
    fn what_cannot_be_joined_goes_out_in_order_and_nothing_is_lost() {
        let mut p = packets(4);
        let mut joiner = Joiner::new(3);
        let mut sent = Vec::new();
        let mut push = |joiner: &mut Joiner, ts: u32, payload: &[u8]| {
            joiner.push(ts, false, payload, |ts, _, out| {
                sent.push((ts, out.to_vec()))
            })
        };
        push(&mut joiner, 0, &p[0]);
        // Another configuration (the silence frame is CELT): the first
        // goes alone, the silence waits.
        push(&mut joiner, 960, &SILENCE);
        // A jump in time: the silence goes alone.
        push(&mut joiner, 5 * 960, &p[1]);
        // A packet that is not one 20 ms frame passes at once, after what
        // waited.
        p[2][0] |= 1;
        push(&mut joiner, 6 * 960, &p[2]);
        push(&mut joiner, 7 * 960, &p[3]);
        joiner.flush(|ts, _, out| sent.push((ts, out.to_vec())));
        let stamps: Vec<u32> = sent.iter().map(|s| s.0).collect();
        assert_eq!(stamps, [0, 960, 5 * 960, 6 * 960, 7 * 960]);
        assert_eq!(sent[0].1, p[0]);
        assert_eq!(sent[1].1, SILENCE);
        assert_eq!(sent[3].1, p[2]);
        // Garbage is passed on as it is, never a panic.
        joiner.push(0, false, &[], |_, _, out| assert!(out.is_empty()));
    }

    #[test]
    fn long_frames_have_two_byte_lengths() {
        let mut out = Vec::new();
        for length in [0u16, 251, 252, 253, 1000, 1275] {
            out.clear();
            write_length(length, &mut out);
            let read = match out[..] {
                [one] => u16::from(one),
                [first, second] => u16::from(first) + 4 * u16::from(second),
                _ => unreachable!(),
            };
            assert_eq!(read, length);
            assert_eq!(out.len(), if length < 252 { 1 } else { 2 });
        }
    }

    #[test]
    fn a_peer_s_ptime_says_how_many_frames() {
        let opus = LegCodec::new(AudioCodec::Opus, 111, None);
        assert!(Joiner::for_leg(opus).is_none());
        let asked = OpusSend::asked(None, Some(60), None);
        assert_eq!(asked.frames, 3);
        let leg = LegCodec {
            opus: asked,
            ..opus
        };
        assert_eq!(Joiner::for_leg(leg).map(|j| j.frames), Some(3));
        // Never for another codec, whatever it says of Opus.
        let pcmu = LegCodec::new(AudioCodec::Pcmu, 0, None);
        assert!(
            Joiner::for_leg(LegCodec {
                opus: asked,
                ..pcmu
            })
            .is_none()
        );
        // maxptime bounds ptime; more than 60 is 60; below 20 is 20.
        assert_eq!(OpusSend::asked(None, Some(60), Some(40)).frames, 2);
        assert_eq!(OpusSend::asked(None, Some(120), None).frames, 3);
        assert_eq!(OpusSend::asked(None, Some(10), None).frames, 1);
        assert_eq!(OpusSend::asked(None, Some(30), None).frames, 1);
        assert!(OpusSend::asked(Some(8000), None, None).narrowband);
        assert!(OpusSend::asked(Some(12000), None, None).narrowband);
        assert!(!OpusSend::asked(Some(16000), None, None).narrowband);
        assert!(!OpusSend::asked(None, None, None).narrowband);
    }
}
