//! Kamailio's dispatcher, with the configuration we ship, in front of
//! three real pinless nodes in a cluster (a real redis-server): sipp
//! callers reach one SIP address and are spread over every node; each
//! call is transferred by an update sent to a node that does not own it;
//! a node stopped with SIGTERM (drain) is skipped by the next calls with
//! no failure, while its own calls go on to their end; requests for other
//! hosts are not relayed. (Redis going away
//! mid-run is tests/cluster.rs's.) Run with `cargo test --features
//! interop`.

use crate::support;

use pinless::sip::LegEvent;
use reqwest::Method;
use serde_json::json;
use std::collections::HashMap;
use support::binary::Binary;
use support::cluster::*;
use support::kamailio::Kamailio;
use support::sipp::*;
use support::*;

/// `(callId, callDomain)` of each of `n` incoming-call webhooks, and how
/// many each node took; what came, with Kamailio's log, when fewer did.
async fn landed(
    hooks: &mut WebhookReceiver,
    n: usize,
    front: &Kamailio,
) -> (Vec<(String, String)>, HashMap<String, usize>) {
    let mut calls = Vec::new();
    let mut by_node = HashMap::new();
    for got in 0..n {
        let hook = tokio::time::timeout(std::time::Duration::from_secs(12), hooks.next()).await;
        let Ok(hook) = hook else {
            panic!("{got} of {n} webhooks came: {by_node:?}\n{}", front.log());
        };
        let body = hook.json();
        let field = |k: &str| body[k].as_str().unwrap_or("?").to_string();
        *by_node.entry(field("callDomain")).or_insert(0) += 1;
        calls.push((field("callId"), field("callDomain")));
    }
    (calls, by_node)
}

#[tokio::test]
async fn three_cluster_nodes_behind_kamailio_spread_calls_and_skip_one_that_drains() {
    let redis = Redis::start();
    let mut hooks = WebhookReceiver::start(&[]).await;
    let mut nodes: Vec<Binary> = Vec::new();
    for i in 1..=3 {
        let lines = format!("call_domain = \"node-{i}\"\nshutdown = \"drain\"");
        nodes.push(node_with(&redis, &hooks.url(), &lines).await);
    }
    cluster_of(&nodes.iter().collect::<Vec<_>>()).await;
    let front = Kamailio::start(&nodes.iter().map(|n| n.sip).collect::<Vec<_>>()).await;
    let target = front.sip.to_string();

    // Not an open relay: a request with a To-tag goes only to a node.
    let stranger = support::raw::RawSip::new(front.sip).await;
    let local = stranger.local;
    stranger
        .send(&format!(
            "BYE sip:victim@127.0.0.1:9 SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch=z9hG4bKrelay1\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:a@{local}>;tag=a\r\n\
             To: <sip:victim@127.0.0.1:9>;tag=b\r\n\
             Call-ID: relay-probe\r\n\
             CSeq: 2 BYE\r\n\
             Content-Length: 0\r\n\r\n"
        ))
        .await;
    let refused = stranger
        .response(std::time::Duration::from_secs(5), true)
        .await
        .expect("an answer from Kamailio");
    assert_eq!(refused.code(), 403, "{}", refused.0);

    // 30 callers, each on the line for 9 s: about ten per node.
    let first = sipp_calls(&target, "caller_restart.xml", 30, &["-l", "30", "-r", "30"]);
    let (calls, spread) = landed(&mut hooks, 30, &front).await;
    for i in 1..=3 {
        let n = spread.get(&format!("node-{i}")).copied().unwrap_or(0);
        assert!(n >= 5, "node-{i} took {n} of 30 calls: {spread:?}");
    }

    // Each call's update goes to a node that does not own it; the room
    // gets every INVITE and each call is bridged.
    let mut room = Room::new().await;
    for (id, owner) in &calls {
        let owner_no: usize = owner.trim_start_matches("node-").parse().unwrap();
        let other = &nodes[owner_no % 3];
        let body = json!({ "callId": id, "callDomain": owner, "sipUri": room.uri("room", false) });
        let (s, answer) = api(
            other,
            Method::POST,
            "/v1/dialin/pinlessCallUpdate",
            Some(body),
        )
        .await;
        assert_eq!(
            s, 200,
            "update of {owner}'s call {id} through another node: {answer}"
        );
        let invite = room.next_invite().await;
        let (mut leg, _) = room.answer(invite).await;
        tokio::spawn(async move { while !matches!(leg.next_event().await, LegEvent::Bye) {} });
        state_through(other, id, "bridged").await;
    }

    // Node 2 stops for a deploy: its calls go on; the next calls go to
    // nodes 1 and 3 only, and none fails.
    nodes[1].signal("TERM");
    let second = sipp_calls(&target, "caller.xml", 12, &["-l", "12", "-r", "12"]);
    let (_, after) = landed(&mut hooks, 12, &front).await;
    assert_eq!(
        after.get("node-2"),
        None,
        "a call reached the draining node: {after:?}"
    );
    assert!(
        finished(second, "12 callers while node 2 drains", 40).await,
        "a call failed while node 2 drained\n{}",
        front.log()
    );
    assert!(
        finished(first, "30 bridged callers, node 2's among them", 40).await,
        "a call of the first 30 failed (node 2's calls must go on)\n{}\n{}",
        nodes[1].log(),
        front.log()
    );
    // Its calls over, node 2 finishes its drain and exits cleanly.
    assert!(nodes[1].exited(20).await.success(), "{}", nodes[1].log());
}
