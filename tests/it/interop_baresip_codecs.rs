//! Interop with baresip's wideband codec modules (Debian `baresip-core`):
//! `g722` (SpanDSP's G.722, written by others) and `opus` (libopus through
//! baresip's own RTP payloading). baresip calls offering one codec only,
//! and the hold music it decodes (dumped to a WAV file by its `sndfile`
//! module) is the gateway's music; with Opus it then talks to an Opus
//! room both ways. Run with `cargo test --features interop`; fails, never
//! skips, when baresip is missing.

use crate::support;

use pinless::codec::{AudioCodec, LegCodec};
use pinless::media::g722::G722Decoder;
use pinless::sip::sdp;
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::baresip::Baresip;
use support::*;

/// A headless baresip with one codec module (`g722`, `opus`) as its only
/// codec, sending a 440 Hz tone and dumping the audio it decodes to `dir`
/// (module `sndfile`).
fn dial(target: &str, codec: &str) -> Baresip {
    let dir = Baresip::dir();
    let config = format!(
        "poll_method epoll\n\
             sip_listen 127.0.0.1:{port}\n\
             net_interface 127.0.0.1\n\
             audio_source ausine,440\n\
             ausrc_srate 48000\n\
             ausrc_channels 2\n\
             module_path /usr/lib/baresip/modules\n\
             module {codec}.so\n\
             opus_stereo no\n\
             opus_sprop_stereo no\n\
             module ausine.so\n\
             module sndfile.so\n\
             module account.so\n\
             module_app menu.so\n\
             snd_path {dir}\n",
        port = free_udp_and_tcp_port(),
        dir = dir.display(),
    );
    std::fs::write(dir.join("config"), config).unwrap();
    std::fs::write(dir.join("accounts"), "<sip:caller@127.0.0.1>;regint=0\n").unwrap();
    Baresip::dial(dir, target, 30)
}

/// The WAV file of decoded (received) audio, once it is there.
fn decoded_dump(caller: &Baresip) -> Option<PathBuf> {
    std::fs::read_dir(&caller.dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.to_string_lossy().ends_with("-dec.wav"))
}

/// The rate and the 16-bit samples of a WAV file's first channel, read up
/// to its end (the data size in the header is not trusted: the file may
/// not have been closed).
fn read_wav(path: &Path) -> (u32, Vec<i16>) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..4], b"RIFF", "{}", path.display());
    let mut at = 12;
    let (mut rate, mut channels) = (0, 1);
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let size = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        if id == b"fmt " {
            channels = usize::from(u16::from_le_bytes([bytes[at + 10], bytes[at + 11]]));
            rate = u32::from_le_bytes(bytes[at + 12..at + 16].try_into().unwrap());
        }
        if id == b"data" {
            let samples = bytes[at + 8..]
                .chunks_exact(2 * channels)
                .map(|b| i16::from_le_bytes([b[0], b[1]]))
                .collect();
            return (rate, samples);
        }
        at += 8 + size;
    }
    panic!("no data in {}", path.display());
}

/// Normalised cross-correlation of `a` with `b` at its best offset within
/// `b` (`b` the longer).
fn best_match(a: &[i16], b: &[i16]) -> f64 {
    let energy = |x: &[i16]| x.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>();
    let ea = energy(a);
    (0..=b.len() - a.len())
        .map(|off| {
            let w = &b[off..off + a.len()];
            let dot: f64 = a
                .iter()
                .zip(w)
                .map(|(x, y)| f64::from(*x) * f64::from(*y))
                .sum();
            dot / (ea * energy(w)).sqrt().max(1.0)
        })
        .fold(f64::MIN, f64::max)
}

#[tokio::test]
async fn a_baresip_caller_offering_only_g722_hears_the_music() {
    let mut hooks = WebhookReceiver::start(&[]).await;
    let gw = TestGateway::start(&hooks.url(), "").await;
    let caller = dial(&gw.sip_uri("support", false), "g722");
    let call_id = hooks.next().await.json()["callId"]
        .as_str()
        .unwrap()
        .to_string();
    // Three seconds of music, then the gateway hangs up (baresip then
    // closes its dump).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (status, _) = gw
        .api(
            reqwest::Method::DELETE,
            &format!("/v1/calls/{call_id}"),
            None,
        )
        .await;
    assert!(
        (200..300).contains(&status),
        "hang-up answered {status}: {:#}; baresip log:\n{}",
        gw.get_call(&call_id).await.1,
        caller.log()
    );
    gw.wait_call(&call_id, Duration::from_secs(5), |c| c["state"] == "ended")
        .await;
    let dump = dump_of(&caller).await;
    let log = caller.log();
    assert!(log.contains("G722"), "baresip negotiated G.722:\n{log}");
    let (rate, heard) = read_wav(&dump);
    assert_eq!(rate, 16000, "G.722 is decoded at 16 kHz");
    assert!(
        heard.len() > 16000 * 2,
        "{} samples; baresip log:\n{log}",
        heard.len()
    );
    let rms =
        (heard.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / heard.len() as f64).sqrt();
    assert!(rms > 500.0, "not silence: rms {rms:.0}");

    // What baresip decoded is our music: a quarter second of it, from the
    // middle of the call, matches the music's own G.722 decoded here.
    let music = support::audio::bundled_music();
    // The stream starts at the loop's first frame: the piece lies within
    // the first three seconds of the loop.
    let mut decoder = G722Decoder::new();
    let ours: Vec<i16> = (0..150)
        .flat_map(|i| decoder.decode(music.frame(AudioCodec::G722, i)))
        .collect();
    let piece = &heard[16000..20000];
    let similarity = best_match(piece, &ours);
    eprintln!("baresip heard rms {rms:.0}, correlation with the music {similarity:.3}");
    assert!(
        similarity > 0.9,
        "correlation with the music {similarity:.3}"
    );
}

/// Waits for baresip's dump of what it decoded to be written and closed
/// (after the call ended).
async fn dump_of(caller: &Baresip) -> PathBuf {
    within(5, "baresip's dump of the decoded audio", async {
        loop {
            if let Some(p) = decoded_dump(caller) {
                tokio::time::sleep(Duration::from_millis(300)).await;
                return p;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
}

#[tokio::test]
async fn a_baresip_caller_offering_only_opus_hears_the_music_and_talks_to_an_opus_room() {
    use support::signal::{opus_peer_decoder, opus_peer_encoded, power, rms, send_payloads, tone};
    let mut hooks = WebhookReceiver::start(&[]).await;
    let gw = TestGateway::start_with_env(
        &hooks.url(),
        "",
        &[("PINLESS_MEDIA__CODECS", r#"["opus", "PCMU"]"#)],
    )
    .await;
    let caller = dial(&gw.sip_uri("support", false), "opus");
    let call_id = hooks.next().await.json()["callId"]
        .as_str()
        .unwrap()
        .to_string();
    // Three seconds of music, then to an Opus room.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut room = Room::new().await;
    let (status, _) = gw
        .update(gw.update_body(
            &call_id,
            serde_json::json!({"sipUri": room.uri("room", false)}),
        ))
        .await;
    assert_eq!(status, 200);
    let invite = room.next_invite().await;
    let offer = sdp::parse(&invite.info.sdp).unwrap();
    assert_eq!(
        offer.codecs[0].1,
        AudioCodec::Opus,
        "the caller's codec first"
    );
    let opus_pt = offer.codecs[0].0;
    let mine = LegCodec::new(AudioCodec::Opus, opus_pt, offer.wide_event_payload_type);
    let _room_leg = room.answer_as(invite, mine).await;
    gw.wait_call(&call_id, Duration::from_secs(5), |c| {
        c["state"] == "bridged"
    })
    .await;

    // The room sends a 1 kHz tone in Opus for two seconds, and hears
    // baresip's 440 Hz tone, relayed Opus to Opus.
    room.rtp.drain();
    let spoken = opus_peer_encoded(&tone(1000.0, 48000.0, 2.0));
    let speaking = send_payloads(&room.rtp, offer.addr, opus_pt, 960, spoken);
    let got = room.rtp.collect(Duration::from_millis(1500)).await;
    let mut decode = opus_peer_decoder();
    let heard_by_room: Vec<i16> = (got.iter())
        .filter(|p| p.header.payload_type == opus_pt)
        .flat_map(|p| decode(&p.payload))
        .collect();
    assert!(
        heard_by_room.len() > 48_000,
        "{} samples at the room; baresip log:\n{}",
        heard_by_room.len(),
        caller.log()
    );
    let settled = &heard_by_room[9600..];
    assert!(
        power(settled, 48000.0, 440.0) > 100.0 * power(settled, 48000.0, 1000.0),
        "the room hears baresip's 440 Hz"
    );
    speaking.await.unwrap();

    let (status, _) = gw
        .api(
            reqwest::Method::DELETE,
            &format!("/v1/calls/{call_id}"),
            None,
        )
        .await;
    assert!((200..300).contains(&status), "hang-up answered {status}");
    let dump = dump_of(&caller).await;
    let log = caller.log();
    assert!(
        log.to_lowercase().contains("opus"),
        "baresip negotiated Opus:\n{log}"
    );
    let (rate, heard) = read_wav(&dump);
    assert_eq!(rate, 48000, "Opus is decoded at 48 kHz");
    assert!(
        heard.len() > 48000 * 4,
        "{} samples; baresip log:\n{log}",
        heard.len()
    );

    // What baresip decoded first is our music: a quarter second of it
    // (taken at 16 kHz: our Opus is wideband) matches the music's Opus
    // loop decoded here.
    let music = support::audio::bundled_music();
    let mut decoder = opus::Decoder::new(16_000, opus::Channels::Mono).expect("libopus decoder");
    let ours: Vec<i16> = (0..150)
        .flat_map(|i| {
            let mut out = vec![0i16; 1920];
            let n = decoder
                .decode(music.frame(AudioCodec::Opus, i), &mut out, false)
                .unwrap();
            out.truncate(n);
            out
        })
        .collect();
    let piece: Vec<i16> = heard[48000..60000].iter().step_by(3).copied().collect();
    let similarity = best_match(&piece, &ours);
    eprintln!("baresip heard the music with correlation {similarity:.3}");
    assert!(
        similarity > 0.9,
        "correlation with the music {similarity:.3}"
    );
    // And then the room: a second or more of quarter-second windows in
    // which the room's 1 kHz stands clear of baresip's own 440 Hz.
    let room_windows = heard[48000 * 3..]
        .chunks_exact(12000)
        .filter(|w| rms(w) > 1000.0 && power(w, 48000.0, 1000.0) > 100.0 * power(w, 48000.0, 440.0))
        .count();
    assert!(
        room_windows >= 4,
        "{room_windows} windows of the room's tone"
    );
}
