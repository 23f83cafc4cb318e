//! A bridged SRTP call taken up again by a new engine, as after a
//! restart: the saved state carries both legs' keys and stream indexes,
//! so the caller and the room, who never restarted, go on decrypting
//! what the new process sends and it goes on decrypting them.

use crate::media_support;

use media_support::*;
use pinless::media::{LegKeys, MediaEngine, MediaError, MediaState, SrtpLeg};
use pinless::sdes::{MasterKey, Suite};
use std::net::UdpSocket;
use std::sync::Arc;
use std::time::Duration;

/// Both ends of one leg: the gateway's keys and the peer's SRTP.
fn leg(suite: Suite) -> (LegKeys, SrtpLeg) {
    let (gw, peer) = (MasterKey::fresh(suite), MasterKey::fresh(suite));
    let peer_leg = SrtpLeg::new(LegKeys {
        local: peer.clone(),
        remote: gw.clone(),
    })
    .unwrap();
    (
        LegKeys {
            local: gw,
            remote: peer,
        },
        peer_leg,
    )
}

/// Sends an SRTP packet of `byte` × 160.
fn say(from: &UdpSocket, port: u16, srtp: &SrtpLeg, seq: u16, ssrc: u32, byte: u8) {
    let mut p = rtp(0, seq, u32::from(seq) * 160, ssrc);
    p[12..].fill(byte);
    send(from, port, &srtp.protect(&p).unwrap());
}

/// Waits (2 s) for a packet that `srtp` decrypts to all `byte`.
fn hears(on: &UdpSocket, srtp: &SrtpLeg, byte: u8) {
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    let mut buf = [0u8; 2048];
    while std::time::Instant::now() < deadline {
        let Ok(n) = on.recv(&mut buf) else { continue };
        if let Some(m) = srtp.unprotect(&mut buf, n)
            && buf[12..m].iter().all(|b| *b == byte)
        {
            return;
        }
    }
    panic!("never heard 0x{byte:02X} decrypted");
}

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
async fn a_bridged_srtp_call_resumes_with_its_keys() {
    let range = (47_600, 47_619);
    let old = engine(range);
    let (caller, room) = (peer(), peer());
    let (caller_keys, caller_srtp) = leg(Suite::AesCm128HmacSha1_80);
    let (room_keys, room_srtp) = leg(Suite::AeadAes128Gcm);
    let socket = old.allocate().unwrap();
    let caller_port = socket.port;
    let media = old
        .hold_secure(
            socket,
            caller.local_addr().unwrap(),
            MU,
            true,
            Arc::new(music()),
            Some(caller_keys),
        )
        .unwrap();
    say(&caller, caller_port, &caller_srtp, 1, 0x1111, 0x11);
    // Music, encrypted for this caller.
    let mut buf = [0u8; 2048];
    let n = caller.recv(&mut buf).unwrap();
    assert!(
        caller_srtp.unprotect(&mut buf, n).is_some(),
        "music is SRTP"
    );
    let room_socket = old.allocate().unwrap();
    let room_port = room_socket.port;
    assert!(
        media
            .bridge_secure(
                room_socket,
                room.local_addr().unwrap(),
                MU,
                true,
                Some(room_keys)
            )
            .await
    );
    say(&room, room_port, &room_srtp, 500, 0x2222, 0x5B);
    hears(&caller, &caller_srtp, 0x5B);
    say(&caller, caller_port, &caller_srtp, 2, 0x1111, 0x3C);
    hears(&room, &room_srtp, 0x3C);

    // Saved as the state DB keeps it (JSON), then the process dies.
    let state = media.state().await.expect("media task alive");
    assert!(state.caller_srtp.is_some() && state.room_srtp.is_some());
    let json = serde_json::to_string(&state).unwrap();
    let state: MediaState = serde_json::from_str(&json).unwrap();
    drop(media);
    drop(old);

    let (_new, _media) = restart(range, &state);
    // The peers carry on with the same SRTP: both ways still decrypt.
    for i in 0..5 {
        say(&room, room_port, &room_srtp, 501 + i, 0x2222, 0x5D);
    }
    hears(&caller, &caller_srtp, 0x5D);
    for i in 0..5 {
        say(&caller, caller_port, &caller_srtp, 3 + i, 0x1111, 0x3D);
    }
    hears(&room, &room_srtp, 0x3D);
}

/// A held SRTP call whose state was saved long before the crash (minutes
/// of audio each way went on after it, past a sequence wrap): the new
/// process must start past every index the old one used, and read the
/// caller where its stream really is.
#[tokio::test]
async fn a_call_resumed_long_after_its_last_save_keeps_its_srtp_indexes() {
    let range = (47_620, 47_629);
    let old = engine(range);
    let caller = peer();
    let (caller_keys, caller_srtp) = leg(Suite::AesCm128HmacSha1_80);
    let socket = old.allocate().unwrap();
    let port = socket.port;
    let media = old
        .hold_secure(
            socket,
            caller.local_addr().unwrap(),
            MU,
            true,
            Arc::new(music()),
            Some(caller_keys.clone()),
        )
        .unwrap();
    say(&caller, port, &caller_srtp, 1, 0x1111, 0x11);
    let mut buf = [0u8; 2048];
    let n = caller.recv(&mut buf).unwrap();
    assert!(caller_srtp.unprotect(&mut buf, n).is_some());
    let mut state = media.state().await.expect("media task alive");
    drop(media);
    drop(old);

    // As saved by a call an hour old: both streams at rollover counter 1.
    let ssrc = state.stream.ssrc;
    let at = (1u64 << 16) | 60_000;
    state.stream.next_sequence = 60_001;
    let saved = state.caller_srtp.as_mut().unwrap();
    saved.sent = vec![(ssrc, at)];
    saved.received = vec![(0x1111, at)];
    let saved = saved.clone();
    let caller_view = |sent, received| {
        SrtpLeg::restore(&pinless::media::SrtpState {
            keys: LegKeys {
                local: caller_keys.remote.clone(),
                remote: caller_keys.local.clone(),
            },
            sent,
            received,
        })
        .unwrap()
    };
    let caller_rx = caller_view(vec![], vec![(ssrc, at)]);
    let caller_tx = caller_view(vec![(0x1111, at)], vec![]);

    // The save was 40,000 packets (13 min 20 s) before the crash: more
    // than half the sequence space, and past a wrap.
    const GAP: u16 = 40_000;
    state.stream.due_unix_ms -= u64::from(GAP) * 20;
    // Meanwhile the old process went on sending music, which the caller
    // read, and the caller went on talking.
    let ghost = SrtpLeg::restore(&saved).unwrap();
    let mut seq = 60_000u16;
    for _ in 0..4 {
        seq = seq.wrapping_add(GAP / 4);
        let wire = ghost.protect(&rtp(0, seq, 0, ssrc)).unwrap();
        let mut b = wire.to_vec();
        assert!(caller_rx.unprotect(&mut b, wire.len()).is_some());
        assert!(caller_tx.protect(&rtp(0, seq, 0, 0x1111)).is_some());
    }

    let (new, _media) = restart(range, &state);
    // Our music past the gap: the caller reads it, so its index moved on
    // with the rollover counter (a reused index would also have repeated
    // the ghost's keystream).
    drain(&caller);
    hears_music(&caller, &caller_rx);
    // The caller's stream, read where it really is.
    let failed = new.stats().srtp_failed();
    for i in 1..=5 {
        say(&caller, port, &caller_tx, seq.wrapping_add(i), 0x1111, 0x12);
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        new.stats().srtp_failed(),
        failed,
        "the caller's SRTP is read"
    );
}

/// Waits (2 s) for music that `srtp` decrypts.
fn hears_music(on: &UdpSocket, srtp: &SrtpLeg) {
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    let mut buf = [0u8; 2048];
    while std::time::Instant::now() < deadline {
        let Ok(n) = on.recv(&mut buf) else { continue };
        if srtp.unprotect(&mut buf, n).is_some() {
            return;
        }
    }
    panic!("no music the caller can decrypt");
}

/// Once the caller's leg is latched, packets from any other address are
/// dropped as foreign before SRTP reads them (no work, no per-SSRC state
/// for a forger), and the caller's own still go through.
#[tokio::test]
async fn packets_from_elsewhere_never_reach_srtp_once_latched() {
    let range = (47_630, 47_639);
    let engine = engine(range);
    let (caller, forger) = (peer(), peer());
    let (keys, caller_srtp) = leg(Suite::AesCm128HmacSha1_80);
    let socket = engine.allocate().unwrap();
    let port = socket.port;
    let _media = engine
        .hold_secure(
            socket,
            caller.local_addr().unwrap(),
            MU,
            true,
            Arc::new(music()),
            Some(keys),
        )
        .unwrap();
    say(&caller, port, &caller_srtp, 1, 0x1111, 0x11);
    hears_music(&caller, &caller_srtp);
    let (failed, foreign) = (
        engine.stats().srtp_failed(),
        engine.stats().dropped_foreign(),
    );
    for i in 0..20u32 {
        let mut p = rtp(0, 2, 0, 0x5000 + i);
        p.extend_from_slice(&[0; 10]);
        send(&forger, port, &p);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while engine.stats().dropped_foreign() < foreign + 20 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(engine.stats().dropped_foreign(), foreign + 20);
    assert_eq!(engine.stats().srtp_failed(), failed, "SRTP never saw them");
}
