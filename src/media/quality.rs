//! A listening-quality estimate from loss and jitter (what `pinless
//! probe` hears, and each call's legs at its end): the E-model's
//! transmission rating R (ITU-T G.107, with the simplifications of
//! G.113 Appendix I for G.711) and the MOS it maps to. Neither sees
//! neither echo nor one-way delay, so the delay is estimated from the
//! jitter (a jitter buffer of twice the jitter plus 20 ms of packetisation
//! and 20 ms of network); a real call can only sound worse than this says.

use serde::Serialize;

/// R with no impairment at all (G.107's default R0 − Is).
const R_DEFAULT: f64 = 93.2;
/// G.711's packet-loss robustness with packet loss concealment (G.113).
const BPL_G711: f64 = 25.1;

/// The estimate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Quality {
    /// Transmission rating, 0 to 93.2.
    pub r: f64,
    /// Mean opinion score, 1 to 4.41.
    pub mos: f64,
    /// The one-way delay assumed, in ms.
    #[serde(rename = "assumedDelayMs")]
    pub assumed_delay_ms: f64,
}

/// The estimate for a G.711 stream with `loss` (0 to 1) and `jitter_ms`.
pub fn estimate(loss: f64, jitter_ms: f64) -> Quality {
    let ppl = (loss * 100.0).clamp(0.0, 100.0);
    let d = 40.0 + 2.0 * jitter_ms.max(0.0);
    // Delay impairment (G.107 simplified, as in Cole and Rosenbluth).
    let id = 0.024 * d + if d > 177.3 { 0.11 * (d - 177.3) } else { 0.0 };
    // Equipment impairment: G.711's Ie is 0.
    let ie_eff = 95.0 * ppl / (ppl + BPL_G711);
    let r = (R_DEFAULT - id - ie_eff).clamp(0.0, 100.0);
    Quality {
        r,
        mos: mos(r),
        assumed_delay_ms: d,
    }
}

/// G.107 Annex B: R to MOS.
fn mos(r: f64) -> f64 {
    if r <= 0.0 {
        1.0
    } else if r >= 100.0 {
        4.5
    } else {
        1.0 + 0.035 * r + 7e-6 * r * (r - 60.0) * (100.0 - r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clean_call_rates_as_toll_quality_and_loss_pulls_it_down() {
        let clean = estimate(0.0, 0.0);
        assert!((clean.r - 92.24).abs() < 0.01, "{clean:?}");
        assert!(clean.mos > 4.3 && clean.mos < 4.42, "{clean:?}");
        let lossy = estimate(0.05, 10.0);
        assert!(lossy.r < 80.0 && lossy.mos < 4.0, "{lossy:?}");
        let awful = estimate(0.5, 100.0);
        assert!(awful.mos < 2.0, "{awful:?}");
        // MOS rises with R.
        assert!(mos(50.0) < mos(70.0) && mos(70.0) < mos(90.0));
    }
}
