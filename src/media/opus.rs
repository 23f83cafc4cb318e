//! Opus (RFC 7587) through libopus, the reference codec (the `opus` crate
//! binds the system library). We code mono audio at 8 or 16 kHz: libopus
//! resamples inside, so a G.711 leg's 8 kHz and a G.722 leg's 16 kHz meet
//! an Opus leg without a resampler of ours, and the RTP clock stays 48000
//! whatever the rate we code at (RFC 7587 §4.1).
//!
//! Our encoders say what our SDP says (`sip::sdp`): 20 ms frames, in-band
//! FEC on, audio sampled at 16 kHz at most, or band-limited to narrowband
//! for a peer whose `maxplaybackrate` is below 16000 (RFC 7587 §6.1); a
//! peer's longer `ptime` is met by joining our frames (`joiner`). The
//! decoder takes what a peer sends:
//! any frame length Opus allows (2.5 to 120 ms, so a peer's `a=ptime` of
//! 40 or 60 is read as well), stereo mixed down to mono.

use opus::{Application, Bandwidth, Bitrate, Channels};
use std::sync::Mutex;

/// The RTP clock of every Opus stream.
pub const CLOCK: u32 = 48_000;
/// The largest Opus payload we make: 20 ms at our bit rates is 40-120
/// bytes; this bounds a VBR peak with room to spare.
pub const MAX_PAYLOAD: usize = 400;
/// Samples per channel in the longest Opus packet (120 ms) at 16 kHz.
const MAX_SAMPLES: usize = 16_000 * 120 / 1000;
/// A 20 ms Opus packet that decodes to silence (TOC 0xF8: CELT fullband,
/// 20 ms, mono, one frame; the two bytes after it code a silent frame), sent
/// where audio is not ready. A unit test decodes it.
pub const SILENCE: [u8; 3] = [0xF8, 0xFF, 0xFE];

/// Why libopus refused (it never does for the rates and sizes we use; the
/// error is kept rather than unwrapped all the same).
#[derive(Debug, thiserror::Error)]
#[error("opus: {0}")]
pub struct OpusError(#[from] opus::Error);

/// An Opus encoder of mono audio at `rate` (8000 or 16000) Hz.
///
/// Why the `Mutex`: the binding's encoder and decoder are `Send` but not
/// `Sync` (raw pointers), while a call's media task is shared by reference
/// across its awaits; a `Mutex` is `Sync` for any `Send` content, and
/// `get_mut` through `&mut self` reaches it without locking.
pub struct Encoder {
    inner: Mutex<opus::Encoder>,
    /// Samples in a 20 ms frame at `rate`.
    frame: usize,
}

/// libopus's effort for a live stream (0-10). Why not its default of 10:
/// transcoding is per packet, per call; measured in `relay --opus`, 5
/// costs about half of 10's CPU, and speech from a G.711 or G.722 leg
/// (narrow- or wideband already) gains nothing audible from more.
const LIVE_COMPLEXITY: i32 = 5;

impl Encoder {
    /// An encoder for a live stream (a transcoding leg, a bot's audio).
    pub fn new(rate: u32) -> Result<Encoder, OpusError> {
        Self::with_complexity(rate, LIVE_COMPLEXITY)
    }

    /// An encoder at libopus's full effort, for audio encoded once and
    /// played to every call (hold music, prompts).
    pub fn for_clips(rate: u32) -> Result<Encoder, OpusError> {
        Self::with_complexity(rate, 10)
    }

    fn with_complexity(rate: u32, complexity: i32) -> Result<Encoder, OpusError> {
        let mut inner = opus::Encoder::new(rate, Channels::Mono, Application::Voip)?;
        inner.set_complexity(complexity)?;
        // 32 kbit/s wideband, 20 narrowband: transparent speech, and
        // below G.711's 64 either way.
        let bits = if rate >= 16_000 { 32_000 } else { 20_000 };
        inner.set_bitrate(Bitrate::Bits(bits))?;
        // Our SDP says `useinbandfec=1` for our decoder; peers commonly do
        // the same, and FEC costs a few kbit/s only when loss is expected.
        inner.set_inband_fec(true)?;
        inner.set_packet_loss_perc(5)?;
        Ok(Encoder {
            inner: Mutex::new(inner),
            frame: rate as usize / 50,
        })
    }

    /// Band-limits what this encoder codes to narrowband (4 kHz of audio,
    /// what a peer that plays 8 kHz hears) at 20 kbit/s: for a peer whose
    /// `maxplaybackrate` is below 16000, fed 16 kHz audio.
    pub fn narrowband(mut self) -> Result<Encoder, OpusError> {
        let inner = self.inner.get_mut().unwrap_or_else(|e| e.into_inner());
        inner.set_max_bandwidth(Bandwidth::Narrowband)?;
        inner.set_bitrate(Bitrate::Bits(20_000))?;
        Ok(self)
    }

    /// Samples in one 20 ms frame at this encoder's rate.
    pub fn frame_len(&self) -> usize {
        self.frame
    }

    /// Encodes `pcm` (2.5, 5, 10, 20, 40 or 60 ms at the encoder's rate)
    /// as one packet, appended to `out`. False, and nothing appended, for
    /// a length Opus cannot frame.
    pub fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> bool {
        let inner = self.inner.get_mut().unwrap_or_else(|e| e.into_inner());
        append(out, MAX_PAYLOAD, |room| inner.encode(pcm, room))
    }
}

/// An Opus decoder to mono audio at `rate` (8000 or 16000) Hz (in a
/// `Mutex` for the reason `Encoder` gives).
pub struct Decoder {
    inner: Mutex<opus::Decoder>,
    /// Samples the last packet decoded to: how long a packet lost after it
    /// is taken to have been.
    last: usize,
}

impl Decoder {
    pub fn new(rate: u32) -> Result<Decoder, OpusError> {
        Ok(Decoder {
            inner: Mutex::new(opus::Decoder::new(rate, Channels::Mono)?),
            last: 0,
        })
    }

    /// Decodes one packet, appending its samples to `out`. False, and
    /// nothing appended, for a packet libopus cannot read (a peer's
    /// garbage is dropped, never a panic).
    pub fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> bool {
        let start = out.len();
        let inner = self.inner.get_mut().unwrap_or_else(|e| e.into_inner());
        let done = append(out, MAX_SAMPLES, |room| inner.decode(payload, room, false));
        if done {
            self.last = out.len() - start;
        }
        done
    }

    /// The audio of the packet lost just before `next`, appended to `out`:
    /// from `next`'s in-band FEC when its sender put some there, else
    /// libopus's concealment. Returns how many samples it appended (0 before
    /// any packet was decoded, or when libopus refuses).
    pub fn recover(&mut self, next: &[u8], out: &mut Vec<i16>) -> usize {
        let lost = self.last;
        if lost == 0 {
            return 0;
        }
        let start = out.len();
        let inner = self.inner.get_mut().unwrap_or_else(|e| e.into_inner());
        // libopus wants exactly the missing duration as the output's size.
        append(out, lost, |room| inner.decode(next, room, true));
        out.len() - start
    }
}

/// Lets `write` fill up to `room` new elements at the end of `out` and
/// keeps the count it says it wrote; on its error keeps nothing.
fn append<T: Default + Clone>(
    out: &mut Vec<T>,
    room: usize,
    write: impl FnOnce(&mut [T]) -> Result<usize, opus::Error>,
) -> bool {
    let start = out.len();
    out.resize(start + room, T::default());
    match write(&mut out[start..]) {
        Ok(n) => {
            out.truncate(start + n.min(room));
            true
        }
        Err(_) => {
            out.truncate(start);
            false
        }
    }
}

/// A loop of Opus frames: packet `i` is `bytes[ends[i-1]..ends[i]]`.
#[derive(Debug, Clone)]
pub struct Frames {
    bytes: Box<[u8]>,
    ends: Box<[u32]>,
}

impl Frames {
    /// Encodes `wide` (16 kHz, whole 20 ms frames) as a loop: the encoder
    /// first hears the loop's last second, so the frame after the last one
    /// (the first, again) continues the audio without a click, as the
    /// G.722 loop does (`g722::encode_loop`). `narrowband`: band-limited
    /// for a peer that plays no more (see `Encoder::narrowband`).
    pub fn encode_loop(wide: &[i16], narrowband: bool) -> Result<Frames, OpusError> {
        let mut encoder = Encoder::for_clips(16_000)?;
        if narrowband {
            encoder = encoder.narrowband()?;
        }
        let frame = encoder.frame_len();
        let whole = wide.len() / frame * frame;
        let wide = &wide[..whole];
        let tail = &wide[whole.saturating_sub(16_000 / frame * frame)..];
        let mut scratch = Vec::with_capacity(MAX_PAYLOAD);
        for chunk in tail.chunks_exact(frame) {
            scratch.clear();
            encoder.encode(chunk, &mut scratch);
        }
        let mut bytes = Vec::with_capacity(whole / 4);
        let mut ends = Vec::with_capacity(whole / frame);
        for chunk in wide.chunks_exact(frame) {
            if !encoder.encode(chunk, &mut bytes) {
                bytes.extend_from_slice(&SILENCE);
            }
            ends.push(u32::try_from(bytes.len()).unwrap_or(u32::MAX));
        }
        Ok(Frames {
            bytes: bytes.into(),
            ends: ends.into(),
        })
    }

    /// A loop of no frame: every frame is silence.
    pub fn silent() -> Frames {
        Frames {
            bytes: Box::default(),
            ends: Box::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Packet `index` (taken modulo the loop; silence for an empty loop).
    pub fn frame(&self, index: u32) -> &[u8] {
        if self.ends.is_empty() {
            return &SILENCE;
        }
        let i = index as usize % self.ends.len();
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.bytes[start..self.ends[i] as usize]
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

    fn rms(x: &[i16]) -> f64 {
        (x.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / x.len().max(1) as f64).sqrt()
    }

    #[test]
    fn a_tone_survives_encoding_at_both_rates() {
        for rate in [8_000u32, 16_000] {
            let mut enc = Encoder::new(rate).unwrap();
            let mut dec = Decoder::new(rate).unwrap();
            let pcm = tone(1000.0, f64::from(rate), rate as usize);
            let mut out = Vec::new();
            for frame in pcm.chunks(enc.frame_len()) {
                let mut packet = Vec::new();
                assert!(enc.encode(frame, &mut packet));
                assert!(packet.len() <= MAX_PAYLOAD && packet.len() > 10);
                assert!(dec.decode(&packet, &mut out));
            }
            assert_eq!(out.len(), pcm.len());
            let level = rms(&out[out.len() / 2..]) / rms(&pcm);
            assert!(level > 0.8 && level < 1.2, "{rate} Hz: level {level:.2}");
        }
    }

    #[test]
    fn a_narrowband_encoder_sends_narrowband_packets_of_wideband_audio() {
        let wide = tone(440.0, 16_000.0, 16_000);
        for (narrow, band) in [(false, Bandwidth::Wideband), (true, Bandwidth::Narrowband)] {
            let frames = Frames::encode_loop(&wide, narrow).unwrap();
            // The TOC byte says the band; past the first frames (libopus
            // settles) every packet says the same.
            for i in 10..50 {
                let said = opus::packet::get_bandwidth(frames.frame(i)).unwrap();
                assert_eq!(said, band, "frame {i}, narrowband {narrow}");
            }
        }
    }

    #[test]
    fn garbage_and_odd_lengths_are_refused_not_panicked_on() {
        let mut dec = Decoder::new(8_000).unwrap();
        let mut out = Vec::new();
        // A TOC saying code 3 with no frame count byte: malformed.
        assert!(!dec.decode(&[0x03], &mut out));
        assert!(out.is_empty());
        // The silence frame decodes to 20 ms of (near) silence.
        assert!(dec.decode(&SILENCE, &mut out));
        assert_eq!(out.len(), 160);
        assert!(rms(&out) < 10.0);
        let mut enc = Encoder::new(8_000).unwrap();
        let mut packet = Vec::new();
        assert!(
            !enc.encode(&[0i16; 150], &mut packet),
            "15 ms is no Opus frame"
        );
        assert!(packet.is_empty());
    }

    #[test]
    fn a_loop_is_one_packet_per_frame_and_wraps() {
        let wide = tone(440.0, 16_000.0, 16_000);
        let frames = Frames::encode_loop(&wide, false).unwrap();
        assert_eq!(frames.len(), 50);
        assert_eq!(frames.frame(50), frames.frame(0));
        let mut dec = Decoder::new(16_000).unwrap();
        let mut out = Vec::new();
        // Twice round: the second pass is as loud as the tone all along,
        // with no dip at the wrap.
        for i in 0..100 {
            assert!(dec.decode(frames.frame(i), &mut out));
        }
        for window in out[16_000 - 1_600..16_000 + 1_600].chunks(320) {
            let level = rms(window) / rms(&wide);
            assert!(level > 0.7 && level < 1.3, "level {level:.2} at the wrap");
        }
    }
}
