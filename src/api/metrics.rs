//! `/metrics` in the Prometheus text format.

use super::Api;
use std::fmt::Write;
use std::sync::atomic::Ordering;
use warp::hyper::{Body, Response};

pub fn render(api: &Api) -> Response<Body> {
    let mut s = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
        let _ = writeln!(
            s,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    };
    metric(
        "pinless_calls_live",
        "gauge",
        "Calls held, transferring or bridged.",
        api.registry.len() as u64,
    );
    metric(
        "pinless_hold_streams",
        "gauge",
        "Hold-music streams being paced.",
        api.pacer.streams.load(Ordering::Relaxed),
    );
    metric(
        "pinless_hold_packets_sent_total",
        "counter",
        "Hold-music RTP packets sent.",
        api.pacer.packets_sent.load(Ordering::Relaxed),
    );
    metric(
        "pinless_hold_send_errors_total",
        "counter",
        "Hold-music RTP sends that failed.",
        api.pacer.send_errors.load(Ordering::Relaxed),
    );
    metric(
        "pinless_pacer_late_slots_total",
        "counter",
        "Pacer slots served more than 5 ms late.",
        api.pacer.late_slots.load(Ordering::Relaxed),
    );
    metric(
        "pinless_pacer_busy_permille",
        "gauge",
        "Share of the last 100 ms the pacer spent sending, in thousandths.",
        api.pacer.busy_permille.load(Ordering::Relaxed),
    );
    metric(
        "pinless_pacer_overloaded",
        "gauge",
        "1 while new calls are refused because the pacer is not keeping up.",
        u64::from(api.pacer.overloaded.load(Ordering::Relaxed)),
    );
    metric(
        "pinless_relay_packets_total",
        "counter",
        "RTP packets relayed between caller and room.",
        api.relay.relayed.load(Ordering::Relaxed),
    );
    metric(
        "pinless_rtp_foreign_dropped_total",
        "counter",
        "RTP packets dropped for coming from an unlatched source.",
        api.relay.dropped_foreign.load(Ordering::Relaxed),
    );
    let a = &api.admission;
    metric(
        "pinless_invites_rate_limited_total",
        "counter",
        "INVITEs refused with 503 for exceeding invites_per_sec_per_ip.",
        a.rate_limited.load(Ordering::Relaxed),
    );
    metric(
        "pinless_invites_forbidden_ip_total",
        "counter",
        "INVITEs refused with 403: source outside the entry's allowed_cidrs.",
        a.forbidden_ip.load(Ordering::Relaxed),
    );
    metric(
        "pinless_invites_challenged_total",
        "counter",
        "INVITEs answered 407 with a digest challenge.",
        a.challenged.load(Ordering::Relaxed),
    );
    metric(
        "pinless_invites_forbidden_credentials_total",
        "counter",
        "INVITEs refused with 403: wrong or unknown digest credentials.",
        a.forbidden_credentials.load(Ordering::Relaxed),
    );
    metric(
        "pinless_invites_at_capacity_total",
        "counter",
        "INVITEs refused with 503: max_calls reached.",
        a.at_capacity.load(Ordering::Relaxed),
    );
    metric(
        "pinless_invites_pacer_overloaded_total",
        "counter",
        "INVITEs refused with 503 while the pacer was not keeping up.",
        a.pacer_overloaded.load(Ordering::Relaxed),
    );
    Response::builder()
        .header("content-type", "text/plain; version=0.0.4")
        .body(Body::from(s))
        .unwrap_or_default()
}
