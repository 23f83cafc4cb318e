//! Test audio: WAV files made on the spot, recognisable packet by packet.

use std::path::{Path, PathBuf};

/// Writes 8 kHz 16-bit mono WAV of `samples`.
pub fn wav(path: &Path, samples: &[i16]) {
    let n = samples.len() as u32;
    let mut w = Vec::new();
    w.extend(b"RIFF");
    w.extend((36 + n * 2).to_le_bytes());
    w.extend(b"WAVEfmt ");
    w.extend(16u32.to_le_bytes());
    w.extend(1u16.to_le_bytes());
    w.extend(1u16.to_le_bytes());
    w.extend(8000u32.to_le_bytes());
    w.extend(16000u32.to_le_bytes());
    w.extend(2u16.to_le_bytes());
    w.extend(16u16.to_le_bytes());
    w.extend(b"data");
    w.extend((n * 2).to_le_bytes());
    for s in samples {
        w.extend(s.to_le_bytes());
    }
    std::fs::write(path, w).unwrap();
}

/// A fresh temporary directory.
pub fn temp_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pinless-{what}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Music no two 20 ms frames of which are alike: a rising tone, 4 s.
pub fn chirp(path: &Path) {
    let samples: Vec<i16> = (0..32_000)
        .map(|i| {
            let t = i as f32 / 8000.0;
            ((2.0 * std::f32::consts::PI * (200.0 + 150.0 * t) * t).sin() * 12_000.0) as i16
        })
        .collect();
    wav(path, &samples);
}

/// Every file of a prompt set, each 0.1 s of one constant sample value:
/// nothing like music, and recognisable frame by frame.
pub fn constant_prompts(dir: &Path) {
    for name in pinless::media::prompts::FILES {
        wav(&dir.join(format!("{name}.wav")), &[9_000; 800]);
    }
}

/// The G.711 law of a received packet (PCMA for payload type 8).
pub fn law(p: &super::peers::Packet) -> pinless::media::Law {
    if p.header.payload_type == 8 {
        pinless::media::Law::A
    } else {
        pinless::media::Law::Mu
    }
}

/// `packets` are one unbroken RTP stream: the same SSRC, each sequence
/// number one more and each timestamp 160 more than the last.
pub fn assert_one_stream(packets: &[super::peers::Packet]) {
    assert_one_stream_at(packets, 160);
}

/// `assert_one_stream` on a clock of `step` ticks a packet (960 for Opus).
pub fn assert_one_stream_at(packets: &[super::peers::Packet], step: u32) {
    for w in packets.windows(2) {
        assert_eq!(w[1].header.ssrc, w[0].header.ssrc);
        assert_eq!(w[1].header.sequence, w[0].header.sequence.wrapping_add(1));
        assert_eq!(
            w[1].header.timestamp,
            w[0].header.timestamp.wrapping_add(step)
        );
    }
}

/// The bundled hold music, loaded as the gateway loads it (and encoded for
/// Opus, as a node that speaks it does).
pub fn bundled_music() -> pinless::media::HoldLoop {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/hold.flac");
    let music = pinless::media::HoldLoop::load(Path::new(path)).expect("the bundled music loads");
    music.prepare_opus();
    music
}

/// `packets` carry `music`'s loop in `codec`, frame after frame, from
/// wherever the first one is in it.
pub fn assert_plays_the_loop(
    music: &pinless::media::HoldLoop,
    codec: pinless::codec::AudioCodec,
    packets: &[super::peers::Packet],
) {
    let first = (0..music.frames())
        .find(|i| music.frame(codec, *i) == &packets[0].payload[..])
        .expect("the first packet is a frame of the loop");
    for (k, p) in packets.iter().enumerate() {
        assert_eq!(&p.payload[..], music.frame(codec, first + k as u32));
    }
}

/// Which frame of `music`'s loop `p` carries, if it carries one.
pub fn music_frame(music: &pinless::media::HoldLoop, p: &super::peers::Packet) -> Option<u32> {
    (0..music.frames()).find(|i| music.frame(law(p), *i) == &p.payload[..])
}
