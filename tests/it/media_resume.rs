//! A call's media taken up again by a new engine, as after `kill -9` and a
//! restart (issue 11): real RTP on loopback, a fake caller and room.

use crate::media_support;

use media_support::*;
use pinless::media::{MediaEngine, MediaError, MediaState};
use std::sync::Arc;
use std::time::Duration;

/// The state's engine is dropped (its ports freed, as by the process
/// dying) and a new one on the same range resumes the call. Waits for the
/// old engine's thread to let go of the ports.
fn restart(range: (u16, u16), state: &MediaState) -> (MediaEngine, pinless::media::CallMedia) {
    let engine = engine(range);
    for _ in 0..100 {
        match engine.resume(state, Arc::new(music())) {
            Ok(media) => return (engine, media),
            Err(MediaError::PortTaken { .. }) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("resume: {e}"),
        }
    }
    panic!("the old engine never freed its ports");
}

#[tokio::test]
async fn a_held_call_resumes_its_music_on_the_same_port_and_ssrc() {
    let range = (47_000, 47_019);
    let old = engine(range);
    let caller = peer();
    let socket = old.allocate().unwrap();
    let port = socket.port;
    let media = old
        .hold(
            socket,
            caller.local_addr().unwrap(),
            MU,
            true,
            Arc::new(music()),
        )
        .unwrap();
    // The caller speaks once, so the media latches to it.
    send(&caller, port, &rtp(0, 1, 160, 0x1111));
    std::thread::sleep(Duration::from_millis(50));
    let first = recv(&caller);
    assert_eq!(first.0.port(), port);
    let ssrc = first.1.ssrc;
    let state = media.state().await.expect("media task alive");
    assert_eq!(state.caller.port, port);
    assert!(state.caller.latched);
    assert_eq!(state.caller.remote, caller.local_addr().unwrap());
    assert_eq!(state.stream.ssrc, ssrc);
    assert!(state.room.is_none());
    // The state is saved here; the music plays on for a while before the
    // process dies (what was saved at the last change must suffice).
    std::thread::sleep(Duration::from_millis(300));
    drop(media);
    drop(old);
    std::thread::sleep(Duration::from_millis(200));
    let last = drain(&caller).expect("packets before the stop");
    assert_eq!(last.1.ssrc, ssrc);
    let stopped = std::time::Instant::now();

    let (_new, _media) = restart(range, &state);
    let down = stopped.elapsed();
    let (from, h) = recv(&caller);
    assert_eq!(from.port(), port, "the same RTP port");
    assert_eq!(h.ssrc, ssrc, "the same SSRC");
    assert!(h.marker, "a new talkspurt after the gap");
    let ahead = h.sequence.wrapping_sub(last.1.sequence);
    assert!((1..3_000).contains(&ahead), "sequence moved on: {ahead}");
    let ticks = h.timestamp.wrapping_sub(last.1.timestamp);
    let down_ticks = u32::try_from(down.as_millis()).unwrap() * 8;
    assert!(
        ticks >= down_ticks && ticks < down_ticks + 8 * 1_000,
        "timestamp moved on by the time down: {ticks} for {down:?}"
    );
    let next = recv(&caller).1;
    assert_eq!(next.sequence, h.sequence.wrapping_add(1));
    assert_eq!(next.timestamp, h.timestamp.wrapping_add(160));
}

#[tokio::test]
async fn a_bridged_call_relays_both_ways_again_with_the_caller_s_stream_continuous() {
    let range = (47_100, 47_119);
    let old = engine(range);
    let (caller, room) = (peer(), peer());
    let socket = old.allocate().unwrap();
    let caller_port = socket.port;
    let media = old
        .hold(
            socket,
            caller.local_addr().unwrap(),
            MU,
            true,
            Arc::new(music()),
        )
        .unwrap();
    send(&caller, caller_port, &rtp(0, 1, 160, 0x1111));
    let ssrc = recv(&caller).1.ssrc;
    let room_socket = old.allocate().unwrap();
    let room_port = room_socket.port;
    assert!(
        media
            .bridge(room_socket, room.local_addr().unwrap(), A, true)
            .await
    );
    // The caller's first packet may have been relayed to the room.
    std::thread::sleep(Duration::from_millis(50));
    drain(&caller);
    drain(&room);
    // The room talks: 20 packets, relayed to the caller on its stream.
    let mut room_seq = 30_000u16;
    let mut room_ts = 1_000_000u32;
    for _ in 0..20 {
        send(&room, room_port, &rtp(8, room_seq, room_ts, 0xAAAA));
        room_seq = room_seq.wrapping_add(1);
        room_ts = room_ts.wrapping_add(160);
    }
    let relayed: Vec<_> = (0..20).map(|_| recv(&caller).1).collect();
    assert!(
        relayed
            .iter()
            .all(|h| h.ssrc == ssrc && h.payload_type == 0)
    );
    assert!(
        relayed
            .windows(2)
            .all(|w| w[1].sequence == w[0].sequence.wrapping_add(1))
    );
    let last = *relayed.last().unwrap();
    // The caller talks: relayed to the room as it is, in the room's law.
    send(&caller, caller_port, &rtp(0, 7, 1_120, 0x1111));
    let (from, h) = recv(&room);
    assert_eq!(
        (from.port(), h.ssrc, h.sequence, h.payload_type),
        (room_port, 0x1111, 7, 8)
    );

    let state = media.state().await.expect("media task alive");
    let saved_room = state.room.expect("bridged");
    assert_eq!(
        (saved_room.leg.port, saved_room.leg.remote),
        (room_port, room.local_addr().unwrap())
    );
    assert!(saved_room.mapping.is_some());
    drop(media);
    drop(old);
    std::thread::sleep(Duration::from_millis(200));
    drain(&caller);

    let (_new, _media) = restart(range, &state);
    // The room went on numbering through the gap (10 packets' worth).
    room_seq = room_seq.wrapping_add(10);
    room_ts = room_ts.wrapping_add(1_600);
    for _ in 0..5 {
        send(&room, room_port, &rtp(8, room_seq, room_ts, 0xAAAA));
        room_seq = room_seq.wrapping_add(1);
        room_ts = room_ts.wrapping_add(160);
    }
    let after: Vec<_> = (0..5).map(|_| recv(&caller)).collect();
    assert!(after.iter().all(|(from, _)| from.port() == caller_port));
    let first = after[0].1;
    assert_eq!(first.ssrc, ssrc, "the caller's stream keeps its SSRC");
    assert!(first.marker);
    let ahead = first.sequence.wrapping_sub(last.sequence);
    assert_eq!(ahead, 11, "the room's numbering maps through, gap included");
    assert_eq!(first.timestamp.wrapping_sub(last.timestamp), 11 * 160);
    assert!(
        after
            .windows(2)
            .all(|w| w[1].1.sequence == w[0].1.sequence.wrapping_add(1))
    );
    send(&caller, caller_port, &rtp(0, 8, 1_280, 0x1111));
    let (from, h) = recv(&room);
    assert_eq!((from.port(), h.ssrc, h.sequence), (room_port, 0x1111, 8));
}

#[tokio::test]
async fn a_room_that_changed_ssrc_continues_ahead_of_every_number_sent() {
    let range = (47_140, 47_159);
    let old = engine(range);
    let (caller, room) = (peer(), peer());
    let socket = old.allocate().unwrap();
    let caller_port = socket.port;
    let media = old
        .hold(
            socket,
            caller.local_addr().unwrap(),
            MU,
            true,
            Arc::new(music()),
        )
        .unwrap();
    send(&caller, caller_port, &rtp(0, 1, 160, 0x1111));
    let room_socket = old.allocate().unwrap();
    let room_port = room_socket.port;
    assert!(
        media
            .bridge(room_socket, room.local_addr().unwrap(), MU, true)
            .await
    );
    let state = media.state().await.unwrap();
    // Saved before the room's first packet; the room then talks a while.
    std::thread::sleep(Duration::from_millis(50));
    drain(&caller);
    for i in 0..40u16 {
        send(
            &room,
            room_port,
            &rtp(0, 100 + i, 160 * u32::from(i), 0xBBBB),
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(50));
    let last = drain(&caller).unwrap().1;
    drop(media);
    drop(old);
    let (_new, _media) = restart(range, &state);
    send(&room, room_port, &rtp(0, 5, 0, 0xCCCC));
    let h = recv(&caller).1;
    assert_eq!(h.ssrc, last.ssrc);
    let ahead = h.sequence.wrapping_sub(last.sequence);
    assert!((1..3_000).contains(&ahead), "{ahead}");
}
