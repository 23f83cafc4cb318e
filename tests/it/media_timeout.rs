//! Dead peers (`[media] rtp_timeout_secs`, issue 11): real RTP on
//! loopback, a 1 s timeout.

use crate::media_support;

use media_support::*;
use pinless::media::{CallMedia, MediaEngine, MediaLeg, MediaSettings};
use std::net::UdpSocket;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(1);

fn engine_with_timeout(range: (u16, u16)) -> MediaEngine {
    let settings = MediaSettings {
        rtp_timeout: Some(TIMEOUT),
        ..settings(range)
    };
    MediaEngine::start(music(), settings).unwrap()
}

/// Sends `packet` to `port` every 20 ms for `how_long`, from `from`.
fn talk(from: &UdpSocket, port: u16, how_long: Duration, packet: Vec<u8>) -> JoinHandle<()> {
    let from = from.try_clone().unwrap();
    std::thread::spawn(move || {
        let end = Instant::now() + how_long;
        while Instant::now() < end {
            send(&from, port, &packet);
            std::thread::sleep(Duration::from_millis(20));
        }
    })
}

/// A held call on `engine`: the caller's socket, our port, the media.
fn held(engine: &MediaEngine, sends: bool) -> (UdpSocket, u16, CallMedia) {
    let caller = peer();
    let socket = engine.allocate().unwrap();
    let port = socket.port;
    let media = engine
        .hold(
            socket,
            caller.local_addr().unwrap(),
            MU,
            sends,
            Arc::new(music()),
        )
        .unwrap();
    (caller, port, media)
}

/// `silent()` within `within`, and when.
async fn silent_within(media: &mut CallMedia, within: Duration) -> Option<(MediaLeg, Instant)> {
    tokio::time::timeout(within, media.silent())
        .await
        .ok()
        .map(|leg| (leg, Instant::now()))
}

#[tokio::test]
async fn a_held_caller_that_talks_lives_and_one_that_stops_is_reported() {
    let engine = engine_with_timeout((47_200, 47_219));
    let (caller, port, mut media) = held(&engine, true);
    let talking = talk(&caller, port, Duration::from_millis(2_500), rtp(0, 1, 0, 9));
    let early = silent_within(&mut media, Duration::from_millis(2_400)).await;
    assert_eq!(
        early, None,
        "a caller that sends RTP is alive past the timeout"
    );
    talking.join().unwrap();
    let stopped = Instant::now();
    let (leg, at) = silent_within(&mut media, TIMEOUT + Duration::from_secs(2))
        .await
        .expect("reported");
    assert_eq!(leg, MediaLeg::Caller);
    let after = at - stopped;
    assert!(
        after >= TIMEOUT - Duration::from_millis(50) && after <= TIMEOUT + Duration::from_secs(1),
        "reported {after:?} after the last packet"
    );
    // Once only.
    assert_eq!(
        silent_within(&mut media, Duration::from_millis(1_500)).await,
        None
    );
}

#[tokio::test]
async fn rtcp_alone_counts_as_life() {
    let engine = engine_with_timeout((47_220, 47_239));
    let (caller, port, mut media) = held(&engine, true);
    let reports = talk(&caller, port, Duration::from_millis(2_500), rtcp(9));
    assert_eq!(
        silent_within(&mut media, Duration::from_millis(2_400)).await,
        None
    );
    reports.join().unwrap();
}

/// RTCP sent to the RTP port + 1 (RFC 3550's default, for peers that do
/// not multiplex) counts too; once it stops, the leg is reported.
#[tokio::test]
async fn rtcp_on_the_next_port_counts_as_life() {
    let engine = engine_with_timeout((47_500, 47_519));
    let (_caller, port, mut media) = held(&engine, true);
    let reporter = peer(); // its own port, as a phone's RTCP socket is
    let reports = talk(&reporter, port + 1, Duration::from_millis(2_500), rtcp(9));
    assert_eq!(
        silent_within(&mut media, Duration::from_millis(2_400)).await,
        None,
        "RTCP on port+1 keeps a leg alive"
    );
    reports.join().unwrap();
    let (leg, _) = silent_within(&mut media, TIMEOUT + Duration::from_secs(2))
        .await
        .expect("reported once RTCP stops too");
    assert_eq!(leg, MediaLeg::Caller);
}

#[tokio::test]
async fn a_leg_whose_sdp_says_it_does_not_send_is_not_timed_out() {
    let engine = engine_with_timeout((47_240, 47_259));
    let (_caller, _port, mut media) = held(&engine, false);
    assert_eq!(
        silent_within(&mut media, Duration::from_millis(2_500)).await,
        None
    );
    // A re-INVITE says it sends now: the timeout runs from then.
    media.set_sends(MediaLeg::Caller, true);
    let (leg, _) = silent_within(&mut media, TIMEOUT + Duration::from_secs(1))
        .await
        .expect("reported");
    assert_eq!(leg, MediaLeg::Caller);
}

#[tokio::test]
async fn a_bridged_call_whose_room_stops_is_reported() {
    let engine = engine_with_timeout((47_260, 47_279));
    let (caller, caller_port, mut media) = held(&engine, true);
    let room = peer();
    let room_socket = engine.allocate().unwrap();
    let room_port = room_socket.port;
    assert!(
        media
            .bridge(room_socket, room.local_addr().unwrap(), MU, true)
            .await
    );
    let caller_talks = talk(
        &caller,
        caller_port,
        Duration::from_secs(5),
        rtp(0, 1, 0, 9),
    );
    let room_talks = talk(
        &room,
        room_port,
        Duration::from_millis(1_500),
        rtp(0, 1, 0, 7),
    );
    assert_eq!(
        silent_within(&mut media, Duration::from_millis(1_400)).await,
        None
    );
    room_talks.join().unwrap();
    let stopped = Instant::now();
    let (leg, at) = silent_within(&mut media, TIMEOUT + Duration::from_secs(2))
        .await
        .expect("reported");
    assert_eq!(leg, MediaLeg::Room);
    assert!(
        at - stopped <= TIMEOUT + Duration::from_secs(1),
        "{:?}",
        at - stopped
    );
    caller_talks.join().unwrap();
}

#[tokio::test]
async fn the_timeout_off_reports_nothing() {
    let engine = MediaEngine::start(music(), settings((47_280, 47_299))).unwrap();
    let (_caller, _port, mut media) = held(&engine, true);
    assert_eq!(
        silent_within(&mut media, Duration::from_millis(2_000)).await,
        None
    );
}

#[tokio::test]
async fn a_resumed_call_s_peers_get_a_whole_timeout_from_the_restart() {
    let engine = engine_with_timeout((47_300, 47_319));
    let (_caller, _port, media) = held(&engine, true);
    let state = media.state().await.unwrap();
    assert!(state.caller.sends);
    drop(media);
    drop(engine);
    std::thread::sleep(Duration::from_millis(1_200));
    let engine = engine_with_timeout((47_300, 47_319));
    let mut resumed = None;
    for _ in 0..100 {
        match engine.resume(&state, Arc::new(music())) {
            Ok(m) => {
                resumed = Some(m);
                break;
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    let mut media = resumed.expect("the old engine freed its ports");
    let resumed = Instant::now();
    let (leg, at) = silent_within(&mut media, TIMEOUT + Duration::from_secs(2))
        .await
        .expect("reported");
    assert_eq!(leg, MediaLeg::Caller);
    assert!(
        at - resumed >= TIMEOUT - Duration::from_millis(50),
        "{:?}",
        at - resumed
    );
}
