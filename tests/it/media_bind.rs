//! `[media] bind_ip` (issue 11, hosts behind 1:1 NAT): sockets bind to the
//! local address, SDP carries the public one, music goes to where the
//! caller's packets come from.

use crate::media_support;

use media_support::*;
use pinless::media::{MediaEngine, MediaSettings};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

#[tokio::test]
async fn rtp_binds_to_bind_ip_while_sdp_carries_public_ip_and_music_follows_the_caller() {
    let public = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    let settings = MediaSettings {
        public_ip: public,
        bind_ip: LOOPBACK,
        ..settings((47_400, 47_419))
    };
    let engine = MediaEngine::start(music(), settings).unwrap();
    assert_eq!(engine.public_ip(), public, "SDP keeps the public address");
    let socket = engine.allocate().unwrap();
    let port = socket.port;
    assert_eq!(
        socket.socket.local_addr().unwrap(),
        SocketAddr::new(LOOPBACK, port),
        "bound to bind_ip"
    );
    // The caller's SDP names an address it does not send from (its own
    // NAT): music must follow its packets, not the SDP.
    let elsewhere = peer();
    let caller = peer();
    let media = engine
        .hold(
            socket,
            elsewhere.local_addr().unwrap(),
            MU,
            true,
            Arc::new(music()),
        )
        .unwrap();
    send(&caller, port, &rtp(0, 1, 0, 9));
    std::thread::sleep(Duration::from_millis(100));
    drain(&caller);
    let (from, h) = recv(&caller);
    assert_eq!(from, SocketAddr::new(LOOPBACK, port));
    assert_eq!(h.payload_type, 0);
    drain(&elsewhere);
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        drain(&elsewhere).is_none(),
        "nothing to the SDP address once latched"
    );
    drop(media);
}

#[test]
fn settings_from_config_bind_to_bind_ip_else_public_ip() {
    let mut config = pinless::Config::default();
    config.media.public_ip = "203.0.113.7".parse().unwrap();
    let s = MediaSettings::from_config(&config);
    assert_eq!(
        (s.public_ip, s.bind_ip),
        (config.media.public_ip, config.media.public_ip)
    );
    config.media.bind_ip = Some("10.0.0.5".parse().unwrap());
    config.media.rtp_timeout = None;
    let s = MediaSettings::from_config(&config);
    assert_eq!(s.bind_ip, "10.0.0.5".parse::<IpAddr>().unwrap());
    assert_eq!(s.public_ip, config.media.public_ip);
    assert_eq!(s.rtp_timeout, None);
}
