//! Our SRTP against RFC 3711 appendix B, and the behaviour a call needs:
//! two legs that talk, tampering and replays refused, and a leg resumed
//! after a sequence wrap that still talks to the peer.
//!
//! Appendix B.3 publishes, for one master key and salt, the session
//! cipher key, salt and authentication key they derive; B.2 the AES-CM
//! keystream of a session key. The expected packet is built here from
//! those published values with independent AES-CTR and HMAC-SHA1 (the
//! `aes`, `ctr`, `sha1` crates) and compared to what `SrtpLeg` sends: it
//! checks the key and salt split, the suite mapping and the crate's
//! derivation, IV and tag together.

use super::*;
use crate::sdes::Suite;
use aes::cipher::{KeyIvInit, StreamCipher};
use hmac::Mac;

type AesCtr = ctr::Ctr128BE<aes::Aes128>;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// AES-CM keystream (RFC 3711 §4.1.1) of `key` from `iv`.
fn keystream(key: &[u8], iv: &[u8], len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    AesCtr::new(key.into(), iv.into()).apply_keystream(&mut out);
    out
}

const B3_MASTER_KEY: &str = "E1F97A0D3E018BE0D64FA32C06DE4139";
const B3_MASTER_SALT: &str = "0EC675AD498AFEEBB6960B3AABE6";
const B3_CIPHER_KEY: &str = "C61E7A93744F39EE10734AFE3FF7A087";
const B3_CIPHER_SALT: &str = "30CBBC08863D8C85D49DB34A9AE1";
const B3_AUTH_KEY: &str = "CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4";

fn master(suite: Suite, key: &str, salt: &str) -> MasterKey {
    MasterKey::from_bytes(suite, &[hex(key), hex(salt)].concat()).unwrap()
}

fn rtp(seq: u16, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, 0x00];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&0x0102_0304u32.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// Two ends of one leg: what `a` sends `b` reads, and back.
fn pair(suite: Suite) -> (SrtpLeg, SrtpLeg) {
    let (x, y) = (MasterKey::fresh(suite), MasterKey::fresh(suite));
    let a = SrtpLeg::new(LegKeys {
        local: x.clone(),
        remote: y.clone(),
    })
    .unwrap();
    let b = SrtpLeg::new(LegKeys {
        local: y,
        remote: x,
    })
    .unwrap();
    (a, b)
}

fn read(leg: &SrtpLeg, wire: &[u8]) -> Option<Vec<u8>> {
    let mut buf = [0u8; 512];
    buf[..wire.len()].copy_from_slice(wire);
    leg.unprotect(&mut buf, wire.len())
        .map(|n| buf[..n].to_vec())
}

#[test]
fn the_reference_aes_cm_is_rfc_3711_b2() {
    // B.2: session key, and the IV of session salt F0F1…FD (SSRC and
    // index zero); the published first three keystream blocks.
    let key = hex("2B7E151628AED2A6ABF7158809CF4F3C");
    let iv = hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000");
    let want = hex(
        "E03EAD0935C95E80E166B16DD92B4EB4 D23513162B02D0F72A43A2FE4A5F97AB \
         41E95B3BB0A2E8DD477901E4FCA894C0",
    );
    assert_eq!(keystream(&key, &iv, 48), want);
}

#[test]
fn a_packet_under_the_rfc_3711_b3_master_key_is_what_the_rfc_s_session_keys_make() {
    for (suite, tag_len) in [
        (Suite::AesCm128HmacSha1_80, 10),
        (Suite::AesCm128HmacSha1_32, 4),
    ] {
        let local = master(suite, B3_MASTER_KEY, B3_MASTER_SALT);
        let leg = SrtpLeg::new(LegKeys {
            local: local.clone(),
            remote: local,
        })
        .unwrap();
        let (seq, ssrc) = (0x1234u16, 0xCAFE_BABEu32);
        let payload: Vec<u8> = (0..160u32).map(|i| (i * 7) as u8).collect();
        let plain = rtp(seq, ssrc, &payload);
        let wire = leg.protect(&plain).unwrap();

        // RFC 3711 §4.1.1: IV = salt·2^16 ⊕ SSRC·2^64 ⊕ index·2^16.
        let mut iv = [0u8; 16];
        iv[..14].copy_from_slice(&hex(B3_CIPHER_SALT));
        for (i, b) in ssrc.to_be_bytes().iter().enumerate() {
            iv[4 + i] ^= b;
        }
        let index = u64::from(seq); // ROC 0
        for (i, b) in index.to_be_bytes()[2..].iter().enumerate() {
            iv[8 + i] ^= b;
        }
        let ks = keystream(&hex(B3_CIPHER_KEY), &iv, payload.len());
        let cipher: Vec<u8> = payload.iter().zip(&ks).map(|(p, k)| p ^ k).collect();
        let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(&hex(B3_AUTH_KEY)).unwrap();
        mac.update(&plain[..12]);
        mac.update(&cipher);
        mac.update(&0u32.to_be_bytes()); // ROC
        let tag = mac.finalize().into_bytes();

        assert_eq!(&wire[..12], &plain[..12], "{suite:?}: header in the clear");
        assert_eq!(&wire[12..12 + payload.len()], &cipher[..], "{suite:?}");
        assert_eq!(&wire[12 + payload.len()..], &tag[..tag_len], "{suite:?}");
        // And it reads back.
        assert_eq!(read(&leg, &wire), Some(plain));
    }
}

#[test]
fn each_suite_talks_both_ways_and_refuses_tampering_and_replays() {
    for suite in crate::sdes::SUITES {
        let (a, b) = pair(suite);
        let plain = rtp(7, 42, &[0x5B; 160]);
        let wire = a.protect(&plain).unwrap();
        assert_ne!(&wire[12..172], &plain[12..], "{suite:?}: encrypted");
        assert_eq!(read(&b, &wire), Some(plain.clone()), "{suite:?}");
        assert_eq!(read(&b, &wire), None, "{suite:?}: a replay");
        let mut bad = a.protect(&rtp(8, 42, &[0x5B; 160])).unwrap();
        bad[20] ^= 1;
        assert_eq!(read(&b, &bad), None, "{suite:?}: tampered");
        // With a's own inbound key (b's outbound), nothing of a's reads.
        let wire = a.protect(&rtp(9, 42, &[1; 160])).unwrap();
        assert_eq!(read(&a, &wire), None, "{suite:?}: wrong key");
        let back = b.protect(&rtp(1, 99, &[2; 160])).unwrap();
        assert_eq!(read(&a, &back), Some(rtp(1, 99, &[2; 160])));
    }
}

#[test]
fn srtcp_from_the_peer_is_checked() {
    let (a, b) = pair(Suite::AesCm128HmacSha1_80);
    // A receiver report (PT 201) with no blocks.
    let rr = [0x80, 201, 0x00, 0x01, 0, 0, 0, 42];
    let wire = {
        let mut d = a.outbound.lock().unwrap();
        d.ctx.encrypt_rtcp(&rr).unwrap()
    };
    let mut buf = [0u8; 128];
    buf[..wire.len()].copy_from_slice(&wire);
    assert!(is_rtcp(&wire));
    assert_eq!(b.open(&mut buf, wire.len()), Some(wire.len()));
    buf[9] ^= 1;
    assert_eq!(b.open(&mut buf, wire.len()), None, "tampered");
    // The E flag cleared: the crate would hand it back unchecked.
    buf[9] ^= 1;
    buf[wire.len() - 14] &= 0x7F;
    assert_eq!(b.open(&mut buf, wire.len()), None, "E flag cleared");
    assert!(!is_rtcp(&rtp(1, 1, &[0])));
}

#[test]
fn a_leg_resumed_after_a_sequence_wrap_still_talks_to_its_peer() {
    let (a, b) = pair(Suite::AesCm128HmacSha1_80);
    // a's stream wraps (ROC 0 → 1) before the call is saved.
    for seq in 65_530u16..=65_535 {
        assert!(read(&b, &a.protect(&rtp(seq, 42, &[3; 160])).unwrap()).is_some());
    }
    for seq in 0u16..5 {
        assert!(read(&b, &a.protect(&rtp(seq, 42, &[3; 160])).unwrap()).is_some());
    }
    let (sa, sb) = (a.state(), b.state());
    assert_eq!(sa.sent, vec![(42, 0x1_0004)]);
    assert_eq!(sb.received, vec![(42, 0x1_0004)]);
    let json = serde_json::to_string(&sa).unwrap();
    let sa: SrtpState = serde_json::from_str(&json).unwrap();

    // The gateway restarts (a); the peer (b) goes on.
    let a2 = SrtpLeg::restore(&sa).unwrap();
    let next = rtp(105, 42, &[4; 160]);
    assert_eq!(read(&b, &a2.protect(&next).unwrap()), Some(next.clone()));
    // A leg made afresh with the same keys would start at ROC 0: the
    // peer cannot read it (and its keystream would repeat an old one).
    let fresh = SrtpLeg::new(sa.keys.clone()).unwrap();
    assert_eq!(
        read(&b, &fresh.protect(&rtp(106, 42, &[4; 160])).unwrap()),
        None
    );

    // The other way: b restarts and still reads a's stream past the wrap.
    let b2 = SrtpLeg::restore(&sb).unwrap();
    let later = rtp(200, 42, &[5; 160]);
    assert_eq!(read(&b2, &a2.protect(&later).unwrap()), Some(later));

    // Deep into a long call: many wraps still land exactly.
    let far = SrtpState {
        sent: vec![(7, (9 << 16) | 40_000)],
        ..sa.clone()
    };
    let a3 = SrtpLeg::restore(&far).unwrap();
    let peer = SrtpLeg::restore(&SrtpState {
        keys: LegKeys {
            local: sa.keys.remote.clone(),
            remote: sa.keys.local.clone(),
        },
        sent: vec![],
        received: vec![(7, (9 << 16) | 40_000)],
    })
    .unwrap();
    let p = rtp(40_050, 7, &[6; 160]);
    assert_eq!(read(&peer, &a3.protect(&p).unwrap()), Some(p));
}

#[test]
fn keys_never_show_in_debug_output() {
    let (a, _) = pair(Suite::AesCm128HmacSha1_80);
    let state = a.state();
    let shown = format!("{state:?}");
    assert!(!shown.contains(state.keys.local.inline()), "{shown}");
    assert!(!shown.contains(state.keys.remote.inline()), "{shown}");
}

#[test]
fn forged_packets_with_fresh_ssrcs_do_not_grow_the_peers_state() {
    let (a, b) = pair(Suite::AesCm128HmacSha1_80);
    assert!(read(&b, &a.protect(&rtp(1, 42, &[1; 160])).unwrap()).is_some());
    // A flood of forged packets, each with an SSRC of its own.
    for i in 0..1000u32 {
        let mut forged = rtp(2, 1000 + i, &[9; 170]);
        assert_eq!(read(&b, &forged.clone()), None);
        forged[1] = 200; // as SRTCP
        let mut buf = forged.clone();
        assert_eq!(b.open(&mut buf, forged.len()), None);
    }
    let (rtp_ssrcs, rtcp_ssrcs) = b.peer_ssrcs();
    assert!(rtp_ssrcs <= MAX_PEER_SSRCS, "{rtp_ssrcs}");
    assert!(rtcp_ssrcs <= MAX_PEER_SSRCS, "{rtcp_ssrcs}");
    // The real stream still reads.
    let p = rtp(3, 42, &[2; 160]);
    assert_eq!(read(&b, &a.protect(&p).unwrap()), Some(p));
}

#[test]
fn a_corrupt_saved_index_fails_the_resume_at_once() {
    let (a, _) = pair(Suite::AesCm128HmacSha1_80);
    let corrupt = SrtpState {
        sent: vec![(7, (1 << 48) - 5)],
        ..a.state()
    };
    let started = std::time::Instant::now();
    assert!(matches!(
        SrtpLeg::restore(&corrupt),
        Err(SrtpError::Index { ssrc: 7, .. })
    ));
    // A gap that pushes a sane index past the bound fails too.
    let sane = SrtpState {
        received: vec![(8, 1000)],
        ..a.state()
    };
    let gap = Gap {
        packets: MAX_RESTORED_INDEX,
        ours: None,
    };
    assert!(SrtpLeg::restore_after(&sane, gap).is_err());
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
    // The bound itself is reachable, and quickly.
    let far = SrtpState {
        sent: vec![(9, MAX_RESTORED_INDEX - 1)],
        ..a.state()
    };
    assert!(SrtpLeg::restore(&far).is_ok());
}
