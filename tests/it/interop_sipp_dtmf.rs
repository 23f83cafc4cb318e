//! Interop: sipp (Debian `sip-tester`) as a caller pressing keys with the
//! RFC 4733 captures it ships (`/usr/share/sip-tester/dtmf_2833_*.pcap`),
//! sent by its own RTP code, not ours. Run with `cargo test --features
//! interop`; fails, never skips, when sipp or its captures are missing.

use crate::support;

use serde_json::{Value, json};
use support::sipp::*;
use support::*;

#[tokio::test]
async fn a_sipp_callers_rfc4733_presses_are_one_call_dtmf_each() {
    let hooks = WebhookReceiver::start(&[]).await;
    let mut events = WebhookReceiver::start(&[]).await;
    let extra = format!("events_url = \"http://{}/events\"", events.addr);
    let gw = TestGateway::start(&hooks.url(), &extra).await;
    let gw_addr = gw.gw.sip_udp.unwrap().to_string();
    let caller = sipp_call(&gw_addr, "caller_dtmf.xml", &[]);
    let mut got: Vec<Value> = Vec::new();
    while got.last().is_none_or(|e| e["type"] != "call.ended") {
        got.push(within(20, "call events", events.next()).await.json());
    }
    assert!(
        finished(caller, "sipp caller", 30).await,
        "sipp's call failed"
    );
    let presses: Vec<_> = got
        .iter()
        .filter(|e| e["type"] == "call.dtmf")
        .map(|e| e["data"].clone())
        .collect();
    // The captures: key 1 and key #, each 2240 units at 8 kHz (280 ms),
    // each ending with three end packets.
    assert_eq!(
        presses,
        [
            json!({"digit": "1", "durationMs": 280}),
            json!({"digit": "#", "durationMs": 280})
        ],
        "{got:?}"
    );
}
