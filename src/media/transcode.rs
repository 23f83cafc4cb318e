//! Converting one direction of a relayed stream from one codec to another,
//! packet by packet: G.711 law to law by table (`g711::transcode`), G.722
//! to G.711 by decoding to 16 kHz, halving the rate and encoding, and
//! G.711 to G.722 the other way round; Opus to and from the others through
//! libopus (`opus`), which decodes straight to the other side's rate (8 or
//! 16 kHz) and encodes from it, so no resampler of ours is involved.
//!
//! G.711 and G.722 carry 8000 bytes a second and an 8000 Hz RTP clock, so
//! between them a payload keeps its length and its packet its timestamp:
//! the conversion is in place (`convert`). Opus packets have a length of
//! their own and a 48 kHz clock: to or from Opus the payload is written
//! anew (`convert_to`) and the timestamp moved to the other clock
//! (`timestamp`). What it needs is state: the G.722 and Opus decoders and
//! encoders, the resampling filters and where the two clocks met remember
//! the stream so far, so one direction of one call holds one `Transcoder`
//! for as long as it relays.
//! Cost per 20 ms packet, measured in a release build on the 2-vCPU
//! development machine while shared (load ≈ 8): G.722 → G.711 20 µs,
//! G.711 → G.722 27 µs, nearly all of it the G.722 decoder or encoder (the
//! half-band filter is ≈ 3,800 multiply-adds, about 1 µs); law to law
//! stays a table look-up per byte (0.1 µs). A relay that transcodes thus
//! costs several times a plain one (≈ 5-16 µs a packet, see DESIGN's
//! rtpengine figure); legs that agree are relayed untouched. To or from
//! Opus, `bench relay --opus` measures about 25 µs more per packet than a
//! plain relay (an encode one way, a decode the other).

use super::g711::{self, Law};
use super::g722::{G722Decoder, G722Encoder};
use super::opus;
use super::resample::{Downsampler, Upsampler};
use crate::codec::AudioCodec;

/// One direction's conversion state; parts are made on first use (a
/// G.711-only call never makes any).
#[derive(Default)]
pub struct Transcoder {
    decoder: Option<G722Decoder>,
    down: Option<Downsampler>,
    up: Option<Upsampler>,
    encoder: Option<G722Encoder>,
    /// An Opus sender decoded (at the rate of the codec it goes to).
    opus_in: Option<opus::Decoder>,
    /// An Opus receiver's encoder, the rate it takes (that of the codec
    /// the audio comes in) and whether it codes narrowband.
    opus_out: Option<(u32, bool, opus::Encoder)>,
    /// The Opus receiver plays narrowband only (`OpusSend::narrowband`).
    narrowband: bool,
    /// Where the two RTP clocks met, when they differ: (in, out).
    clocks: Option<(u32, u32)>,
    /// The newest sequence number seen from an Opus sender (a packet lost
    /// before the next one is brought back from its FEC).
    sequence: Option<u16>,
    /// Scratch, kept to spare an allocation per packet.
    narrow: Vec<i16>,
    wide: Vec<i16>,
    pcm: Vec<i16>,
}

/// Whether `from` → `to` keeps a payload's length and timestamp (any pair
/// without Opus, or Opus to Opus), so `convert` in place will do.
pub fn in_place(from: AudioCodec, to: AudioCodec) -> bool {
    from == to || (from != AudioCodec::Opus && to != AudioCodec::Opus)
}

impl Transcoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Converts `payload` (in `from`) to `to`, appended to `out`. False,
    /// with nothing appended, when it cannot be: a payload libopus cannot
    /// read, or a length Opus cannot frame (see `opus::Encoder::encode`),
    /// or an Opus encoder that could not be made.
    pub fn convert_to(
        &mut self,
        payload: &[u8],
        from: AudioCodec,
        to: AudioCodec,
        out: &mut Vec<u8>,
    ) -> bool {
        if in_place(from, to) {
            let start = out.len();
            out.extend_from_slice(payload);
            self.convert(&mut out[start..], from, to);
            return true;
        }
        // PCM at a rate both sides take: the receiver's for an Opus
        // sender (libopus decodes to it), else the sender's own.
        let mut pcm = std::mem::take(&mut self.pcm);
        pcm.clear();
        let done = self.decode(payload, from, to, &mut pcm) && self.encode(&pcm, from, to, out);
        self.pcm = pcm;
        done
    }

    /// `convert_to` for a whole packet, `sequence` and `timestamp` (on
    /// `from`'s clock) from its header. From Opus, a packet that follows
    /// exactly one lost packet brings that one's audio back first, from
    /// its in-band FEC (what our SDP's `useinbandfec=1` asks senders for):
    /// the output then starts at the lost packet's timestamp. Returns the
    /// timestamp the output starts at, or None when it cannot be converted.
    pub fn convert_packet(
        &mut self,
        sequence: u16,
        timestamp: u32,
        payload: &[u8],
        from: AudioCodec,
        to: AudioCodec,
        out: &mut Vec<u8>,
    ) -> Option<u32> {
        if from != AudioCodec::Opus || in_place(from, to) {
            return self.convert_to(payload, from, to, out).then_some(timestamp);
        }
        // Only a newer packet moves the count on: a late one is no gap.
        let previous = self.sequence;
        if previous.is_none_or(|p| sequence.wrapping_sub(p) < 0x8000) {
            self.sequence = Some(sequence);
        }
        let one_lost = previous.is_some_and(|p| sequence == p.wrapping_add(2));
        let rate = to.sample_rate();
        let mut pcm = std::mem::take(&mut self.pcm);
        pcm.clear();
        let mut start = timestamp;
        if one_lost && let Some(decoder) = self.opus_decoder(rate) {
            let recovered = decoder.recover(payload, &mut pcm);
            // Back by the lost packet's length, on the 48 kHz clock.
            let ticks = recovered as u64 * u64::from(opus::CLOCK) / u64::from(rate);
            start = timestamp.wrapping_sub(ticks as u32);
        }
        let done = self.decode(payload, from, to, &mut pcm) && self.encode(&pcm, from, to, out);
        self.pcm = pcm;
        done.then_some(start)
    }

    /// `payload` (in `from`) decoded, appended to `pcm`: at the receiver's
    /// rate from Opus, else at the sender's own.
    fn decode(
        &mut self,
        payload: &[u8],
        from: AudioCodec,
        to: AudioCodec,
        pcm: &mut Vec<i16>,
    ) -> bool {
        match from {
            AudioCodec::Opus => self
                .opus_decoder(to.sample_rate())
                .is_some_and(|d| d.decode(payload, pcm)),
            AudioCodec::G722 => {
                pcm.extend(self.decoder.get_or_insert_default().decode(payload));
                true
            }
            AudioCodec::Pcmu | AudioCodec::Pcma => {
                let law = from.law().unwrap_or(Law::Mu);
                pcm.extend(payload.iter().map(|b| law.decode(*b)));
                true
            }
        }
    }

    /// `pcm` (decoded by `decode` from `from`) encoded in `to`, appended
    /// to `out`.
    fn encode(&mut self, pcm: &[i16], from: AudioCodec, to: AudioCodec, out: &mut Vec<u8>) -> bool {
        match to {
            AudioCodec::Opus => self
                .opus_encoder(from.sample_rate())
                .is_some_and(|e| e.encode(pcm, out)),
            AudioCodec::G722 => {
                out.extend(self.encoder.get_or_insert_default().encode(pcm));
                true
            }
            AudioCodec::Pcmu | AudioCodec::Pcma => {
                let law = to.law().unwrap_or(Law::Mu);
                out.extend(pcm.iter().map(|s| law.encode(*s)));
                true
            }
        }
    }

    fn opus_decoder(&mut self, rate: u32) -> Option<&mut opus::Decoder> {
        if self.opus_in.is_none() {
            self.opus_in = opus::Decoder::new(rate).ok();
        }
        self.opus_in.as_mut()
    }

    /// Says whether the Opus receiver plays narrowband only (its
    /// `maxplaybackrate` below 16000): audio from a 16 kHz codec is then
    /// band-limited as it is encoded.
    pub fn send_narrowband(&mut self, narrowband: bool) {
        self.narrowband = narrowband;
    }

    fn opus_encoder(&mut self, rate: u32) -> Option<&mut opus::Encoder> {
        // A sender that switches codec mid-call (a static type besides its
        // own) changes the rate: a new encoder for it. 8 kHz audio is
        // narrowband already.
        let narrow = self.narrowband && rate > 8_000;
        if self
            .opus_out
            .as_ref()
            .is_none_or(|(r, n, _)| (*r, *n) != (rate, narrow))
        {
            let made = opus::Encoder::new(rate).and_then(|e| match narrow {
                true => e.narrowband(),
                false => Ok(e),
            });
            self.opus_out = made.ok().map(|e| (rate, narrow, e));
        }
        self.opus_out.as_mut().map(|(_, _, e)| e)
    }

    /// `timestamp` (on `from`'s RTP clock) on `to`'s clock: the same when
    /// the clocks agree; else counted from where the two first met, so the
    /// stream stays continuous across wraps of either. The meeting point
    /// moves on now and then, well before a difference could overflow.
    pub fn timestamp(&mut self, timestamp: u32, from: u32, to: u32) -> u32 {
        if from == to {
            return timestamp;
        }
        let (base_in, base_out) = *self.clocks.get_or_insert((timestamp, timestamp));
        let delta = i64::from(timestamp.wrapping_sub(base_in) as i32);
        let scaled = delta * i64::from(to) / i64::from(from);
        // Kept modulo 2^32, as RTP timestamps are.
        let out = base_out.wrapping_add(scaled as u32);
        if delta.abs() > 1 << 28 {
            self.clocks = Some((timestamp, out));
        }
        out
    }

    /// Converts `payload` in place from `from` to `to` (nothing to do when
    /// they are the same). Only for pairs `in_place` allows; other pairs
    /// are left as they are (use `convert_to`).
    pub fn convert(&mut self, payload: &mut [u8], from: AudioCodec, to: AudioCodec) {
        if !in_place(from, to) {
            return;
        }
        match (from.law(), to.law()) {
            (Some(a), Some(b)) => g711::transcode(payload, a, b),
            (None, Some(law)) => self.narrow_from_g722(payload, law),
            (Some(law), None) => self.g722_from_narrow(payload, law),
            // G.722 both sides: untouched.
            (None, None) => {}
        }
    }

    fn narrow_from_g722(&mut self, payload: &mut [u8], law: Law) {
        let wide = self.decoder.get_or_insert_default().decode(payload);
        self.narrow.clear();
        self.down
            .get_or_insert_default()
            .process(&wide, &mut self.narrow);
        // Two 16 kHz samples a byte in, one 8 kHz sample a byte out.
        for (b, s) in payload.iter_mut().zip(&self.narrow) {
            *b = law.encode(*s);
        }
    }

    fn g722_from_narrow(&mut self, payload: &mut [u8], law: Law) {
        self.narrow.clear();
        self.narrow.extend(payload.iter().map(|b| law.decode(*b)));
        self.wide.clear();
        self.up
            .get_or_insert_default()
            .process(&self.narrow, &mut self.wide);
        let coded = self.encoder.get_or_insert_default().encode(&self.wide);
        for (b, c) in payload.iter_mut().zip(coded) {
            *b = c;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(hz: f64, rate: f64, n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| ((i as f64 * hz / rate * std::f64::consts::TAU).sin() * 9000.0) as i16)
            .collect()
    }

    /// The strongest of `candidates` in `x` (8 or 16 kHz), by a Goertzel
    /// filter per frequency.
    fn loudest(x: &[i16], rate: f64, candidates: &[f64]) -> f64 {
        let power = |hz: f64| {
            let w = std::f64::consts::TAU * hz / rate;
            let (mut s1, mut s2) = (0f64, 0f64);
            for v in x {
                let s = f64::from(*v) + 2.0 * w.cos() * s1 - s2;
                s2 = s1;
                s1 = s;
            }
            s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2
        };
        candidates
            .iter()
            .copied()
            .max_by(|a, b| power(*a).total_cmp(&power(*b)))
            .unwrap_or(0.0)
    }

    const FREQS: [f64; 5] = [440.0, 697.0, 1209.0, 1800.0, 2500.0];

    #[test]
    fn g722_to_g711_and_back_keeps_a_tone() {
        for hz in FREQS {
            // A G.722 caller's tone, encoded frame by frame.
            let mut caller = G722Encoder::new();
            let mut to_room = Transcoder::new();
            let mut from_room = Transcoder::new();
            let mut heard_by_room = Vec::new();
            let mut back = G722Decoder::new();
            let mut heard_by_caller = Vec::new();
            for frame in tone(hz, 16000.0, 16000).chunks(320) {
                let mut payload = caller.encode(frame);
                to_room.convert(&mut payload, AudioCodec::G722, AudioCodec::Pcmu);
                heard_by_room.extend(payload.iter().map(|b| Law::Mu.decode(*b)));
                // The room echoes it: PCMU back to G.722.
                from_room.convert(&mut payload, AudioCodec::Pcmu, AudioCodec::G722);
                heard_by_caller.extend(back.decode(&payload));
            }
            assert_eq!(heard_by_room.len(), 8000);
            assert_eq!(loudest(&heard_by_room[800..], 8000.0, &FREQS), hz);
            assert_eq!(heard_by_caller.len(), 16000);
            assert_eq!(loudest(&heard_by_caller[1600..], 16000.0, &FREQS), hz);
            // And at about the level it was sent.
            let rms = |x: &[i16]| {
                (x.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
            };
            let level = rms(&heard_by_caller[1600..]) / rms(&tone(hz, 16000.0, 16000));
            assert!(level > 0.85 && level < 1.15, "{hz} Hz: level {level:.2}");
        }
    }

    #[test]
    fn same_codec_is_untouched_and_laws_use_the_table() {
        let mut t = Transcoder::new();
        let original: Vec<u8> = (0..=255).collect();
        let mut p = original.clone();
        t.convert(&mut p, AudioCodec::G722, AudioCodec::G722);
        assert_eq!(p, original);
        t.convert(&mut p, AudioCodec::Pcmu, AudioCodec::Pcma);
        let mut table = original.clone();
        g711::transcode(&mut table, Law::Mu, Law::A);
        assert_eq!(p, table);
        assert!(
            t.decoder.is_none() && t.encoder.is_none(),
            "no G.722 state made"
        );
    }

    #[test]
    fn any_bytes_convert_without_panic_and_keep_their_length() {
        let mut t = Transcoder::new();
        for len in [0usize, 1, 7, 160, 240, 1400] {
            let mut p: Vec<u8> = (0..len).map(|i| (i * 37 % 256) as u8).collect();
            t.convert(&mut p, AudioCodec::G722, AudioCodec::Pcma);
            assert_eq!(p.len(), len);
            t.convert(&mut p, AudioCodec::Pcma, AudioCodec::G722);
            assert_eq!(p.len(), len);
        }
    }

    #[test]
    fn opus_to_g711_and_g722_and_back_keeps_a_tone() {
        for other in [AudioCodec::Pcmu, AudioCodec::G722] {
            let rate = f64::from(other.sample_rate());
            let mut caller = opus::Encoder::new(16_000).unwrap();
            let (mut to_room, mut from_room) = (Transcoder::new(), Transcoder::new());
            let mut back = opus::Decoder::new(16_000).unwrap();
            let (mut heard_by_room, mut heard_by_caller) = (Vec::new(), Vec::new());
            let mut g722 = G722Decoder::new();
            for frame in tone(697.0, 16_000.0, 16_000).chunks(320) {
                let mut packet = Vec::new();
                assert!(caller.encode(frame, &mut packet));
                let mut room = Vec::new();
                assert!(to_room.convert_to(&packet, AudioCodec::Opus, other, &mut room));
                assert_eq!(room.len(), 160, "20 ms of {other:?}");
                heard_by_room.extend(match other.law() {
                    Some(law) => room.iter().map(|b| law.decode(*b)).collect::<Vec<_>>(),
                    None => g722.decode(&room),
                });
                // The room echoes it back to Opus.
                let mut echoed = Vec::new();
                assert!(from_room.convert_to(&room, other, AudioCodec::Opus, &mut echoed));
                assert!(echoed.len() < 160, "Opus is smaller: {}", echoed.len());
                assert!(back.decode(&echoed, &mut heard_by_caller));
            }
            let settled = heard_by_room.len() / 5;
            assert_eq!(loudest(&heard_by_room[settled..], rate, &FREQS), 697.0);
            assert_eq!(loudest(&heard_by_caller[3200..], 16_000.0, &FREQS), 697.0);
        }
    }

    #[test]
    fn timestamps_move_between_clocks_continuously_across_a_wrap() {
        let mut t = Transcoder::new();
        assert_eq!(t.timestamp(12_345, 8000, 8000), 12_345, "same clock");
        let start = u32::MAX - 960 * 3;
        let first = t.timestamp(start, 48_000, 8000);
        for k in 1..10u32 {
            let ts = start.wrapping_add(960 * k);
            assert_eq!(t.timestamp(ts, 48_000, 8000), first.wrapping_add(160 * k));
        }
        // A late packet maps back, not forward.
        assert_eq!(t.timestamp(start, 48_000, 8000), first);
        // 8 kHz to 48 kHz the other way.
        let mut up = Transcoder::new();
        let base = up.timestamp(1_000, 8000, 48_000);
        assert_eq!(up.timestamp(1_160, 8000, 48_000), base.wrapping_add(960));
    }

    #[test]
    fn opus_garbage_is_dropped_not_relayed() {
        let mut t = Transcoder::new();
        let mut out = vec![1, 2, 3];
        assert!(!t.convert_to(&[0x03], AudioCodec::Opus, AudioCodec::Pcmu, &mut out));
        assert_eq!(out, [1, 2, 3], "nothing appended");
        // A G.711 packet of 15 ms is no Opus frame.
        assert!(!t.convert_to(&[0xFF; 120], AudioCodec::Pcmu, AudioCodec::Opus, &mut out));
    }

    #[test]
    fn a_lost_opus_packet_is_brought_back_from_the_next_one_s_fec() {
        // A sender that expects loss, as our SDP invites: FEC in its packets.
        let mut sender =
            ::opus::Encoder::new(16_000, ::opus::Channels::Mono, ::opus::Application::Voip)
                .unwrap();
        sender.set_inband_fec(true).unwrap();
        sender.set_packet_loss_perc(25).unwrap();
        let packets: Vec<Vec<u8>> = tone(697.0, 16_000.0, 16_000)
            .chunks(320)
            .map(|f| sender.encode_vec(f, 400).unwrap())
            .collect();
        let mut t = Transcoder::new();
        let mut heard = Vec::new();
        for (i, p) in packets.iter().enumerate() {
            if i == 30 {
                continue; // lost on the way
            }
            let (seq, ts) = (100 + i as u16, 5_000 + i as u32 * 960);
            let mut out = Vec::new();
            let start = t
                .convert_packet(seq, ts, p, AudioCodec::Opus, AudioCodec::Pcmu, &mut out)
                .unwrap();
            if i == 31 {
                // The lost packet's 20 ms first, then its own.
                assert_eq!(out.len(), 320);
                assert_eq!(start, ts - 960);
                let recovered: Vec<i16> = out[..160].iter().map(|b| Law::Mu.decode(*b)).collect();
                assert_eq!(loudest(&recovered, 8000.0, &FREQS), 697.0);
            } else {
                assert_eq!((out.len(), start), (160, ts));
            }
            heard.extend(out.iter().map(|b| Law::Mu.decode(*b)));
        }
        assert_eq!(heard.len(), 8000, "no gap: every 20 ms is there");
        // A late packet is no gap, and the one after it none either.
        let mut out = Vec::new();
        let late = t.convert_packet(
            100 + 29,
            0,
            &packets[29],
            AudioCodec::Opus,
            AudioCodec::Pcmu,
            &mut out,
        );
        assert_eq!(out.len(), 160);
        assert_eq!(late, Some(0));
    }
}
