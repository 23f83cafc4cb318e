//! The recorder end to end on its own thread: taps fed on a real clock,
//! the file read back.

use super::*;
use crate::codec::AudioCodec;
use crate::media::g711::ulaw_encode;
use std::path::PathBuf;
use std::time::Duration;

fn temp_path(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("pinless-rec-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

fn read_channels(path: &std::path::Path) -> (Vec<i16>, Vec<i16>) {
    let bytes = std::fs::read(path).unwrap();
    let data = u32::from_le_bytes(bytes[40..44].try_into().unwrap()) as usize;
    assert_eq!(data, bytes.len() - 44, "the header counts every byte");
    bytes[44..]
        .chunks(4)
        .map(|f| {
            (
                i16::from_le_bytes([f[0], f[1]]),
                i16::from_le_bytes([f[2], f[3]]),
            )
        })
        .unzip()
}

#[tokio::test]
async fn a_recording_writes_both_channels_on_the_call_s_clock() {
    let path = temp_path("r.wav");
    let recorder = Recorder::default();
    let started = Instant::now();
    let rec = recorder.start(Spec {
        path: path.clone(),
        sample_rate: 8000,
        origin: started,
        resume_at: None,
    });
    let tap = rec.tap();
    let loud = [ulaw_encode(8000); 160];
    let quiet = [ulaw_encode(-3000); 160];
    let mut next = started;
    for i in 0..40 {
        next += Duration::from_millis(20);
        tokio::time::sleep_until(next.into()).await;
        // The caller speaks for the first 200 ms only; music all along.
        if i < 10 {
            tap.caller(AudioCodec::Pcmu, &loud);
        }
        tap.heard(AudioCodec::Pcmu, &quiet);
        if i == 20 {
            rec.pause(PauseMode::Silence);
        }
        if i == 30 {
            rec.resume();
        }
    }
    let elapsed = started.elapsed();
    let Ended::Finished(f) = rec.stop().await else {
        panic!("not finished");
    };
    let (left, right) = read_channels(&path);
    let want = elapsed.as_millis() as i64;
    assert!(
        (f.duration_ms as i64 - want).abs() <= 40,
        "{} ms recorded of {want}",
        f.duration_ms
    );
    assert_eq!(left.len() as u64 / 8, f.duration_ms);
    let loud_samples = left.iter().filter(|s| **s > 7000).count();
    assert_eq!(loud_samples, 1600, "the caller's 10 packets, nothing else");
    let heard = right.iter().filter(|s| **s < -2500).count();
    // 40 packets less the 10 sent while paused.
    assert_eq!(heard, 30 * 160);
    assert_eq!((f.sample_rate, f.channels, f.lost_packets), (8000, 2, 0));
    assert_eq!(f.bytes, std::fs::metadata(&path).unwrap().len());
    assert_eq!(f.sha256.len(), 64);
    recorder.close();
}

#[tokio::test]
async fn a_detached_recording_goes_on_in_the_same_file_with_the_downtime_silent() {
    let path = temp_path("d.wav");
    let recorder = Recorder::default();
    let t0 = Instant::now();
    let rec = recorder.start(Spec {
        path: path.clone(),
        sample_rate: 16000,
        origin: t0,
        resume_at: None,
    });
    let tap = rec.tap();
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        tap.caller(AudioCodec::Pcmu, &[ulaw_encode(8000); 160]);
    }
    assert_eq!(rec.detach().await, Ended::Detached);
    let (before, _) = read_channels(&path);
    // A second of downtime: the clock reads what it would have.
    let down_ms = t0.elapsed().as_millis() as u64 + 1000;
    let rec = recorder.start(Spec {
        path: path.clone(),
        sample_rate: 16000,
        origin: Instant::now(),
        resume_at: Some(down_ms),
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let Ended::Finished(f) = rec.stop().await else {
        panic!("not finished");
    };
    let (after, _) = read_channels(&path);
    assert_eq!(
        &after[..before.len()],
        &before[..],
        "the first run's audio kept"
    );
    assert!(
        f.duration_ms >= down_ms + 60 && f.duration_ms <= down_ms + 200,
        "{} ms for {down_ms} ms and 100 more",
        f.duration_ms
    );
    recorder.close();
}

#[tokio::test]
async fn a_file_that_cannot_be_made_ends_the_recording_as_failed() {
    let recorder = Recorder::default();
    let rec = recorder.start(Spec {
        path: PathBuf::from("/nonexistent-dir-of-pinless/x.wav"),
        sample_rate: 8000,
        origin: Instant::now(),
        resume_at: None,
    });
    let Ended::Failed(error) = rec.stop().await else {
        panic!("not failed");
    };
    assert!(error.contains("x.wav"), "{error}");
    recorder.close();
}
