//! `/metrics` in the Prometheus text format (0.0.4), encoded by the
//! official client, `prometheus-client`. The values live in atomics that
//! the pacer, the relay and admission keep anyway, so a collector reads
//! them at scrape time rather than mirroring them into client metrics.

use super::state::Api;
use crate::call::door::admission::AdmissionStats;
use crate::call::{NodeCalls, Registry};
use crate::cluster::ClusterStats;
use crate::hep::HepStats;
use crate::media::{MediaStats, ShardStats};
use crate::register::RegistrationView;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use warp::http::StatusCode;
use warp::hyper::{Body, Response};

/// The content type answered since the first release (the client's own
/// constant adds `; charset=utf-8`; scrapers read both the same).
const CONTENT_TYPE: &str = "text/plain; version=0.0.4";

pub fn render(api: &Api) -> Response<Body> {
    let node = Node {
        registry: api.registry.clone(),
        media: api.media.clone(),
        admission: api.admission.clone(),
        calls: api.node.clone(),
        cluster: api.cluster.as_ref().map(|c| c.stats.clone()),
        registrations: api.registrations.views(),
        hep: api.hep.clone(),
    };
    match node.encode_text() {
        Ok(text) => Response::builder()
            .header("content-type", CONTENT_TYPE)
            .body(Body::from(text))
            .unwrap_or_default(),
        // Only a collector can fail to encode, and ours cannot: still, a
        // scrape gets an honest 500 rather than half a page.
        Err(std::fmt::Error) => {
            let mut answer = Response::new(Body::empty());
            *answer.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            answer
        }
    }
}

/// What `/metrics` reads at scrape time: handles on the node's counters,
/// shared with the parts that keep them.
struct Node {
    registry: Registry,
    media: MediaStats,
    admission: Arc<AdmissionStats>,
    calls: Arc<NodeCalls>,
    /// Only in a cluster: a lone node's page has no cluster metrics.
    cluster: Option<Arc<ClusterStats>>,
    /// `[[registration]]` bindings (none: no registration metrics).
    registrations: Vec<RegistrationView>,
    /// `[hep]` (off: no HEP metrics).
    hep: Option<Arc<HepStats>>,
}

impl Node {
    /// The whole page, in the Prometheus text format.
    fn encode_text(self) -> Result<String, std::fmt::Error> {
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(self));
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &registry)?;
        Ok(text)
    }
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node").finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Gauge,
    Counter,
}

/// One metric of the page: its name as scraped, its help and where its
/// value comes from.
struct Family {
    /// The name users scrape. Counters carry `_total` here; the encoder
    /// appends it itself, so it is stripped before encoding.
    name: &'static str,
    help: &'static str,
    kind: Kind,
    read: fn(&Node) -> u64,
}

/// Every metric, in the order of the page. Names and help texts are part
/// of the contract: scrapers and dashboards use them.
const FAMILIES: &[Family] = &[
    Family {
        name: "pinless_calls_live",
        help: "Calls held, transferring or bridged.",
        kind: Kind::Gauge,
        // usize → u64 never truncates on the 64-bit targets pinless builds for.
        read: |n| u64::try_from(n.registry.len()).unwrap_or(u64::MAX),
    },
    Family {
        name: "pinless_hold_streams",
        help: "Hold-music streams being paced.",
        kind: Kind::Gauge,
        read: |n| n.media.hold_streams(),
    },
    Family {
        name: "pinless_hold_packets_sent_total",
        help: "Hold-music RTP packets sent.",
        kind: Kind::Counter,
        read: |n| n.media.hold_packets_sent(),
    },
    Family {
        name: "pinless_hold_send_errors_total",
        help: "Hold-music RTP sends that failed.",
        kind: Kind::Counter,
        read: |n| n.media.hold_send_errors(),
    },
    Family {
        name: "pinless_pacer_late_slots_total",
        help: "Pacer slots served more than 5 ms late.",
        kind: Kind::Counter,
        read: |n| n.media.late_slots(),
    },
    Family {
        name: "pinless_pacer_busy_permille",
        help: "Share of the last 100 ms the pacer spent sending, in thousandths.",
        kind: Kind::Gauge,
        read: |n| n.media.busy_permille(),
    },
    Family {
        name: "pinless_pacer_overloaded",
        help: "1 while new calls are refused because the pacer is not keeping up.",
        kind: Kind::Gauge,
        read: |n| u64::from(n.media.overloaded()),
    },
    Family {
        name: "pinless_relay_packets_total",
        help: "RTP packets relayed between caller and room.",
        kind: Kind::Counter,
        read: |n| n.media.relayed(),
    },
    Family {
        name: "pinless_rtp_foreign_dropped_total",
        help: "RTP packets dropped for coming from an unlatched source.",
        kind: Kind::Counter,
        read: |n| n.media.dropped_foreign(),
    },
    Family {
        name: "pinless_invites_rate_limited_total",
        help: "INVITEs refused with 503 for exceeding invites_per_sec_per_ip.",
        kind: Kind::Counter,
        read: |n| n.admission.rate_limited.load(Ordering::Relaxed),
    },
    Family {
        name: "pinless_invites_forbidden_ip_total",
        help: "INVITEs refused with 403: source outside the entry's allowed_cidrs.",
        kind: Kind::Counter,
        read: |n| n.admission.forbidden_ip.load(Ordering::Relaxed),
    },
    Family {
        name: "pinless_invites_challenged_total",
        help: "INVITEs answered 407 with a digest challenge.",
        kind: Kind::Counter,
        read: |n| n.admission.challenged.load(Ordering::Relaxed),
    },
    Family {
        name: "pinless_invites_forbidden_credentials_total",
        help: "INVITEs refused with 403: wrong or unknown digest credentials.",
        kind: Kind::Counter,
        read: |n| n.admission.forbidden_credentials.load(Ordering::Relaxed),
    },
    Family {
        name: "pinless_invites_at_capacity_total",
        help: "INVITEs refused with 503: max_calls reached.",
        kind: Kind::Counter,
        read: |n| n.admission.at_capacity.load(Ordering::Relaxed),
    },
    Family {
        name: "pinless_invites_pacer_overloaded_total",
        help: "INVITEs refused with 503 while the pacer was not keeping up.",
        kind: Kind::Counter,
        read: |n| n.admission.pacer_overloaded.load(Ordering::Relaxed),
    },
    Family {
        name: "pinless_draining",
        help: "1 while the node is stopping: new calls get 503, live ones go on.",
        kind: Kind::Gauge,
        read: |n| u64::from(n.calls.draining()),
    },
    Family {
        name: "pinless_calls_resumed_total",
        help: "Calls saved by an earlier run of this node and resumed at its start.",
        kind: Kind::Counter,
        read: |n| n.calls.resumed(),
    },
    Family {
        name: "pinless_calls_not_resumed_total",
        help: "Calls saved by an earlier run that could not be resumed (the log says why).",
        kind: Kind::Counter,
        read: |n| n.calls.not_resumed(),
    },
];

/// Node families added after the per-shard ones (issue 15), so that the
/// page of earlier releases stays as it was, in its order.
const LATER_FAMILIES: &[Family] = &[
    Family {
        name: "pinless_srtp_auth_failed_total",
        help: "SRTP and SRTCP packets dropped for failing authentication (wrong key, tampered, replayed).",
        kind: Kind::Counter,
        read: |n| n.media.srtp_failed(),
    },
    Family {
        name: "pinless_recordings_active",
        help: "Call recordings being written.",
        kind: Kind::Gauge,
        read: |n| n.media.recordings().active.load(Ordering::Relaxed),
    },
    Family {
        name: "pinless_recordings_finished_total",
        help: "Call recordings whose file is complete.",
        kind: Kind::Counter,
        read: |n| n.media.recordings().finished.load(Ordering::Relaxed),
    },
    Family {
        name: "pinless_recordings_failed_total",
        help: "Call recordings whose file could not be written.",
        kind: Kind::Counter,
        read: |n| n.media.recordings().failed.load(Ordering::Relaxed),
    },
    Family {
        name: "pinless_recording_packets_lost_total",
        help: "Packets missing from finished recordings (silence in their place): the recording writer was behind, a slow disk.",
        kind: Kind::Counter,
        read: |n| n.media.recordings().lost_packets.load(Ordering::Relaxed),
    },
];

/// A per-shard family: one series per media shard, labelled `shard`.
struct ShardFamily {
    /// As in `Family` (counters carry `_total`).
    name: &'static str,
    help: &'static str,
    value: fn(&ShardStats) -> ShardValue,
}

enum ShardValue {
    Count(u64),
    Gauge(u64),
    Ratio(f64),
}

/// What each media shard shows, after the node's families (appended: the
/// page of earlier releases stays as it was).
const SHARD_FAMILIES: &[ShardFamily] = &[
    ShardFamily {
        name: "pinless_shard_streams",
        help: "RTP streams the media shard sends: one per held call, two per bridged call.",
        value: |s| ShardValue::Gauge(s.streams()),
    },
    ShardFamily {
        name: "pinless_shard_relayed_packets_total",
        help: "RTP packets the media shard relayed between callers and rooms.",
        value: |s| ShardValue::Count(s.relay.relayed.load(Ordering::Relaxed)),
    },
    ShardFamily {
        name: "pinless_shard_busy_ratio",
        help: "Share of the last 100 ms the media shard's thread was busy (music, relay), 0 to 1.",
        value: |s| ShardValue::Ratio(s.pacer.busy_permille.load(Ordering::Relaxed) as f64 / 1000.0),
    },
    ShardFamily {
        name: "pinless_shard_late_ticks_total",
        help: "Ticks of the media shard served more than 5 ms late.",
        value: |s| ShardValue::Count(s.pacer.late_slots.load(Ordering::Relaxed)),
    },
    ShardFamily {
        name: "pinless_shard_overloaded",
        help: "1 while the media shard takes no new calls (its calls keep their audio).",
        value: |s| ShardValue::Gauge(u64::from(s.overloaded())),
    },
];

/// `pinless_calls_ended_total{reason}`: one series per end reason.
const ENDED: (&str, &str) = (
    "pinless_calls_ended",
    "Calls ended, by reason (caller_hangup, room_hangup, api_hangup, hold_timeout, referred, shutdown, rtp_timeout, …).",
);

impl Collector for Node {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for family in FAMILIES {
            self.encode_family(family, &mut encoder)?;
        }
        let counter_type = ConstCounter::new(0u64).metric_type();
        let mut family = encoder.encode_descriptor(ENDED.0, ENDED.1, None, counter_type)?;
        for (reason, count) in self.calls.ended_counts() {
            let labels = [("reason", reason.name())];
            ConstCounter::new(count).encode(family.encode_family(&labels)?)?;
        }
        self.encode_shards(&mut encoder)?;
        for family in LATER_FAMILIES {
            self.encode_family(family, &mut encoder)?;
        }
        if let Some(cluster) = &self.cluster {
            encode_cluster(cluster, &mut encoder)?;
        }
        if !self.registrations.is_empty() {
            encode_registrations(&self.registrations, &mut encoder)?;
        }
        if let Some(hep) = &self.hep {
            encode_hep(hep, &mut encoder)?;
        }
        Ok(())
    }
}

/// `pinless_hep_*`, on nodes with `[hep]` on only.
fn encode_hep(h: &HepStats, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
    let counter_type = ConstCounter::new(0u64).metric_type();
    let families = [
        (
            "pinless_hep_sent",
            "HEP3 packets (SIP messages, quality reports) sent to the collector.",
            h.sent(),
        ),
        (
            "pinless_hep_dropped",
            "Captures not sent to the HEP collector: its queue was full, the message too large, or the collector unreachable.",
            h.dropped(),
        ),
    ];
    for (name, help, value) in families {
        let metric = encoder.encode_descriptor(name, help, None, counter_type)?;
        ConstCounter::new(value).encode(metric)?;
    }
    Ok(())
}

impl Node {
    fn encode_family(
        &self,
        family: &Family,
        encoder: &mut DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        let value = (family.read)(self);
        match family.kind {
            Kind::Gauge => {
                let gauge = ConstGauge::new(value);
                let metric = encoder.encode_descriptor(
                    family.name,
                    family.help,
                    None,
                    gauge.metric_type(),
                )?;
                gauge.encode(metric)
            }
            Kind::Counter => {
                // A counter without the suffix would come out renamed.
                let stem = family.name.strip_suffix("_total").ok_or(std::fmt::Error)?;
                let counter = ConstCounter::new(value);
                let metric =
                    encoder.encode_descriptor(stem, family.help, None, counter.metric_type())?;
                counter.encode(metric)
            }
        }
    }

    fn encode_shards(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let shards = self.media.shards();
        let labels: Vec<[(&str, String); 1]> = (0..shards.len())
            .map(|i| [("shard", i.to_string())])
            .collect();
        for f in SHARD_FAMILIES {
            let counter = f.name.strip_suffix("_total");
            let (stem, metric_type) = match counter {
                Some(stem) => (stem, ConstCounter::new(0u64).metric_type()),
                None => (f.name, ConstGauge::new(0i64).metric_type()),
            };
            let mut family = encoder.encode_descriptor(stem, f.help, None, metric_type)?;
            for (shard, labels) in shards.iter().zip(&labels) {
                let series = family.encode_family(labels)?;
                match (f.value)(shard) {
                    ShardValue::Count(v) => ConstCounter::new(v).encode(series)?,
                    ShardValue::Gauge(v) => ConstGauge::new(v).encode(series)?,
                    ShardValue::Ratio(v) => ConstGauge::new(v).encode(series)?,
                }
            }
        }
        Ok(())
    }
}

/// `pinless_registration_*`, on nodes with registrations only.
fn encode_registrations(
    all: &[RegistrationView],
    encoder: &mut DescriptorEncoder,
) -> Result<(), std::fmt::Error> {
    let gauge_type = ConstGauge::new(0u64).metric_type();
    let help = "1 while the registrar holds this registration's binding.";
    let mut up = encoder.encode_descriptor("pinless_registration_up", help, None, gauge_type)?;
    for r in all {
        let labels = [("name", r.name.as_str())];
        ConstGauge::new(u64::from(r.up())).encode(up.encode_family(&labels)?)?;
    }
    let counter_type = ConstCounter::new(0u64).metric_type();
    let help =
        "Registration attempts that failed, by the registrar's status code (timeout: no answer).";
    let mut failures =
        encoder.encode_descriptor("pinless_registration_failures", help, None, counter_type)?;
    for r in all {
        for (code, n) in &r.failures {
            let labels = [("name", r.name.as_str()), ("code", code.as_str())];
            ConstCounter::new(*n).encode(failures.encode_family(&labels)?)?;
        }
    }
    Ok(())
}

/// `pinless_cluster_*`, on cluster nodes only.
fn encode_cluster(
    c: &ClusterStats,
    encoder: &mut DescriptorEncoder,
) -> Result<(), std::fmt::Error> {
    let up = ConstGauge::new(u64::from(c.redis_up()));
    let help = "1 while Redis answers the node's heartbeat and look-ups.";
    up.encode(encoder.encode_descriptor(
        "pinless_cluster_redis_up",
        help,
        None,
        up.metric_type(),
    )?)?;
    let counter_type = ConstCounter::new(0u64).metric_type();
    let help = "API requests sent to another node (for a call it owns, and each node asked by GET /v1/calls?scope=cluster), by result: ok (it answered) or failed (Redis or the node unreachable).";
    let mut family =
        encoder.encode_descriptor("pinless_cluster_forwards", help, None, counter_type)?;
    for (result, n) in [("ok", &c.forwards_ok), ("failed", &c.forwards_failed)] {
        let n = n.load(Ordering::Relaxed);
        ConstCounter::new(n).encode(family.encode_family(&[("result", result)])?)?;
    }
    let failed = ConstCounter::new(c.heartbeats_failed.load(Ordering::Relaxed));
    let help = "Heartbeat rounds Redis refused or did not answer.";
    failed.encode(encoder.encode_descriptor(
        "pinless_cluster_heartbeats_failed",
        help,
        None,
        counter_type,
    )?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node() -> Node {
        Node {
            registry: Registry::default(),
            media: MediaStats::default(),
            admission: Arc::default(),
            calls: Arc::default(),
            cluster: None,
            registrations: Vec::new(),
            hep: None,
        }
    }

    /// The page as the first release wrote it by hand, byte for byte.
    const PAGE: &str = "\
# HELP pinless_calls_live Calls held, transferring or bridged.
# TYPE pinless_calls_live gauge
pinless_calls_live 0
# HELP pinless_hold_streams Hold-music streams being paced.
# TYPE pinless_hold_streams gauge
pinless_hold_streams 3
# HELP pinless_hold_packets_sent_total Hold-music RTP packets sent.
# TYPE pinless_hold_packets_sent_total counter
pinless_hold_packets_sent_total 18446744073709551615
# HELP pinless_hold_send_errors_total Hold-music RTP sends that failed.
# TYPE pinless_hold_send_errors_total counter
pinless_hold_send_errors_total 2
# HELP pinless_pacer_late_slots_total Pacer slots served more than 5 ms late.
# TYPE pinless_pacer_late_slots_total counter
pinless_pacer_late_slots_total 4
# HELP pinless_pacer_busy_permille Share of the last 100 ms the pacer spent sending, in thousandths.
# TYPE pinless_pacer_busy_permille gauge
pinless_pacer_busy_permille 812
# HELP pinless_pacer_overloaded 1 while new calls are refused because the pacer is not keeping up.
# TYPE pinless_pacer_overloaded gauge
pinless_pacer_overloaded 1
# HELP pinless_relay_packets_total RTP packets relayed between caller and room.
# TYPE pinless_relay_packets_total counter
pinless_relay_packets_total 5
# HELP pinless_rtp_foreign_dropped_total RTP packets dropped for coming from an unlatched source.
# TYPE pinless_rtp_foreign_dropped_total counter
pinless_rtp_foreign_dropped_total 6
# HELP pinless_invites_rate_limited_total INVITEs refused with 503 for exceeding invites_per_sec_per_ip.
# TYPE pinless_invites_rate_limited_total counter
pinless_invites_rate_limited_total 7
# HELP pinless_invites_forbidden_ip_total INVITEs refused with 403: source outside the entry's allowed_cidrs.
# TYPE pinless_invites_forbidden_ip_total counter
pinless_invites_forbidden_ip_total 8
# HELP pinless_invites_challenged_total INVITEs answered 407 with a digest challenge.
# TYPE pinless_invites_challenged_total counter
pinless_invites_challenged_total 9
# HELP pinless_invites_forbidden_credentials_total INVITEs refused with 403: wrong or unknown digest credentials.
# TYPE pinless_invites_forbidden_credentials_total counter
pinless_invites_forbidden_credentials_total 10
# HELP pinless_invites_at_capacity_total INVITEs refused with 503: max_calls reached.
# TYPE pinless_invites_at_capacity_total counter
pinless_invites_at_capacity_total 11
# HELP pinless_invites_pacer_overloaded_total INVITEs refused with 503 while the pacer was not keeping up.
# TYPE pinless_invites_pacer_overloaded_total counter
pinless_invites_pacer_overloaded_total 12
";

    /// What the lifecycle added after the first release.
    const LIFECYCLE: &str = "\
# HELP pinless_draining 1 while the node is stopping: new calls get 503, live ones go on.
# TYPE pinless_draining gauge
pinless_draining 1
# HELP pinless_calls_resumed_total Calls saved by an earlier run of this node and resumed at its start.
# TYPE pinless_calls_resumed_total counter
pinless_calls_resumed_total 2
# HELP pinless_calls_not_resumed_total Calls saved by an earlier run that could not be resumed (the log says why).
# TYPE pinless_calls_not_resumed_total counter
pinless_calls_not_resumed_total 1
# HELP pinless_calls_ended_total Calls ended, by reason (caller_hangup, room_hangup, api_hangup, hold_timeout, referred, shutdown, rtp_timeout, …).
# TYPE pinless_calls_ended_total counter
pinless_calls_ended_total{reason=\"caller_hangup\"} 1
pinless_calls_ended_total{reason=\"room_hangup\"} 0
pinless_calls_ended_total{reason=\"api_hangup\"} 0
pinless_calls_ended_total{reason=\"hold_timeout\"} 0
pinless_calls_ended_total{reason=\"referred\"} 0
pinless_calls_ended_total{reason=\"gateway_error\"} 0
pinless_calls_ended_total{reason=\"shutdown\"} 2
pinless_calls_ended_total{reason=\"rtp_timeout\"} 0
pinless_calls_ended_total{reason=\"session_expired\"} 0
";

    #[test]
    fn the_page_is_what_it_always_was() {
        let n = node();
        let set = |a: &std::sync::atomic::AtomicU64, v| a.store(v, Ordering::Relaxed);
        let shard = &n.media.shards()[0];
        set(&shard.pacer.streams, 3);
        set(&shard.pacer.packets_sent, u64::MAX);
        set(&shard.pacer.send_errors, 2);
        set(&shard.pacer.late_slots, 4);
        set(&shard.pacer.busy_permille, 812);
        shard.pacer.overloaded.store(true, Ordering::Relaxed);
        set(&shard.relay.relayed, 5);
        set(&shard.relay.dropped_foreign, 6);
        set(&shard.streams, 3);
        set(&n.admission.rate_limited, 7);
        set(&n.admission.forbidden_ip, 8);
        set(&n.admission.challenged, 9);
        set(&n.admission.forbidden_credentials, 10);
        set(&n.admission.at_capacity, 11);
        set(&n.admission.pacer_overloaded, 12);
        n.calls.start_draining();
        n.calls.resume_outcome(true);
        n.calls.resume_outcome(true);
        n.calls.resume_outcome(false);
        n.calls.ended(crate::call::EndReason::CallerHangup);
        n.calls.ended(crate::call::EndReason::Shutdown);
        n.calls.ended(crate::call::EndReason::Shutdown);
        // The first release's page comes first, unchanged.
        set(&shard.relay.srtp_failed, 13);
        let rec = n.media.recordings();
        set(&rec.active, 1);
        set(&rec.finished, 2);
        set(&rec.failed, 3);
        set(&rec.lost_packets, 4);
        assert_eq!(
            n.encode_text().unwrap(),
            format!("{PAGE}{LIFECYCLE}{ONE_SHARD}{SRTP}{RECORDING}")
        );
    }

    /// What SRTP added (issue 15), after the shards' families.
    const SRTP: &str = "\
# HELP pinless_srtp_auth_failed_total SRTP and SRTCP packets dropped for failing authentication (wrong key, tampered, replayed).
# TYPE pinless_srtp_auth_failed_total counter
pinless_srtp_auth_failed_total 13
";

    /// What recording added (issue 25), after SRTP.
    const RECORDING: &str = "\
# HELP pinless_recordings_active Call recordings being written.
# TYPE pinless_recordings_active gauge
pinless_recordings_active 1
# HELP pinless_recordings_finished_total Call recordings whose file is complete.
# TYPE pinless_recordings_finished_total counter
pinless_recordings_finished_total 2
# HELP pinless_recordings_failed_total Call recordings whose file could not be written.
# TYPE pinless_recordings_failed_total counter
pinless_recordings_failed_total 3
# HELP pinless_recording_packets_lost_total Packets missing from finished recordings (silence in their place): the recording writer was behind, a slow disk.
# TYPE pinless_recording_packets_lost_total counter
pinless_recording_packets_lost_total 4
";

    /// What media shards added (issue 12), for a node of one shard.
    const ONE_SHARD: &str = "\
# HELP pinless_shard_streams RTP streams the media shard sends: one per held call, two per bridged call.
# TYPE pinless_shard_streams gauge
pinless_shard_streams{shard=\"0\"} 3
# HELP pinless_shard_relayed_packets_total RTP packets the media shard relayed between callers and rooms.
# TYPE pinless_shard_relayed_packets_total counter
pinless_shard_relayed_packets_total{shard=\"0\"} 5
# HELP pinless_shard_busy_ratio Share of the last 100 ms the media shard's thread was busy (music, relay), 0 to 1.
# TYPE pinless_shard_busy_ratio gauge
pinless_shard_busy_ratio{shard=\"0\"} 0.812
# HELP pinless_shard_late_ticks_total Ticks of the media shard served more than 5 ms late.
# TYPE pinless_shard_late_ticks_total counter
pinless_shard_late_ticks_total{shard=\"0\"} 4
# HELP pinless_shard_overloaded 1 while the media shard takes no new calls (its calls keep their audio).
# TYPE pinless_shard_overloaded gauge
pinless_shard_overloaded{shard=\"0\"} 1
";

    #[test]
    fn every_shard_has_its_series_and_the_node_totals_add_them_up() {
        let n = Node {
            media: MediaStats::with_shards(2),
            ..node()
        };
        let shards = n.media.shards();
        shards[0].relay.relayed.store(10, Ordering::Relaxed);
        shards[1].relay.relayed.store(32, Ordering::Relaxed);
        shards[1].pacer.busy_permille.store(250, Ordering::Relaxed);
        shards[0].pacer.overloaded.store(true, Ordering::Relaxed);
        let page = n.encode_text().unwrap();
        for line in [
            "pinless_relay_packets_total 42",
            "pinless_shard_relayed_packets_total{shard=\"0\"} 10",
            "pinless_shard_relayed_packets_total{shard=\"1\"} 32",
            "pinless_shard_busy_ratio{shard=\"0\"} 0.0",
            "pinless_shard_busy_ratio{shard=\"1\"} 0.25",
            "pinless_pacer_busy_permille 125",
            "pinless_shard_overloaded{shard=\"0\"} 1",
            "pinless_shard_overloaded{shard=\"1\"} 0",
            // Shard 1 still takes calls: the node does.
            "pinless_pacer_overloaded 0",
        ] {
            assert!(page.lines().any(|l| l == line), "{line} in\n{page}");
        }
    }

    #[test]
    fn every_counter_is_named_with_its_total_suffix() {
        for f in FAMILIES.iter().chain(LATER_FAMILIES) {
            assert_eq!(
                f.kind == Kind::Counter,
                f.name.ends_with("_total"),
                "{}",
                f.name
            );
        }
    }
}
