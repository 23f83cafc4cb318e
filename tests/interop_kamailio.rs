//! Kamailio's dispatcher, with the configuration we ship, in front of
//! three real pinless nodes: sipp callers reach one SIP address and are
//! spread over every node; a node stopped with SIGTERM (drain) is skipped
//! by the next calls with no failure, while its own calls go on to their
//! end. Run with `cargo test --features interop`.
#![cfg(feature = "interop")]

mod support;

use std::collections::HashMap;
use support::binary::Binary;
use support::kamailio::Kamailio;
use support::sipp::*;
use support::*;

/// The callDomain of each of `n` incoming-call webhooks, counted; what
/// came, with Kamailio's log, when fewer did.
async fn landed(hooks: &mut WebhookReceiver, n: usize, front: &Kamailio) -> HashMap<String, usize> {
    let mut by_node = HashMap::new();
    for got in 0..n {
        let hook = tokio::time::timeout(std::time::Duration::from_secs(12), hooks.next()).await;
        let Ok(hook) = hook else {
            panic!("{got} of {n} webhooks came: {by_node:?}\n{}", front.log());
        };
        let node = hook.json()["callDomain"].as_str().unwrap_or("?").to_string();
        *by_node.entry(node).or_insert(0) += 1;
    }
    by_node
}

#[tokio::test]
async fn calls_spread_over_three_nodes_and_skip_one_that_drains() {
    let mut hooks = WebhookReceiver::start(&[]).await;
    let mut nodes: Vec<Binary> = (1..=3)
        .map(|i| {
            Binary::new(
                &format!("call_domain = \"node-{i}\"\nshutdown = \"drain\""),
                &hooks.url(),
                "",
                "",
            )
        })
        .collect();
    for node in &mut nodes {
        node.start().await;
    }
    let front = Kamailio::start(&nodes.iter().map(|n| n.sip).collect::<Vec<_>>()).await;
    let target = front.sip.to_string();

    // 30 callers, each on the line for 9 s: ten per node, round robin.
    let first = sipp_calls(&target, "caller_restart.xml", 30, &["-l", "30", "-r", "30"]);
    let spread = landed(&mut hooks, 30, &front).await;
    for i in 1..=3 {
        let n = spread.get(&format!("node-{i}")).copied().unwrap_or(0);
        assert!(n >= 5, "node-{i} took {n} of 30 calls: {spread:?}");
    }

    // Node 2 stops for a deploy: its calls go on; the next calls go to
    // nodes 1 and 3 only, and none fails.
    nodes[1].signal("TERM");
    let second = sipp_calls(&target, "caller.xml", 12, &["-l", "12", "-r", "12"]);
    let after = landed(&mut hooks, 12, &front).await;
    assert_eq!(after.get("node-2"), None, "a call reached the draining node: {after:?}");
    assert!(
        finished(second, "12 callers while node 2 drains", 40).await,
        "a call failed while node 2 drained\n{}",
        front.log()
    );
    assert!(
        finished(first, "30 callers, node 2's among them", 40).await,
        "a call of the first 30 failed (node 2's calls must go on)\n{}\n{}",
        nodes[1].log(),
        front.log()
    );
    // Its calls over, node 2 finishes its drain and exits cleanly.
    assert!(nodes[1].exited(20).await.success(), "{}", nodes[1].log());
}
