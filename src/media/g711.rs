//! G.711 µ-law (PCMU) and A-law (PCMA), ITU-T G.711 by hand: a sample is a
//! sign, a 3-bit segment (exponent) and a 4-bit step within the segment.

use std::sync::LazyLock;

pub use crate::codec::Law;

// `Law` is defined in the `codec` leaf (SDP needs it too); the sample
// arithmetic is media's alone, so it is added here.
impl Law {
    pub fn encode(self, sample: i16) -> u8 {
        match self {
            Law::Mu => ulaw_encode(sample),
            Law::A => alaw_encode(sample),
        }
    }

    pub fn decode(self, byte: u8) -> i16 {
        match self {
            Law::Mu => ulaw_decode(byte),
            Law::A => alaw_decode(byte),
        }
    }

    /// Decodes `bytes`, appending the samples to `out`, by table: what a
    /// recording does to every G.711 packet of both channels.
    pub fn decode_into(self, bytes: &[u8], out: &mut Vec<i16>) {
        let table: &[i16; 256] = match self {
            Law::Mu => &ULAW_TABLE,
            Law::A => &ALAW_TABLE,
        };
        out.extend(bytes.iter().map(|b| table[usize::from(*b)]));
    }
}

/// Every byte's sample, per law (`decode_into`).
static ULAW_TABLE: LazyLock<[i16; 256]> =
    LazyLock::new(|| std::array::from_fn(|b| ulaw_decode(b as u8)));
static ALAW_TABLE: LazyLock<[i16; 256]> =
    LazyLock::new(|| std::array::from_fn(|b| alaw_decode(b as u8)));

const ULAW_BIAS: i32 = 0x84;
const ULAW_CLIP: i32 = 32635;

/// Index of the highest set bit (x > 0).
fn top_bit(x: i32) -> i32 {
    31 - (x as u32).leading_zeros() as i32
}

pub fn ulaw_encode(sample: i16) -> u8 {
    let mut x = sample as i32;
    let sign = if x < 0 {
        x = -x;
        0x80
    } else {
        0
    };
    x = x.min(ULAW_CLIP) + ULAW_BIAS;
    // x ≥ 0x84, so its top bit is at least 7: segment 0 starts there.
    let exponent = top_bit(x) - 7;
    let mantissa = (x >> (exponent + 3)) & 0x0F;
    !(sign | (exponent << 4) | mantissa) as u8
}

pub fn ulaw_decode(byte: u8) -> i16 {
    let u = !byte as i32;
    let exponent = (u >> 4) & 0x07;
    let mantissa = u & 0x0F;
    let x = (((mantissa << 3) + ULAW_BIAS) << exponent) - ULAW_BIAS;
    (if u & 0x80 != 0 { -x } else { x }) as i16
}

pub fn alaw_encode(sample: i16) -> u8 {
    let mut x = sample as i32;
    let sign = if x >= 0 {
        0x80
    } else {
        x = -x - 1;
        0
    };
    let (exponent, mantissa) = if x < 256 {
        (0, (x >> 4) & 0x0F)
    } else {
        let e = (top_bit(x) - 7).min(7);
        (e, (x >> (e + 3)) & 0x0F)
    };
    ((sign | (exponent << 4) | mantissa) ^ 0x55) as u8
}

pub fn alaw_decode(byte: u8) -> i16 {
    let a = (byte ^ 0x55) as i32;
    let exponent = (a >> 4) & 0x07;
    let mantissa = a & 0x0F;
    let x = if exponent == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (exponent - 1)
    };
    (if a & 0x80 != 0 { x } else { -x }) as i16
}

static MU_TO_A: LazyLock<[u8; 256]> =
    LazyLock::new(|| std::array::from_fn(|b| alaw_encode(ulaw_decode(b as u8))));
static A_TO_MU: LazyLock<[u8; 256]> =
    LazyLock::new(|| std::array::from_fn(|b| ulaw_encode(alaw_decode(b as u8))));

/// Converts a G.711 payload in place from one law to the other (a table
/// look-up per byte; a no-op when the laws match).
pub fn transcode(payload: &mut [u8], from: Law, to: Law) {
    let table: &[u8; 256] = match (from, to) {
        (Law::Mu, Law::A) => &MU_TO_A,
        (Law::A, Law::Mu) => &A_TO_MU,
        _ => return,
    };
    for b in payload {
        *b = table[*b as usize];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulaw_known_values() {
        assert_eq!(ulaw_encode(0), 0xFF);
        assert_eq!(ulaw_encode(-1), 0x7F);
        assert_eq!(ulaw_encode(i16::MAX), 0x80);
        assert_eq!(ulaw_encode(i16::MIN), 0x00);
        assert_eq!(ulaw_decode(0xFF), 0);
        assert_eq!(ulaw_decode(0x80), 32124);
        assert_eq!(ulaw_decode(0x00), -32124);
        assert_eq!(ulaw_decode(0xEF), 132); // segment 1, step 0 (checked with audioop)
        assert_eq!(ulaw_encode(1000), 0xCE);
    }

    #[test]
    fn alaw_known_values() {
        assert_eq!(alaw_encode(0), 0xD5);
        assert_eq!(alaw_encode(-1), 0x55);
        assert_eq!(alaw_decode(0xD5), 8);
        assert_eq!(alaw_decode(0x55), -8);
        assert_eq!(alaw_decode(0x2A), -32256);
        assert_eq!(alaw_decode(0xAA), 32256);
        assert_eq!(alaw_encode(1000), 0xFA);
    }

    #[test]
    fn round_trip_error_is_within_one_step() {
        for s in (i16::MIN..=i16::MAX).step_by(7) {
            for law in [Law::Mu, Law::A] {
                let back = law.decode(law.encode(s)) as i32;
                let err = (back - s as i32).abs();
                // Quantisation step doubles per segment; the largest is 1024
                // (µ-law clips at 32635, hence the extra allowance there).
                let allowed = ((s as i32).abs() / 16).max(16) + 150;
                assert!(err <= allowed, "{law:?} {s} -> {back}");
            }
        }
    }

    #[test]
    fn transcode_tables_agree_with_the_laws() {
        let mut p: Vec<u8> = (0..=255).collect();
        transcode(&mut p, Law::Mu, Law::A);
        for (b, a) in p.iter().enumerate() {
            assert_eq!(*a, alaw_encode(ulaw_decode(b as u8)));
        }
    }
}
