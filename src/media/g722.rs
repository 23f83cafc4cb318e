//! G.722 (ITU-T G.722, mode 1: 64 kbit/s), written here from the
//! Recommendation's block description. A quadrature mirror filter (QMF)
//! splits 16 kHz audio into a low and a high sub-band at 8 kHz each; the
//! low band is coded by 6-bit ADPCM, the high band by 2-bit ADPCM, so one
//! byte carries two samples and a 20 ms frame is 320 samples or 160 bytes.
//!
//! Why here and not the `ezk-g722` crate (the ezk author's, a port of
//! SpanDSP): its 0.1.2 leaves the step sizes of both bands at zero on
//! reset, where G.722 starts them at 32 and 8, so its first samples are
//! quantised differently and its state never becomes the one a conforming
//! peer's decoder has; neither its encoder nor its decoder match the
//! reference vectors (`tests/data/g722/make.sh`) that this file's tests
//! check bit for bit.
//!
//! Both sides are stateful (predictors, step sizes and QMF history run
//! from one packet to the next), so a stream needs an encoder or decoder
//! of its own for its whole life. The names in comments (`DETL`, `NBL`,
//! "block 4"…) are the Recommendation's.

/// 16 kHz samples in a 20 ms frame.
pub const SAMPLES_PER_FRAME: usize = 320;
/// Bytes in a 20 ms frame (as for G.711).
pub const BYTES_PER_FRAME: usize = 160;

/// The 24 QMF coefficients (symmetric), for both the transmit and the
/// receive filter.
const QMF: [i32; 24] = [
    3, -11, -11, 53, 12, -156, 32, 362, -210, -805, 951, 3876, 3876, 951, -805, -210, 362, 32,
    -156, 12, 53, -11, -11, 3,
];

/// Low band: the decision levels of the 6-bit quantiser (`Q6`), as
/// multiples of the step size / 4096; level `m` bounds interval `m`.
const LOW_LEVELS: [i32; 30] = [
    0, 35, 72, 110, 150, 190, 233, 276, 323, 370, 422, 473, 530, 587, 650, 714, 786, 858, 940,
    1023, 1121, 1219, 1339, 1458, 1612, 1765, 1980, 2195, 2557, 2919,
];
/// The 6-bit code of interval `m` (1..=30) for a negative and a
/// non-negative difference (`ILN`, `ILP`).
const LOW_CODE_NEG: [u8; 31] = [
    0, 63, 62, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11,
    10, 9, 8, 7, 6, 5, 4,
];
const LOW_CODE_POS: [u8; 31] = [
    0, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46, 45, 44, 43, 42, 41, 40, 39,
    38, 37, 36, 35, 34, 33, 32,
];
/// The inverse 4-bit quantiser (`QM4`): the difference the predictors see,
/// from the code's four high bits, whatever the mode.
const INV_Q4: [i32; 16] = [
    0, -20456, -12896, -8968, -6288, -4240, -2584, -1200, 20456, 12896, 8968, 6288, 4240, 2584,
    1200, 0,
];
/// The inverse 6-bit quantiser (`QM6`): what the decoder outputs.
const INV_Q6: [i32; 64] = [
    -136, -136, -136, -136, -24808, -21904, -19008, -16704, -14984, -13512, -12280, -11192, -10232,
    -9360, -8576, -7856, -7192, -6576, -6000, -5456, -4944, -4464, -4008, -3576, -3168, -2776,
    -2400, -2032, -1688, -1360, -1040, -728, 24808, 21904, 19008, 16704, 14984, 13512, 12280,
    11192, 10232, 9360, 8576, 7856, 7192, 6576, 6000, 5456, 4944, 4464, 4008, 3576, 3168, 2776,
    2400, 2032, 1688, 1360, 1040, 728, 432, 136, -432, -136,
];
/// Low band log step-size adaptation (`WL`), by `RIL4` magnitude (`RL42`).
const LOW_LOG_STEP: [i32; 8] = [-60, -30, 58, 172, 334, 538, 1198, 3042];
const LOW_MAGNITUDE: [usize; 16] = [0, 7, 6, 5, 4, 3, 2, 1, 7, 6, 5, 4, 3, 2, 1, 0];
/// High band: the 2-bit codes (`IHN`, `IHP`) by interval 1 or 2, the
/// inverse quantiser (`QM2`), and the log step-size adaptation (`WH` by
/// `RH2`).
const HIGH_CODE_NEG: [u8; 3] = [0, 1, 0];
const HIGH_CODE_POS: [u8; 3] = [0, 3, 2];
const INV_Q2: [i32; 4] = [-7408, -1616, 7408, 1616];
const HIGH_LOG_STEP: [i32; 3] = [0, -214, 798];
const HIGH_MAGNITUDE: [usize; 4] = [2, 1, 2, 1];
/// Log-to-linear table of the step size (`ILB`), 2^(i/32) scaled by 2048.
const LOG_TO_LINEAR: [i32; 32] = [
    2048, 2093, 2139, 2186, 2233, 2282, 2332, 2383, 2435, 2489, 2543, 2599, 2656, 2714, 2774, 2834,
    2896, 2960, 3025, 3091, 3158, 3228, 3298, 3371, 3444, 3520, 3597, 3676, 3756, 3838, 3922, 4008,
];

/// To 16 bits, as every adder of the Recommendation saturates.
fn sat(x: i32) -> i32 {
    x.clamp(i32::from(i16::MIN), i32::from(i16::MAX))
}

/// The sign bit of a 16-bit value: 0 or -1 (only compared for equality).
fn sign(x: i32) -> i32 {
    x >> 15
}

/// One sub-band's ADPCM state: the adaptive predictor (two poles, six
/// zeros) and the step size.
#[derive(Clone)]
struct Band {
    /// Predicted signal (`SL`/`SH`) and its zero-section part (`SZL`).
    s: i32,
    sz: i32,
    /// Reconstructed signal, now and the two before (`RLT`).
    r: [i32; 3],
    /// Partially reconstructed signal (`PLT`), now and two before.
    p: [i32; 3],
    /// Pole coefficients (`AL1`, `AL2`; `a[0]` unused).
    a: [i32; 3],
    /// Quantised differences, now and six before (`DLT`).
    d: [i32; 7],
    /// Zero coefficients (`BL1`…`BL6`; `b[0]` unused).
    b: [i32; 7],
    /// Log step size (`NBL`/`NBH`) and step size (`DETL`/`DETH`).
    nb: i32,
    det: i32,
}

impl Band {
    /// A band after reset: all zero but the step size.
    fn new(det: i32) -> Band {
        Band {
            s: 0,
            sz: 0,
            r: [0; 3],
            p: [0; 3],
            a: [0; 3],
            d: [0; 7],
            b: [0; 7],
            nb: 0,
            det,
        }
    }

    /// Blocks 3L/3H (`LOGSCL`, `SCALEL` / `LOGSCH`, `SCALEH`): the log step
    /// size leaks towards zero and moves by `step`, within `[0, ceiling]`;
    /// the step size is its antilog (`shift`: 8 low, 10 high).
    fn scale(&mut self, step: i32, ceiling: i32, shift: i32) {
        self.nb = (((self.nb * 127) >> 7) + step).clamp(0, ceiling);
        let mantissa = LOG_TO_LINEAR[(self.nb >> 6 & 31) as usize];
        let exponent = shift - (self.nb >> 11);
        let linear = if exponent < 0 {
            mantissa << -exponent
        } else {
            mantissa >> exponent
        };
        self.det = linear << 2;
    }

    /// Block 4: given the quantised difference `d`, reconstructs, adapts
    /// the predictor's coefficients (sign-sign, with leakage and the
    /// stability limits on the poles) and predicts the next sample.
    fn adapt(&mut self, d: i32) {
        // RECONS, PARREC.
        let r = sat(self.s + d);
        let p = sat(self.sz + d);
        // UPPOL2: the second pole.
        let (s0, s1, s2) = (sign(p), sign(self.p[0]), sign(self.p[1]));
        let a1x4 = sat(self.a[1] << 2);
        let toward = (if s0 == s1 { -a1x4 } else { a1x4 }).min(32767);
        let a2 = ((toward >> 7) + if s0 == s2 { 128 } else { -128 } + ((self.a[2] * 32512) >> 15))
            .clamp(-12288, 12288);
        // UPPOL1: the first pole, kept inside the stability triangle.
        let a1 = sat(if s0 == s1 { 192 } else { -192 } + ((self.a[1] * 32640) >> 15));
        let limit = sat(15360 - a2);
        let a1 = a1.clamp(-limit, limit);
        // UPZERO: each zero moves toward agreement of signs with `d`.
        let nudge = if d == 0 { 0 } else { 128 };
        let mut b = [0; 7];
        for (i, bi) in b.iter_mut().enumerate().skip(1) {
            // Zero i pairs with the difference i samples back: d[i - 1]
            // before the shift below.
            let agree = sign(self.d[i - 1]) == sign(d);
            let leak = (self.b[i] * 32640) >> 15;
            *bi = sat(if agree { nudge } else { -nudge } + leak);
        }
        // DELAYA: everything moves one sample on.
        self.d.copy_within(0..6, 1);
        self.d[0] = d;
        self.b = b;
        self.r = [r, self.r[0], self.r[1]];
        self.p = [p, self.p[0], self.p[1]];
        self.a = [0, a1, a2];
        // FILTEP, FILTEZ, PREDIC: the next prediction.
        let pole = |i: usize| (self.a[i] * sat(self.r[i - 1] << 1)) >> 15;
        let sp = sat(pole(1) + pole(2));
        let mut sz = 0;
        for i in 1..7 {
            sz += (self.b[i] * sat(self.d[i - 1] << 1)) >> 15;
        }
        self.sz = sat(sz);
        self.s = sat(sp + self.sz);
    }
}

/// Low band step size after reset (`DETL`), and high band (`DETH`).
const LOW_DET: i32 = 32;
const HIGH_DET: i32 = 8;

/// One stream's encoder: 16 kHz samples in, G.722 bytes out.
#[derive(Clone)]
pub struct G722Encoder {
    /// The transmit QMF's last 24 input samples, oldest first.
    x: [i32; 24],
    low: Band,
    high: Band,
}

impl G722Encoder {
    pub fn new() -> Self {
        G722Encoder {
            x: [0; 24],
            low: Band::new(LOW_DET),
            high: Band::new(HIGH_DET),
        }
    }

    /// Encodes `pcm` (16 kHz) to `pcm.len() / 2` bytes; an odd last sample
    /// is dropped (every caller here hands it whole frames).
    pub fn encode(&mut self, pcm: &[i16]) -> Vec<u8> {
        pcm.chunks_exact(2)
            .map(|pair| self.encode_pair(pair[0], pair[1]))
            .collect()
    }

    fn encode_pair(&mut self, first: i16, second: i16) -> u8 {
        // Transmit QMF: the sum and difference of the even- and odd-tap
        // halves are the low and high band, one sample each at 8 kHz.
        self.x.copy_within(2.., 0);
        self.x[22] = i32::from(first);
        self.x[23] = i32::from(second);
        let (mut even, mut odd) = (0, 0);
        for i in 0..12 {
            even += self.x[2 * i] * QMF[2 * i];
            odd += self.x[2 * i + 1] * QMF[2 * i + 1];
        }
        let xlow = (odd + even) >> 14;
        let xhigh = (odd - even) >> 14;
        let low = self.encode_low(xlow);
        let high = self.encode_high(xhigh);
        high << 6 | low
    }

    /// Blocks 1L-4L: the 6-bit code of the low band's sample.
    fn encode_low(&mut self, x: i32) -> u8 {
        let band = &mut self.low;
        // SUBTRA, QUANTL: the interval of |e| among the scaled levels.
        let e = sat(x - band.s);
        let magnitude = if e >= 0 { e } else { -(e + 1) };
        let interval = (1..30)
            .find(|m| magnitude < (LOW_LEVELS[*m] * band.det) >> 12)
            .unwrap_or(30);
        let code = if e < 0 {
            LOW_CODE_NEG[interval]
        } else {
            LOW_CODE_POS[interval]
        };
        // INVQAL: the predictor sees the 4-bit difference.
        let ril = usize::from(code >> 2);
        let d = (band.det * INV_Q4[ril]) >> 15;
        band.scale(LOW_LOG_STEP[LOW_MAGNITUDE[ril]], 18432, 8);
        band.adapt(d);
        code
    }

    /// Blocks 1H-4H: the 2-bit code of the high band's sample.
    fn encode_high(&mut self, x: i32) -> u8 {
        let band = &mut self.high;
        let e = sat(x - band.s);
        let magnitude = if e >= 0 { e } else { -(e + 1) };
        let interval = if magnitude >= (564 * band.det) >> 12 {
            2
        } else {
            1
        };
        let code = if e < 0 {
            HIGH_CODE_NEG[interval]
        } else {
            HIGH_CODE_POS[interval]
        };
        let d = (band.det * INV_Q2[usize::from(code)]) >> 15;
        band.scale(HIGH_LOG_STEP[HIGH_MAGNITUDE[usize::from(code)]], 22528, 10);
        band.adapt(d);
        code
    }
}

impl Default for G722Encoder {
    fn default() -> Self {
        Self::new()
    }
}

/// One stream's decoder: G.722 bytes in, 16 kHz samples out (two a byte).
#[derive(Clone)]
pub struct G722Decoder {
    /// The receive QMF's last 24 inputs, oldest first.
    x: [i32; 24],
    low: Band,
    high: Band,
}

impl G722Decoder {
    pub fn new() -> Self {
        G722Decoder {
            x: [0; 24],
            low: Band::new(LOW_DET),
            high: Band::new(HIGH_DET),
        }
    }

    /// Decodes any bytes (every byte is a valid code, so nothing from the
    /// network can make it fail).
    pub fn decode(&mut self, bytes: &[u8]) -> Vec<i16> {
        let mut out = Vec::with_capacity(bytes.len() * 2);
        for &code in bytes {
            let (a, b) = self.decode_byte(code);
            out.push(a);
            out.push(b);
        }
        out
    }

    fn decode_byte(&mut self, code: u8) -> (i16, i16) {
        // Low band (blocks 5L, 6L, then 2L-4L as in the encoder): the
        // output uses all six bits, the predictor only four.
        let ilow = usize::from(code & 0x3F);
        let low = &mut self.low;
        let rlow = (low.s + ((low.det * INV_Q6[ilow]) >> 15)).clamp(-16384, 16383);
        let ril = ilow >> 2;
        let dlow = (low.det * INV_Q4[ril]) >> 15;
        low.scale(LOW_LOG_STEP[LOW_MAGNITUDE[ril]], 18432, 8);
        low.adapt(dlow);
        // High band.
        let ihigh = usize::from(code >> 6);
        let high = &mut self.high;
        let dhigh = (high.det * INV_Q2[ihigh]) >> 15;
        let rhigh = (high.s + dhigh).clamp(-16384, 16383);
        high.scale(HIGH_LOG_STEP[HIGH_MAGNITUDE[ihigh]], 22528, 10);
        high.adapt(dhigh);
        // Receive QMF: two 16 kHz samples from the bands' sum and
        // difference.
        self.x.copy_within(2.., 0);
        self.x[22] = rlow + rhigh;
        self.x[23] = rlow - rhigh;
        let (mut even, mut odd) = (0, 0);
        for i in 0..12 {
            even += self.x[2 * i] * QMF[2 * i];
            odd += self.x[2 * i + 1] * QMF[2 * i + 1];
        }
        (sat(odd >> 11) as i16, sat(even >> 11) as i16)
    }
}

impl Default for G722Decoder {
    fn default() -> Self {
        Self::new()
    }
}

/// Encodes a loop of 16 kHz audio so that it can be played round and
/// round. Encoded from a reset encoder, the wrap from the last frame to the
/// first is a full-scale click: a listener's decoder arrives there with
/// the state of the loop's end, the codes assume a reset one. So the
/// encoder is first run over the loop's last second (round and round for
/// a shorter loop: the predictors take a few hundred milliseconds to
/// settle on steady audio, and forget what came before), and only then
/// over the loop itself: its start meets the state its own end leaves.
/// Priming with the last second rather than a whole pass keeps start-up
/// cheap for long music. `pcm.len()` should be a multiple of 320.
pub fn encode_loop(pcm: &[i16]) -> Vec<u8> {
    let mut encoder = G722Encoder::new();
    if !pcm.is_empty() {
        // The second before the loop's start, played round: a part of a
        // pass ending at the loop's end, then whole passes.
        let n = pcm.len();
        encoder.encode(&pcm[n - PRIMING_SAMPLES % n..]);
        for _ in 0..PRIMING_SAMPLES / n {
            encoder.encode(pcm);
        }
    }
    encoder.encode(pcm)
}

/// One second at 16 kHz (see `encode_loop`).
const PRIMING_SAMPLES: usize = 16_000;

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference vectors (see `tests/data/g722/make.sh`): 1 s of
    /// 16 kHz input mixing two sweeps (one in each sub-band) with noise,
    /// its G.722 by the reference encoder, and that decoded by the
    /// reference decoder.
    const INPUT: &[u8] = include_bytes!("../../tests/data/g722/input.s16le");
    const ENCODED: &[u8] = include_bytes!("../../tests/data/g722/encoded.g722");
    const DECODED: &[u8] = include_bytes!("../../tests/data/g722/decoded.s16le");

    fn samples(bytes: &[u8]) -> Vec<i16> {
        bytes
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect()
    }

    #[test]
    fn the_encoder_matches_the_reference_bit_for_bit() {
        let input = samples(INPUT);
        assert_eq!(input.len(), 16000);
        // Frame by frame, as the pacer and the relay use it: the state
        // runs on from one call to the next.
        let mut encoder = G722Encoder::new();
        let ours: Vec<u8> = input
            .chunks(SAMPLES_PER_FRAME)
            .flat_map(|frame| encoder.encode(frame))
            .collect();
        assert_eq!(ours.len(), ENCODED.len());
        let first_diff = ours.iter().zip(ENCODED).position(|(a, b)| a != b);
        assert_eq!(first_diff, None, "first byte that differs");
    }

    #[test]
    fn the_decoder_matches_the_reference_sample_for_sample() {
        let reference = samples(DECODED);
        let mut decoder = G722Decoder::new();
        let ours: Vec<i16> = ENCODED
            .chunks(BYTES_PER_FRAME)
            .flat_map(|frame| decoder.decode(frame))
            .collect();
        assert_eq!(ours.len(), reference.len());
        let first_diff = ours.iter().zip(&reference).position(|(a, b)| a != b);
        assert_eq!(first_diff, None, "first sample that differs");
    }

    /// Signal-to-noise ratio of `out` against `input` delayed by `delay`.
    fn snr_db(input: &[i16], out: &[i16], delay: usize) -> f64 {
        let (mut signal, mut noise) = (0f64, 0f64);
        for (x, y) in input.iter().zip(&out[delay..]) {
            signal += f64::from(*x).powi(2);
            noise += (f64::from(*x) - f64::from(*y)).powi(2);
        }
        10.0 * (signal / noise).log10()
    }

    #[test]
    fn a_round_trip_keeps_the_signal() {
        // The two QMFs delay by 22 samples; past that the decoded signal
        // follows the input closely.
        let input = samples(INPUT);
        let mut encoder = G722Encoder::new();
        let mut decoder = G722Decoder::new();
        let out = decoder.decode(&encoder.encode(&input));
        let snr = snr_db(&input[1000..15000], &out[1000..], 22);
        assert!(snr > 20.0, "SNR {snr:.1} dB");
        assert!(snr_db(&input[1000..15000], &out[1000..], 21) < 10.0);
    }

    #[test]
    fn odd_counts_and_any_bytes_are_safe() {
        let mut encoder = G722Encoder::new();
        assert_eq!(encoder.encode(&[1, 2, 3]).len(), 1);
        assert!(encoder.encode(&[]).is_empty());
        let mut decoder = G722Decoder::new();
        let all: Vec<u8> = (0..=255).cycle().take(4096).collect();
        assert_eq!(decoder.decode(&all).len(), 8192);
        // The loudest codes, over and over: saturates, never overflows.
        let loud = decoder.decode(&[0x20; 4000]);
        assert!(loud.iter().any(|s| s.unsigned_abs() > 10000));
    }

    /// The largest error of each frame of `encoded` (a loop), decoded
    /// round three times, in the third pass, against `pcm` delayed by the
    /// codec.
    fn errors_per_frame(pcm: &[i16], encoded: &[u8]) -> Vec<i32> {
        let mut decoder = G722Decoder::new();
        decoder.decode(encoded);
        decoder.decode(encoded);
        let out = decoder.decode(encoded);
        let n = pcm.len();
        out.chunks(SAMPLES_PER_FRAME)
            .enumerate()
            .map(|(f, frame)| {
                let error = |(i, s): (usize, &i16)| {
                    let t = n + f * SAMPLES_PER_FRAME + i;
                    (i32::from(*s) - i32::from(pcm[(t - 22) % n])).abs()
                };
                frame.iter().enumerate().map(error).max().unwrap_or(0)
            })
            .collect()
    }

    #[test]
    fn a_loop_wraps_without_a_click() {
        // A 400 Hz tone whose loop holds whole periods, played round: the
        // first frame after the wrap is no worse than the rest of the loop.
        let pcm: Vec<i16> = (0..SAMPLES_PER_FRAME * 10)
            .map(|i| ((i as f64 * 400.0 / 16000.0 * std::f64::consts::TAU).sin() * 8000.0) as i16)
            .collect();
        let encoded = encode_loop(&pcm);
        assert_eq!(encoded.len(), BYTES_PER_FRAME * 10);
        let errors = errors_per_frame(&pcm, &encoded);
        let rest = errors[1..].iter().copied().max().unwrap_or(0);
        assert!(errors[0] <= rest, "{errors:?}");
        // Encoded from a reset encoder, the wrap is a full-scale click:
        // what the priming is for.
        let once = G722Encoder::new().encode(&pcm);
        let click = errors_per_frame(&pcm, &once)[0];
        assert!(
            click > 10 * errors[0] && click > 16000,
            "{click} vs {errors:?}"
        );
    }
}
