//! sipp callers (a SIP peer written by others) live through a `kill -9`
//! and restart of the real binary: their calls are resumed, and the BYE
//! each sends afterwards is answered, so sipp counts every call as
//! successful. Run with `cargo test --features interop`.

use crate::support;

use std::time::Duration;
use support::binary::Binary;
use support::sipp::*;
use support::*;

#[tokio::test]
async fn twenty_sipp_callers_live_through_kill_9_and_restart() {
    let mut hooks = WebhookReceiver::start(&[]).await;
    let mut gw = Binary::new("", &hooks.url(), "", "");
    gw.start().await;
    let target = gw.sip.to_string();
    let callers = sipp_calls(&target, "caller_restart.xml", 20, &["-l", "20", "-r", "40"]);
    for _ in 0..20 {
        hooks.next().await;
    }
    // Let the last answers' ACKs land and the states be saved.
    tokio::time::sleep(Duration::from_millis(500)).await;

    gw.signal("KILL");
    gw.exited(5).await;
    gw.start().await;
    assert!(
        gw.log().contains("resumed=20"),
        "every call taken over:\n{}",
        gw.log()
    );
    assert!(
        finished(callers, "20 sipp callers across the restart", 40).await,
        "a caller's BYE after the restart went unanswered\n{}",
        gw.log()
    );
    let recorded = within(5, "every call recorded once it ended", async {
        loop {
            let n = gw.records().len();
            if n == 20 {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert_eq!(recorded, 20);
}
