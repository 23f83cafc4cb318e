//! The hold-music loop: decoded once at start-up (any format symphonia
//! reads, any rate or channel count), mixed to mono, resampled to 8 kHz
//! and pre-encoded to PCMU and PCMA 20 ms frames shared by every call, and
//! resampled to 16 kHz and pre-encoded to G.722 frames as well (the same
//! number of frames, 160 bytes each). Per call, playing hold music is then
//! a copy of 160 bytes per packet, whichever the codec.
//!
//! Opus frames are made only for a node that speaks Opus: from the G.722
//! frames (decoded back to 16 kHz, then Opus-encoded as a loop), once per
//! loop, wideband and narrowband (for peers whose `maxplaybackrate` is
//! below 16000). The gateway prepares its music and prompts at start-up and the
//! API a played clip before it plays; a clip first asked for in Opus
//! before it was prepared (an entry's own music) is prepared on a thread
//! of its own meanwhile, Opus silence going out until it is ready, so
//! the pacer never waits for an encoder.

use super::g711::Law;
use super::g722;
use super::opus;
use super::rtp::SAMPLES_PER_PACKET;
use crate::codec::{AudioCodec, LegCodec};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{CODEC_TYPE_NULL, DecoderOptions};
use symphonia::core::errors::Error as SymErr;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::{MediaSource, MediaSourceStream};
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

const OUT_RATE: u32 = 8000;
const FRAME: usize = SAMPLES_PER_PACKET as usize;
/// G.722's audio rate, and its samples in a 20 ms frame.
const WIDE_RATE: u32 = 16000;
const WIDE_FRAME: usize = g722::SAMPLES_PER_FRAME;
/// Half-width, in input samples at the cut-off scale, of the resampling
/// kernel. 16 keeps the stop-band well down for hold music.
const TAPS: i64 = 16;

/// Why the hold music could not be loaded. The texts name the config key
/// and the file; the underlying error is kept as the source.
#[derive(Debug, thiserror::Error)]
pub enum HoldError {
    /// The file could not be opened.
    #[error("hold.music {path}: cannot open: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file opened but its format was not recognised. (Kept apart
    /// from `Open`: symphonia's error exposes a wrapped `io::Error` only
    /// through the deprecated `cause`, so an `io::Error` stays itself.)
    #[error("hold.music {path}: cannot open: {source}")]
    Format {
        path: PathBuf,
        #[source]
        source: SymErr,
    },
    /// The format was recognised but its audio could not be decoded.
    #[error("hold.music {path}: cannot decode: {source}")]
    Decode {
        path: PathBuf,
        #[source]
        source: SymErr,
    },
    /// The file holds no track with a known codec.
    #[error("hold.music {path}: cannot decode: no audio track")]
    NoTrack { path: PathBuf },
    /// The file decoded to no samples at all.
    #[error("hold.music {path}: no audio in the file")]
    Empty { path: PathBuf },
    /// The audio runs longer than its use allows (decoding stopped there).
    #[error("{path}: longer than {longest:?}")]
    TooLong {
        path: PathBuf,
        longest: std::time::Duration,
    },
}

/// The encoded loop, shared by all calls.
#[derive(Debug, Clone)]
pub struct HoldLoop {
    pcmu: Arc<[u8]>,
    pcma: Arc<[u8]>,
    /// The same frames in G.722, encoded from 16 kHz (`g722::encode_loop`).
    g722: Arc<[u8]>,
    frames: u32,
    /// The same frames in Opus, wideband then narrowband, once prepared
    /// (see the module doc).
    opus: Arc<[OnceLock<opus::Frames>; 2]>,
    /// Whether a preparation has been started in the background.
    opus_started: Arc<AtomicBool>,
}

impl HoldLoop {
    /// Decodes `path` and prepares the loop.
    pub fn load(path: &Path) -> Result<HoldLoop, HoldError> {
        let (mono, rate) = decode_mono(path)?;
        if mono.is_empty() || rate == 0 {
            return Err(HoldError::Empty {
                path: path.to_path_buf(),
            });
        }
        Ok(Self::from_samples(&mono, rate))
    }

    /// Decodes audio already in memory (a fetched URL, a bundled prompt);
    /// `name` stands for the file in errors, and its extension, if any,
    /// hints at the format.
    pub fn from_bytes(bytes: Vec<u8>, name: &str) -> Result<HoldLoop, HoldError> {
        Self::from_bytes_within(bytes, name, None)
    }

    /// `from_bytes`, refusing audio longer than `longest` (a few MB of a
    /// low-rate format can decode to hours of samples).
    pub fn from_bytes_within(
        bytes: Vec<u8>,
        name: &str,
        longest: Option<std::time::Duration>,
    ) -> Result<HoldLoop, HoldError> {
        let path = Path::new(name);
        let source = Box::new(std::io::Cursor::new(bytes));
        let (mono, rate) = decode_source(source, path, longest)?;
        if mono.is_empty() || rate == 0 {
            return Err(HoldError::Empty {
                path: path.to_path_buf(),
            });
        }
        Ok(Self::from_samples(&mono, rate))
    }

    /// Builds the loop from mono samples in [-1, 1] at `rate` Hz.
    pub fn from_samples(mono: &[f32], rate: u32) -> HoldLoop {
        let pcm = resample_loop(mono, rate);
        let encode = |law: Law| -> Arc<[u8]> { pcm.iter().map(|s| law.encode(*s)).collect() };
        // The wideband loop holds exactly as many frames as the narrow one
        // (a frame index means the same 20 ms in every codec).
        let frames = pcm.len() / FRAME;
        let wide = resample_exact(mono, rate, WIDE_RATE, frames * WIDE_FRAME);
        HoldLoop {
            // Saturating, not `as`: a cut count could be zero (and `frame`
            // divides by it). u32::MAX frames is 2.7 years of audio, so
            // the saturation never bites in practice.
            frames: u32::try_from(frames).unwrap_or(u32::MAX),
            pcmu: encode(Law::Mu),
            pcma: encode(Law::A),
            g722: g722::encode_loop(&wide).into(),
            opus: Arc::default(),
            opus_started: Arc::default(),
        }
    }

    /// Makes the loop's Opus frames now, wideband and narrowband, if not
    /// made yet (CPU-bound: about 50 ms a loop for the bundled 16 s here,
    /// so about four seconds for a ten-minute clip; call it off the async
    /// threads for long clips).
    pub fn prepare_opus(&self) {
        if self.opus_ready() {
            return;
        }
        // The G.722 loop decoded: its encoder was primed with the loop's
        // end, so a decoder primed the same way reads the first frame as
        // the continuation it is.
        let mut decoder = g722::G722Decoder::new();
        let prime = self.frames.saturating_sub(50);
        for i in prime..self.frames {
            decoder.decode(self.frame(AudioCodec::G722, i));
        }
        let wide: Vec<i16> = (0..self.frames)
            .flat_map(|i| decoder.decode(self.frame(AudioCodec::G722, i)))
            .collect();
        for (narrowband, frames) in [false, true].into_iter().zip(self.opus.iter()) {
            frames.get_or_init(|| {
                opus::Frames::encode_loop(&wide, narrowband).unwrap_or_else(|e| {
                    // libopus refuses no valid rate; were it to, the loop
                    // plays as silence rather than failing a call.
                    tracing::error!("hold loop not encoded for Opus: {e}");
                    opus::Frames::silent()
                })
            });
        }
    }

    /// Whether the Opus frames are ready.
    pub fn opus_ready(&self) -> bool {
        self.opus.iter().all(|frames| frames.get().is_some())
    }

    /// Number of 20 ms frames in the loop (at least one).
    pub fn frames(&self) -> u32 {
        self.frames
    }

    /// Frame `index` (taken modulo the loop) in the given codec (a G.711
    /// `Law` will do): 160 bytes, or one wideband Opus packet of its own
    /// length.
    pub fn frame(&self, codec: impl Into<AudioCodec>, index: u32) -> &[u8] {
        self.frame_in(codec.into(), false, index)
    }

    /// Frame `index` as leg `leg` is sent it: for an Opus peer that plays
    /// narrowband only, the narrowband loop.
    pub fn frame_for(&self, leg: LegCodec, index: u32) -> &[u8] {
        self.frame_in(leg.audio, leg.opus.narrowband, index)
    }

    fn frame_in(&self, codec: AudioCodec, narrowband: bool, index: u32) -> &[u8] {
        let start = (index % self.frames) as usize * FRAME;
        let all = match codec {
            AudioCodec::Pcmu => &self.pcmu,
            AudioCodec::Pcma => &self.pcma,
            // 160 bytes a frame too (two 16 kHz samples a byte).
            AudioCodec::G722 => &self.g722,
            AudioCodec::Opus => return self.opus_frame(narrowband, index),
        };
        &all[start..start + FRAME]
    }

    fn opus_frame(&self, narrowband: bool, index: u32) -> &[u8] {
        if let Some(frames) = self.opus[usize::from(narrowband)].get() {
            return frames.frame(index);
        }
        if !self.opus_started.swap(true, Ordering::Relaxed) {
            let me = self.clone();
            let spawned = std::thread::Builder::new()
                .name("opus-prepare".into())
                .spawn(move || me.prepare_opus());
            if let Err(e) = spawned {
                tracing::error!("cannot start the Opus encoding of a clip: {e}");
            }
        }
        &opus::SILENCE
    }
}

fn decode_mono(path: &Path) -> Result<(Vec<f32>, u32), HoldError> {
    let file = std::fs::File::open(path).map_err(|source| HoldError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    decode_source(Box::new(file), path, None)
}

/// Decodes audio from any source; `path` names it in errors and gives
/// symphonia the extension as a hint.
fn decode_source(
    source: Box<dyn MediaSource>,
    path: &Path,
    longest: Option<std::time::Duration>,
) -> Result<(Vec<f32>, u32), HoldError> {
    let err_decode = |source: SymErr| HoldError::Decode {
        path: path.to_path_buf(),
        source,
    };
    let stream = MediaSourceStream::new(source, Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    let probed = symphonia::default::get_probe()
        .format(
            &hint,
            stream,
            &FormatOptions::default(),
            &MetadataOptions::default(),
        )
        .map_err(|source| HoldError::Format {
            path: path.to_path_buf(),
            source,
        })?;
    let mut format = probed.format;
    let track = format
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or_else(|| HoldError::NoTrack {
            path: path.to_path_buf(),
        })?;
    let track_id = track.id;
    let mut rate = track.codec_params.sample_rate.unwrap_or(0);
    let mut decoder = symphonia::default::get_codecs()
        .make(&track.codec_params, &DecoderOptions::default())
        .map_err(err_decode)?;

    let mut mono = Vec::new();
    loop {
        let packet = match format.next_packet() {
            Ok(p) => p,
            Err(SymErr::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(SymErr::ResetRequired) => break,
            Err(e) => return Err(err_decode(e)),
        };
        if packet.track_id() != track_id {
            continue;
        }
        let decoded = match decoder.decode(&packet) {
            Ok(d) => d,
            // A corrupt packet is skipped, as players do.
            Err(SymErr::DecodeError(_)) => continue,
            Err(e) => return Err(err_decode(e)),
        };
        let spec = *decoded.spec();
        rate = spec.rate;
        let channels = spec.channels.count().max(1);
        let mut buf = SampleBuffer::<f32>::new(decoded.capacity() as u64, spec);
        buf.copy_interleaved_ref(decoded);
        for frame in buf.samples().chunks(channels) {
            mono.push(frame.iter().sum::<f32>() / channels as f32);
        }
        if let Some(longest) = longest
            && mono.len() as f64 > longest.as_secs_f64() * f64::from(rate.max(1))
        {
            return Err(HoldError::TooLong {
                path: path.to_path_buf(),
                longest,
            });
        }
    }
    Ok((mono, rate))
}

/// Resamples a loop to 8 kHz with a windowed-sinc kernel, wrapping around
/// the ends so the loop stays seamless, and stretches it by a fraction of
/// a percent so that it holds a whole number of 20 ms frames.
fn resample_loop(input: &[f32], rate: u32) -> Vec<i16> {
    let ideal = input.len() as f64 * OUT_RATE as f64 / rate as f64;
    let n_out = ((ideal / FRAME as f64).round().max(1.0) as usize) * FRAME;
    resample_exact(input, rate, OUT_RATE, n_out)
}

/// Resamples a loop from `rate` to `n_out` samples at about `out_rate`
/// (the kernel's cut-off is set for `out_rate`), wrapping around the ends.
fn resample_exact(input: &[f32], rate: u32, out_rate: u32, n_out: usize) -> Vec<i16> {
    let n_in = input.len() as i64;
    let step = n_in as f64 / n_out as f64; // input samples per output sample
    // Low-pass at 0.45 of the lower of the two rates.
    let cutoff = 0.45 * (out_rate.min(rate) as f64) / rate as f64; // cycles per input sample
    let half = (TAPS as f64 / (2.0 * cutoff)).ceil() as i64;
    let peak = input.iter().fold(0f32, |m, s| m.max(s.abs())).max(1e-9);
    // Normalise so that quiet files still sound on a phone, loud ones don't clip.
    let gain = (0.7 / peak as f64).min(8.0);
    if rate == out_rate && n_out == input.len() {
        // Already at the rate and a whole number of frames (the bundled
        // music, for G.722): nothing to filter, and the kernel's cost
        // (a sine and a cosine a tap) is saved at start-up.
        let scale = |s: &f32| (f64::from(*s) * gain * 32767.0).clamp(-32768.0, 32767.0) as i16;
        return input.iter().map(scale).collect();
    }
    (0..n_out)
        .map(|i| {
            let t = i as f64 * step;
            let centre = t.floor() as i64;
            let mut acc = 0.0;
            for k in centre - half..=centre + half {
                let d = t - k as f64;
                let x = 2.0 * cutoff * d;
                let sinc = if x.abs() < 1e-12 {
                    1.0
                } else {
                    (std::f64::consts::PI * x).sin() / (std::f64::consts::PI * x)
                };
                let w = 0.5 + 0.5 * (std::f64::consts::PI * d / (half as f64 + 1.0)).cos();
                acc += input[k.rem_euclid(n_in) as usize] as f64 * 2.0 * cutoff * sinc * w;
            }
            (acc * gain * 32767.0).clamp(-32768.0, 32767.0) as i16
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tone_keeps_its_pitch_and_level_across_rates() {
        for rate in [8000u32, 16000, 44100, 48000] {
            let n = rate as usize; // one second
            let tone: Vec<f32> = (0..n)
                .map(|i| (2.0 * std::f32::consts::PI * 400.0 * i as f32 / rate as f32).sin() * 0.5)
                .collect();
            let out = resample_loop(&tone, rate);
            assert_eq!(out.len(), 8000, "rate {rate}");
            // Count zero crossings: 400 Hz → 800 per second.
            let crossings = out.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
            assert!((790..=810).contains(&crossings), "rate {rate}: {crossings}");
            let peak = out.iter().map(|s| (*s as i32).abs()).max().unwrap();
            assert!(peak > 20000 && peak < 24500, "rate {rate}: peak {peak}");
        }
    }

    #[test]
    fn bundled_music_decodes_to_whole_frames() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/hold.flac");
        let hold = HoldLoop::load(&path).unwrap();
        assert!(hold.frames() >= 50 * 10, "at least ten seconds");
        let f = hold.frame(Law::Mu, 123);
        assert_eq!(f.len(), 160);
        assert!(f.iter().any(|b| *b != 0xFF), "not silence");
        assert_eq!(hold.frame(AudioCodec::G722, 123).len(), 160);
    }

    #[test]
    fn the_g722_loop_is_the_same_music_at_16_khz() {
        // 1 s of a 3 kHz tone, sampled at 44.1 kHz: G.711 frames carry it,
        // and the G.722 frames, decoded, carry it at 16 kHz with the level
        // of the G.711 ones.
        let tone: Vec<f32> = (0..44100)
            .map(|i| (std::f32::consts::TAU * 3000.0 * i as f32 / 44100.0).sin() * 0.5)
            .collect();
        let hold = HoldLoop::from_samples(&tone, 44100);
        assert_eq!(hold.frames(), 50);
        let mut decoder = g722::G722Decoder::new();
        let wide: Vec<i16> = (0..hold.frames())
            .flat_map(|i| decoder.decode(hold.frame(AudioCodec::G722, i)))
            .collect();
        assert_eq!(wide.len(), 16000);
        let crossings = wide.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
        assert!((5990..=6010).contains(&crossings), "{crossings}");
        let narrow: Vec<i16> = (0..hold.frames())
            .flat_map(|i| hold.frame(Law::Mu, i).to_vec())
            .map(|b| Law::Mu.decode(b))
            .collect();
        let rms = |x: &[i16]| {
            (x.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
        };
        let ratio = rms(&wide[320..]) / rms(&narrow[160..]);
        assert!(ratio > 0.9 && ratio < 1.1, "level ratio {ratio:.2}");
    }

    #[test]
    fn missing_file_is_a_clear_error() {
        let err = HoldLoop::load(Path::new("/nonexistent/hold.flac")).unwrap_err();
        assert!(err.to_string().contains("hold.music"));
        let io = std::fs::File::open("/nonexistent/hold.flac").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("hold.music /nonexistent/hold.flac: cannot open: {io}")
        );
        // The io::Error itself is kept.
        let source = std::error::Error::source(&err).expect("a source");
        assert!(
            source.downcast_ref::<std::io::Error>().is_some(),
            "{source:?}"
        );
    }

    #[test]
    fn a_file_that_is_no_audio_keeps_symphonia_s_error() {
        let path =
            std::env::temp_dir().join(format!("pinless-not-audio-{}.wav", std::process::id()));
        std::fs::write(&path, b"this is not a wav file at all").unwrap();
        let err = HoldLoop::load(&path).unwrap_err();
        let _ = std::fs::remove_file(&path);
        let HoldError::Format { source, .. } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(
            err.to_string(),
            format!("hold.music {}: cannot open: {source}", path.display())
        );
        assert!(std::error::Error::source(&err).is_some());
    }
}
