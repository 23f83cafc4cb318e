//! A leg's dialog survives its process (issue 11): a stack answers calls
//! from a phone and saves each leg's `LegState`; the stack then dies the
//! way `kill -9` kills it (its runtime is dropped: no BYE, sockets closed,
//! ports freed); a new stack on the same addresses resumes the legs from
//! the saved JSON. Real SIP on loopback, over UDP and over TCP.

use crate::support;

use pinless::sip::{IncomingInvite, Leg, LegEvent, LegState, Stack, StackConfig, sdp};
use std::net::SocketAddr;
use std::time::Duration;
use support::{Phone, within};
use tokio::sync::{mpsc, oneshot};

/// A port free for both UDP and TCP on 127.0.0.1.
fn free_port() -> u16 {
    loop {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn config(port: u16) -> StackConfig {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    StackConfig {
        udp: Some(addr),
        tcp: Some(addr),
        tls: None,
        tls_connector: None,
        public_host: "127.0.0.1".into(),
        invite_queue: 16,
    }
}

async fn answer(stack: &Stack, invites: &mut mpsc::Receiver<IncomingInvite>) -> Leg {
    let invite = within(10, "an INVITE", invites.recv())
        .await
        .expect("stack running");
    let offer = sdp::parse(&invite.info.sdp).expect("offer parses");
    let answer = sdp::answer("127.0.0.1".parse().unwrap(), 40000, offer.choose());
    invite.accept(stack, answer).await.expect("answered")
}

/// The first process: its own runtime on its own thread. It answers
/// `calls` INVITEs and sends the legs' states as JSON (as a store would
/// keep them); when `kill` fires, its runtime is dropped with every task
/// and socket in it, and nothing is said to the peer.
struct OldProcess {
    states: oneshot::Receiver<Vec<String>>,
    kill: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl OldProcess {
    async fn start(port: u16, calls: usize) -> OldProcess {
        let (ready_tx, ready) = oneshot::channel();
        let (states_tx, states) = oneshot::channel();
        let (kill, killed) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let (stack, mut invites) = Stack::start(config(port)).await.expect("old stack");
                let _ = ready_tx.send(());
                let mut legs = Vec::new();
                for _ in 0..calls {
                    legs.push(answer(&stack, &mut invites).await);
                }
                let saved = legs
                    .iter()
                    .map(|l| serde_json::to_string(&l.state()).unwrap())
                    .collect();
                let _ = states_tx.send(saved);
                let _ = killed.await;
                // Dropping a leg says nothing to the peer (only `hangup`
                // does), as with a killed process.
                drop(legs);
            });
            rt.shutdown_timeout(Duration::from_secs(1));
        });
        within(10, "the old stack to listen", ready)
            .await
            .expect("old stack started");
        OldProcess {
            states,
            kill: Some(kill),
            thread: Some(thread),
        }
    }

    async fn states(&mut self) -> Vec<LegState> {
        within(10, "the saved states", &mut self.states)
            .await
            .expect("old process saved its legs")
            .iter()
            .map(|s| serde_json::from_str(s).expect("state parses back"))
            .collect()
    }

    fn kill(mut self) {
        if let Some(k) = self.kill.take() {
            let _ = k.send(());
        }
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

/// The new process's stack on the old addresses. Binding retries briefly:
/// the old runtime closes its sockets as it winds down.
async fn restart(port: u16) -> (Stack, mpsc::Receiver<IncomingInvite>) {
    let mut last = None;
    for _ in 0..50 {
        match Stack::start(config(port)).await {
            Ok(s) => return s,
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the old addresses are not free again: {last:?}");
}

/// Keeps answering a leg's in-dialog requests; its events come out of the
/// returned channel.
fn serve(mut leg: Leg) -> mpsc::UnboundedReceiver<LegEvent> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let event = leg.next_event().await;
            if tx.send(event).is_err() {
                return;
            }
        }
    });
    rx
}

async fn resume_after_kill(tcp: bool) {
    let port = free_port();
    let mut old = OldProcess::start(port, 3).await;
    let phone = Phone::new().await;
    let target = if tcp {
        format!("sip:support@127.0.0.1:{port};transport=tcp")
    } else {
        format!("sip:support@127.0.0.1:{port}")
    };
    let (bye_from_phone, _) = phone.call(&target, &[]).await;
    let (mut refreshed, _) = phone.call(&target, &[]).await;
    let (mut hung_up_on, _) = phone.call(&target, &[]).await;
    let states = old.states().await;
    assert_eq!(states.len(), 3);
    let expected = if tcp { "tcp" } else { "udp" };
    assert!(states.iter().all(|s| s.transport.as_str() == expected));
    // Let the ACKs land before the old process dies.
    tokio::time::sleep(Duration::from_millis(100)).await;
    old.kill();
    // A restart takes at least this long; meanwhile the phone's stack sees
    // the old TCP connection close (a request written into it before that
    // would be lost, as with any stale connection).
    tokio::time::sleep(Duration::from_millis(200)).await;

    let (stack, _invites) = restart(port).await;
    let mut resumed = states.into_iter().map(|s| {
        let cseq = s.cseq;
        let leg = stack.resume_leg(s.clone()).expect("leg resumes");
        // The same dialog cannot be resumed twice.
        assert!(stack.resume_leg(s).is_err());
        (leg, cseq)
    });
    let (mut a, _) = resumed.next().unwrap();
    let (b, _) = resumed.next().unwrap();
    let (c, c_cseq) = resumed.next().unwrap();

    // (a) The phone's BYE reaches the resumed leg, is answered 200, and
    // the leg reports it.
    let answered = bye_from_phone.hangup_answered();
    assert_eq!(
        within(10, "the resumed leg to see the BYE", a.next_event()).await,
        LegEvent::Bye
    );
    assert_eq!(
        within(10, "the BYE's answer", answered).await.unwrap(),
        Some(200)
    );

    // (b) A re-INVITE, an OPTIONS and an UPDATE in another call are
    // answered 200, and the call goes on.
    let mut b_events = serve(b);
    let reinvite = refreshed.reinvite();
    assert_eq!(
        within(10, "the re-INVITE's answer", reinvite)
            .await
            .unwrap(),
        Some(200)
    );
    let options = refreshed.options();
    assert_eq!(
        within(10, "the OPTIONS's answer", options).await.unwrap(),
        Some(200)
    );
    let update = refreshed.update();
    assert_eq!(
        within(10, "the UPDATE's answer", update).await.unwrap(),
        Some(200)
    );
    assert!(b_events.try_recv().is_err(), "no event from refreshes");

    // (c) Our hangup on a resumed leg reaches the phone as a BYE it
    // accepts, with a CSeq above what the old process may have used.
    let state_cseq = c.state().cseq;
    assert!(state_cseq >= c_cseq + 100, "resumed CSeq moved on");
    let answered = c.hangup_answered();
    assert_eq!(
        within(10, "the phone to see our BYE", hung_up_on.next_event()).await,
        LegEvent::Bye
    );
    assert_eq!(
        within(10, "our BYE's answer", answered).await.unwrap(),
        Some(200)
    );
    refreshed.hangup();
}

#[tokio::test]
async fn a_leg_resumed_after_kill_answers_and_hangs_up_over_udp() {
    resume_after_kill(false).await;
}

#[tokio::test]
async fn a_leg_resumed_after_kill_answers_and_hangs_up_over_tcp() {
    resume_after_kill(true).await;
}
