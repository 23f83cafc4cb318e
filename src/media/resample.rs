//! 16 kHz ↔ 8 kHz for the relay between a G.722 leg and a G.711 leg: a
//! 2:1 decimator and a 1:2 interpolator sharing one half-band low-pass.
//!
//! Why a half-band FIR: the rate change is exactly two, and a half-band
//! filter has every other tap zero, so halving (or doubling) costs 12
//! multiply-adds per 8 kHz sample: under 4,000 per 20 ms packet, about a
//! microsecond, next to the ≈4.5 µs of sending the packet. 47 taps with a
//! Kaiser window (β = 5.5) keep the band up to ≈3.5 kHz within ±0.1 dB and
//! push down by ≥55 dB what would fold back (above ≈4.6 kHz); what lies
//! between is what a narrowband phone does not carry anyway.
//!
//! Both keep their history from one packet to the next (the filter spans
//! packet boundaries), so one stream needs one of each for its life.
//! Samples are i16 on both sides, f32 inside.

use std::sync::LazyLock;

/// Taps of the half-band filter (odd; centre at `HALF`).
const TAPS: usize = 47;
const HALF: usize = TAPS / 2;

/// How late `Downsampler` output is, in 16 kHz samples (1.4 ms).
pub const DOWN_DELAY: usize = HALF;
/// How late `Upsampler` output is, in 16 kHz samples (1.5 ms).
pub const UP_DELAY: usize = HALF + 1;

/// The filter, DC gain 1: `h[HALF] = 0.5`, and `h[HALF ± k]` zero for even
/// `k ≠ 0`.
static H: LazyLock<[f32; TAPS]> = LazyLock::new(|| {
    let beta = 5.5f64;
    let mut h = [0f32; TAPS];
    let mut sum = 0f64;
    let mut raw = [0f64; TAPS];
    for (i, r) in raw.iter_mut().enumerate() {
        let k = i as f64 - HALF as f64;
        // sinc at half the sample rate (the half-band cut-off).
        let x = std::f64::consts::PI * k / 2.0;
        let sinc = if k == 0.0 { 1.0 } else { x.sin() / x };
        let t = k / HALF as f64;
        let window = bessel_i0(beta * (1.0 - t * t).max(0.0).sqrt()) / bessel_i0(beta);
        *r = sinc * window;
        sum += *r;
    }
    for (h, r) in h.iter_mut().zip(raw) {
        *h = (r / sum) as f32;
    }
    h
});

/// The modified Bessel function I₀ (its power series; converges fast for
/// the small arguments a Kaiser window uses).
fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    for k in 1..32 {
        term *= (x / 2.0) / k as f64;
        sum += term * term;
    }
    sum
}

fn to_i16(x: f32) -> i16 {
    x.round().clamp(-32768.0, 32767.0) as i16
}

/// 16 kHz → 8 kHz, one stream.
pub struct Downsampler {
    /// The last `TAPS - 1` input samples.
    history: [f32; TAPS - 1],
}

impl Downsampler {
    pub fn new() -> Self {
        Downsampler {
            history: [0.0; TAPS - 1],
        }
    }

    /// Halves the rate of `input` (an even count; an odd last sample is
    /// dropped), appending the `input.len() / 2` samples to `out`. Delays
    /// by `DOWN_DELAY`.
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        let h = &*H;
        let input = &input[..input.len() & !1];
        let mut x = Vec::with_capacity(self.history.len() + input.len());
        x.extend_from_slice(&self.history);
        x.extend(input.iter().map(|s| f32::from(*s)));
        // Output m is the filter over x[2m .. 2m + TAPS], centred on
        // input sample 2m - HALF; only the centre and the odd-offset taps
        // are non-zero.
        for m in 0..input.len() / 2 {
            let end = 2 * m + TAPS; // one past the newest sample used
            let w = &x[end - TAPS..end];
            let mut acc = h[HALF] * w[HALF];
            for k in (1..=HALF).step_by(2) {
                acc += h[HALF + k] * (w[HALF + k] + w[HALF - k]);
            }
            out.push(to_i16(acc));
        }
        let keep = x.len() - self.history.len();
        self.history.copy_from_slice(&x[keep..]);
    }
}

impl Default for Downsampler {
    fn default() -> Self {
        Self::new()
    }
}

/// 8 kHz → 16 kHz, one stream.
pub struct Upsampler {
    /// The last `HALF` input samples: with the newest, the 24 that the
    /// odd-offset taps span on the 8 kHz side.
    history: [f32; HALF],
}

impl Upsampler {
    pub fn new() -> Self {
        Upsampler {
            history: [0.0; HALF],
        }
    }

    /// Doubles the rate of `input`, appending `2 * input.len()` samples to
    /// `out`. Delays by `UP_DELAY`.
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        let h = &*H;
        let mut x = Vec::with_capacity(self.history.len() + input.len());
        x.extend_from_slice(&self.history);
        x.extend(input.iter().map(|s| f32::from(*s)));
        // Zero-stuffing doubles the rate; the filter (gain 2 to make up
        // for the zeros) then fills the gaps. Of each pair of outputs,
        // one falls on the centre tap (a copy of an input sample, delayed)
        // and one on the odd taps (a weighted sum of 12 pairs).
        let n = self.history.len();
        for j in 0..input.len() {
            // The 8 kHz sample at the centre of the odd taps' span lies
            // between x[n + j - (HALF + 1) / 2] and the one after.
            let c = n + j - HALF.div_ceil(2);
            out.push(to_i16(x[c]));
            let mut acc = 0f32;
            for (i, k) in (1..=HALF).step_by(2).enumerate() {
                acc += h[HALF + k] * (x[c - i] + x[c + 1 + i]);
            }
            out.push(to_i16(2.0 * acc));
        }
        let keep = x.len() - self.history.len();
        self.history.copy_from_slice(&x[keep..]);
    }
}

impl Default for Upsampler {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(hz: f64, rate: f64, n: usize, amp: f64) -> Vec<i16> {
        (0..n)
            .map(|i| ((i as f64 * hz / rate * std::f64::consts::TAU).sin() * amp) as i16)
            .collect()
    }

    /// Rising zero crossings, with a dead band so that a sample that sits
    /// at zero does not count twice: a tone's frequency over one second.
    fn rising(x: &[i16]) -> usize {
        let mut below = false;
        let mut count = 0;
        for s in x {
            if *s < -200 {
                below = true;
            } else if *s > 200 && below {
                below = false;
                count += 1;
            }
        }
        count
    }

    fn rms(x: &[i16]) -> f64 {
        (x.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
    }

    /// Runs `f` over `x` in 20 ms packets, as the relay does.
    fn packets(x: &[i16], size: usize, mut f: impl FnMut(&[i16], &mut Vec<i16>)) -> Vec<i16> {
        let mut out = Vec::new();
        for p in x.chunks(size) {
            f(p, &mut out);
        }
        out
    }

    #[test]
    fn the_filter_is_half_band() {
        let h = &*H;
        assert!((h.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        assert!((h[HALF] - 0.5).abs() < 1e-3, "{}", h[HALF]);
        for k in (2..=HALF).step_by(2) {
            assert!(h[HALF + k].abs() < 1e-6 && h[HALF - k].abs() < 1e-6);
        }
    }

    #[test]
    fn downsampling_keeps_speech_and_removes_what_would_fold_back() {
        let mut down = Downsampler::new();
        for (hz, low, high) in [
            (300.0, 0.97, 1.03),
            (1000.0, 0.97, 1.03),
            (3300.0, 0.95, 1.03),
        ] {
            let x = tone(hz, 16000.0, 16000, 10000.0);
            let y = packets(&x, 320, |p, o| down.process(p, o));
            assert_eq!(y.len(), 8000);
            let gain = rms(&y[400..]) / rms(&x[800..]);
            assert!(gain > low && gain < high, "{hz} Hz: gain {gain:.3}");
            // Still that frequency.
            let cycles = rising(&y) as f64;
            // (The filter's delay holds back the first couple of ms.)
            assert!((cycles - hz).abs() <= 2.0 + hz / 200.0, "{hz}: {cycles}");
        }
        // 6 kHz would alias to 2 kHz: it must be gone (≥ 50 dB down).
        let x = tone(6000.0, 16000.0, 16000, 10000.0);
        let y = packets(&x, 320, |p, o| down.process(p, o));
        let gain = rms(&y[400..]) / rms(&x);
        assert!(gain < 0.003, "6 kHz leaks at {gain}");
    }

    #[test]
    fn upsampling_keeps_the_tone_and_adds_no_image() {
        let mut up = Upsampler::new();
        for hz in [300.0, 1000.0, 3300.0] {
            let x = tone(hz, 8000.0, 8000, 10000.0);
            let y = packets(&x, 160, |p, o| up.process(p, o));
            assert_eq!(y.len(), 16000);
            let gain = rms(&y[800..]) / rms(&x[400..]);
            assert!(gain > 0.95 && gain < 1.03, "{hz} Hz: gain {gain:.3}");
            let cycles = rising(&y) as f64;
            // (The filter's delay holds back the first couple of ms.)
            assert!((cycles - hz).abs() <= 2.0 + hz / 200.0, "{hz}: {cycles}");
            // Smoothness: next to a pure tone at 16 kHz, the residual (the
            // image) is small.
            let delay = UP_DELAY;
            let reference = tone(hz, 16000.0, 16000, 10000.0);
            let residual: Vec<i16> = y[delay + 800..]
                .iter()
                .zip(&reference[800..])
                .map(|(a, b)| a.saturating_sub(*b))
                .collect();
            let image = rms(&residual) / rms(&reference);
            assert!(image < 0.06, "{hz} Hz: image {image:.4}");
        }
    }

    #[test]
    fn down_then_up_is_a_delay_for_narrowband_audio() {
        let x = tone(800.0, 16000.0, 16000, 12000.0);
        let mut down = Downsampler::new();
        let mut up = Upsampler::new();
        let y = packets(&x, 320, |p, o| {
            let mut mid = Vec::new();
            down.process(p, &mut mid);
            up.process(&mid, o);
        });
        assert_eq!(y.len(), x.len());
        let delay = DOWN_DELAY + UP_DELAY;
        let err: Vec<i16> = y[delay + 1000..]
            .iter()
            .zip(&x[1000..])
            .map(|(a, b)| a.saturating_sub(*b))
            .collect();
        assert!(rms(&err) / rms(&x) < 0.02, "{}", rms(&err) / rms(&x));
    }
}
