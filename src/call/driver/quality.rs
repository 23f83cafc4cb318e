//! The quality report sent to the HEP collector when a call ends: what
//! each leg received (packets, loss, jitter) and the MOS that maps to, as
//! `pinless probe` computes it, grouped under the caller leg's SIP
//! Call-ID so that Homer shows it beside the call's messages.

use super::Call;
use crate::hep::QualityReport;
use crate::media::LegQuality;
use crate::media::quality;
use serde_json::{Value, json};
use std::net::SocketAddr;

impl Call {
    /// Sends the report, if `[hep]` is on and the call's media still
    /// answers. Never waits on the collector.
    pub(super) async fn report_quality(&mut self, sip_call_id: &str) {
        let Some(hep) = self.ctx.stack.hep() else {
            return;
        };
        let Some(q) = self.media.quality().await else {
            return;
        };
        let caller = leg(&q.caller);
        let mos = caller["mos"].as_f64().unwrap_or(1.0);
        let p = self.machine.parties();
        let report = json!({
            "callId": p.call_id,
            "callDomain": p.call_domain,
            "sipCallId": sip_call_id,
            "entry": p.entry,
            "endReason": self.machine.end_reason(),
            "caller": caller,
            "room": q.room.as_ref().map(leg),
        });
        let local = SocketAddr::new(self.ctx.media.public_ip(), q.caller.local_port);
        hep.report(QualityReport {
            at: std::time::SystemTime::now(),
            call_id: sip_call_id.to_string(),
            local,
            remote: q.caller.remote,
            // 1.0 to 4.5, so ×100 fits.
            mos: (mos * 100.0).round().clamp(0.0, 500.0) as u16,
            json: serde_json::to_vec(&report).unwrap_or_default(),
        });
    }
}

/// One leg's part of the report.
fn leg(q: &LegQuality) -> Value {
    let r = q.received;
    let estimate = quality::estimate(r.loss_ratio, r.jitter_ms);
    json!({
        "remote": q.remote.to_string(),
        "packets": r.packets,
        "lost": r.lost,
        "lossRatio": r.loss_ratio,
        "jitterMs": r.jitter_ms,
        "r": estimate.r,
        "mos": estimate.mos,
    })
}
