//! One-shot prompts: clips played once, back to back, to a held caller in
//! place of the music and on the same RTP stream (see `pacer`). The clips
//! are `HoldLoop`s (decoded, 8 kHz, pre-encoded 20 ms frames) played from
//! their first frame to their last instead of looped, so a prompt built
//! from several files ("you are caller number" + "three") costs no copy
//! of audio: only a list of shared clips.

use super::hold::HoldLoop;
use crate::codec::LegCodec;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// Clips to play once each, in order.
#[derive(Debug, Clone, Default)]
pub struct Prompt {
    clips: Arc<[Arc<HoldLoop>]>,
}

impl Prompt {
    /// A prompt of these clips, in order.
    pub fn new(clips: Vec<Arc<HoldLoop>>) -> Prompt {
        Prompt {
            clips: clips.into(),
        }
    }

    /// The clips, in the order they play.
    pub fn clips(&self) -> &[Arc<HoldLoop>] {
        &self.clips
    }

    /// How many 20 ms frames the whole prompt lasts.
    pub fn frames(&self) -> u64 {
        self.clips.iter().map(|c| u64::from(c.frames())).sum()
    }

    /// How long it plays.
    pub fn duration(&self) -> Duration {
        Duration::from_millis(self.frames() * 20)
    }

    pub fn is_empty(&self) -> bool {
        self.frames() == 0
    }
}

/// A prompt being played by the pacer: where it stands, and who hears
/// when it is over. Dropped before its end (the stream left the pacer:
/// bridged, or the call ended), its `done` sender goes with it, which
/// tells the receiver it was cut short.
pub(super) struct Playing {
    prompt: Prompt,
    clip: usize,
    frame: u32,
    done: Option<oneshot::Sender<()>>,
}

impl Playing {
    /// Starts at the first frame; None (and `done` told at once, as
    /// played) for a prompt without a frame.
    pub fn start(prompt: Prompt, done: oneshot::Sender<()>) -> Option<Playing> {
        let mut p = Playing {
            prompt,
            clip: 0,
            frame: 0,
            done: Some(done),
        };
        p.skip_empty();
        if p.clip >= p.prompt.clips.len() {
            p.finish();
            return None;
        }
        Some(p)
    }

    /// The frame to send now, as leg `leg` is sent it (160 bytes, or one
    /// Opus packet: see `HoldLoop::frame_for`).
    pub fn frame(&self, leg: LegCodec) -> &[u8] {
        self.prompt.clips[self.clip].frame_for(leg, self.frame)
    }

    /// Moves past the frame just sent; true when the prompt is over (its
    /// `done` has then been told).
    pub fn advance(&mut self) -> bool {
        self.frame += 1;
        if self.frame >= self.prompt.clips[self.clip].frames() {
            self.clip += 1;
            self.frame = 0;
            self.skip_empty();
        }
        if self.clip >= self.prompt.clips.len() {
            self.finish();
            return true;
        }
        false
    }

    fn skip_empty(&mut self) {
        while self
            .prompt
            .clips
            .get(self.clip)
            .is_some_and(|c| c.frames() == 0)
        {
            self.clip += 1;
        }
    }

    fn finish(&mut self) {
        if let Some(done) = self.done.take() {
            let _ = done.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{AudioCodec, Law};

    /// A clip of `frames` frames of a constant sample value.
    fn clip(value: f32, frames: usize) -> Arc<HoldLoop> {
        Arc::new(HoldLoop::from_samples(&vec![value; frames * 160], 8000))
    }

    #[test]
    fn clips_play_once_each_in_order_then_report() {
        let a = clip(0.5, 2);
        let b = clip(-0.5, 3);
        let prompt = Prompt::new(vec![a.clone(), b.clone()]);
        assert_eq!(prompt.frames(), 5);
        assert_eq!(prompt.duration(), Duration::from_millis(100));
        let (tx, mut rx) = oneshot::channel();
        let mut p = Playing::start(prompt, tx).expect("frames to play");
        let mut heard = Vec::new();
        loop {
            heard.push(p.frame(LegCodec::new(AudioCodec::Pcmu, 0, None)).to_vec());
            assert!(rx.try_recv().is_err(), "not over before its last frame");
            if p.advance() {
                break;
            }
        }
        assert_eq!(heard.len(), 5);
        assert!(heard[..2].iter().all(|f| f == a.frame(Law::Mu, 0)));
        assert!(heard[2..].iter().all(|f| f == b.frame(Law::Mu, 0)));
        assert_ne!(heard[0], heard[4]);
        assert_eq!(rx.try_recv(), Ok(()));
    }

    #[test]
    fn an_empty_prompt_is_over_at_once_and_a_dropped_one_is_cut_short() {
        let (tx, mut rx) = oneshot::channel();
        assert!(Playing::start(Prompt::default(), tx).is_none());
        assert_eq!(rx.try_recv(), Ok(()));
        let (tx, mut rx) = oneshot::channel();
        let p = Playing::start(Prompt::new(vec![clip(0.5, 1)]), tx);
        drop(p);
        assert!(matches!(
            rx.try_recv(),
            Err(oneshot::error::TryRecvError::Closed)
        ));
    }
}
