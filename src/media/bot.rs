//! A voice bot's audio, both ways, as the media side sees it.
//!
//! `BotQueue`: what the bot sends (μ-law, any chunk size, often faster
//! than real time) waits here; the shard's pacer takes one 20 ms frame
//! per period for the caller's stream, and a silence frame when the queue
//! is empty, so the caller's RTP never has a gap. A small playout buffer
//! keeps a late chunk from cutting speech: once the queue ran dry (or
//! held less than a frame while the bot was still sending), play resumes
//! only when `PLAYOUT` is queued, or when the bot has gone quiet for a
//! tick (the end of what it says is played at once). The bot's marks sit at
//! their place in the audio and are reported once the pacer has sent the
//! frame holding the last byte before them; `clear` drops what is left
//! and reports the marks still pending (as Twilio does).
//!
//! `Uplink`: the caller's RTP audio cut into 160-byte μ-law chunks (PCMA
//! and G.722 callers transcoded) for the stream's `media` messages. The bot
//! gets 50 chunks a second even from a caller that sends nothing (VAD,
//! comfort noise): the pacer's tick (`BotQueue::caller_tick`) sends a
//! silence chunk once the caller is more than `CALLER_LATE` chunks behind
//! that clock, so a bot's own VAD sees the end of speech.

use super::hold::HoldLoop;
use super::rtp::{self, SAMPLES_PER_PACKET};
use super::transcode::Transcoder;
use crate::codec::{AudioCodec, LegCodec};
use std::collections::VecDeque;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use tokio::sync::mpsc;

const FRAME: usize = SAMPLES_PER_PACKET as usize;
/// μ-law silence (a zero sample).
const MULAW_SILENCE: u8 = 0xFF;
/// Most bot audio kept waiting: 60 s (480 kB). A bot that sends more
/// ahead of time loses the oldest, rather than the node its memory.
const MAX_QUEUED: usize = 8000 * 60;
/// Room kept by a queue that ran empty or was cleared (1 s): a bot that
/// once sent a minute ahead does not hold its 480 kB for the whole call.
const KEPT_CAPACITY: usize = 8000;
/// Marks waiting at most; a bot placing more loses the newest (never
/// reported), rather than the node its memory.
const MAX_MARKS: usize = 1024;
/// Longest mark name kept (bytes); a longer mark is ignored.
const MAX_MARK_NAME: usize = 256;
/// Bot audio queued before play resumes after the queue ran dry (40 ms).
const PLAYOUT: usize = 2 * FRAME;
/// Caller chunks the pacer's clock waits for before it sends silence in
/// their place (40 ms: network jitter is not a pause).
const CALLER_LATE: i32 = 2;
/// Caller chunks counted ahead of the clock at most (a burst after a
/// delay must not silence the clock for long).
const CALLER_AHEAD: i32 = 5;

/// One frame of silence, looped: the pacer's source for a stream whose
/// frames come from a `BotQueue` (it is never played while one is set).
pub fn silence() -> Arc<HoldLoop> {
    static SILENCE: LazyLock<Arc<HoldLoop>> =
        LazyLock::new(|| Arc::new(HoldLoop::from_samples(&[0.0; FRAME], 8000)));
    SILENCE.clone()
}

struct Queue {
    audio: VecDeque<u8>,
    /// Bytes taken by the pacer (or cleared) since the start.
    taken: u64,
    /// Marks, each at the count of bytes queued before it.
    marks: VecDeque<(u64, String)>,
    played: mpsc::UnboundedSender<String>,
    /// The queue ran dry: wait for `PLAYOUT` (or a quiet bot) to play.
    buffering: bool,
    /// The bot sent audio since the pacer's last frame.
    pushed: bool,
    /// Where the caller's chunks go (set once the caller is with the bot).
    to_bot: Option<mpsc::Sender<Vec<u8>>>,
    /// Pacer ticks minus caller chunks sent: how far behind the caller is.
    owed: i32,
}

impl Queue {
    fn queued(&self) -> u64 {
        self.taken + self.audio.len() as u64
    }

    /// A queue with nothing to play gives back what it grew to.
    fn shrink_if_empty(&mut self) {
        if self.audio.is_empty() && self.audio.capacity() > KEPT_CAPACITY {
            self.audio.shrink_to(KEPT_CAPACITY);
        }
    }

    /// Reports every mark whose audio is gone.
    fn release(&mut self) {
        while self.marks.front().is_some_and(|(at, _)| *at <= self.taken) {
            if let Some((_, name)) = self.marks.pop_front() {
                let _ = self.played.send(name);
            }
        }
    }
}

/// The bot's audio waiting for the caller. Cheap to clone; shared by the
/// stream's task (which fills it) and the shard's pacer (which plays it).
#[derive(Clone)]
pub struct BotQueue(Arc<Shared>);

struct Shared {
    queue: Mutex<Queue>,
    /// μ-law to the caller's codec (stateful for G.722). Apart from the
    /// queue, and used only by the pacer: the conversion (tens of µs for
    /// G.722) runs without holding up the stream's task filling the queue.
    to_caller: Mutex<Transcoder>,
}

impl std::fmt::Debug for BotQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BotQueue")
    }
}

impl BotQueue {
    /// An empty queue, and where the names of played marks arrive.
    pub fn new() -> (BotQueue, mpsc::UnboundedReceiver<String>) {
        let (played, rx) = mpsc::unbounded_channel();
        let queue = Queue {
            audio: VecDeque::new(),
            taken: 0,
            marks: VecDeque::new(),
            played,
            to_bot: None,
            owed: 0,
            buffering: false,
            pushed: false,
        };
        let shared = Shared {
            queue: Mutex::new(queue),
            to_caller: Mutex::new(Transcoder::new()),
        };
        (BotQueue(Arc::new(shared)), rx)
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A panic while holding the lock leaves plain bytes behind: usable.
        self.0.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues μ-law audio after what is waiting.
    pub fn push(&self, mulaw: &[u8]) {
        let mut q = self.lock();
        q.audio.extend(mulaw);
        q.pushed |= !mulaw.is_empty();
        let over = q.audio.len().saturating_sub(MAX_QUEUED);
        if over > 0 {
            q.audio.drain(..over);
            q.taken += over as u64;
            q.release();
        }
    }

    /// Places a mark after the audio queued so far.
    pub fn mark(&self, name: String) {
        let mut q = self.lock();
        if name.len() > MAX_MARK_NAME || q.marks.len() >= MAX_MARKS {
            tracing::debug!(len = name.len(), "bot mark ignored (too long, or too many)");
            return;
        }
        let at = q.queued();
        q.marks.push_back((at, name));
        // Nothing before it still to play: it is played now.
        q.release();
    }

    /// Drops the audio not played yet; pending marks are reported now.
    pub fn clear(&self) {
        let mut q = self.lock();
        let dropped = q.audio.len() as u64;
        q.audio.clear();
        q.shrink_if_empty();
        q.taken += dropped;
        q.release();
    }

    /// Where the caller's 20 ms μ-law chunks are to go.
    pub(super) fn connect_caller(&self, to_bot: mpsc::Sender<Vec<u8>>) {
        let mut q = self.lock();
        q.to_bot = Some(to_bot);
        q.owed = 0;
    }

    /// One chunk of the caller's audio for the bot.
    fn caller_chunk(&self, chunk: Vec<u8>) {
        let mut q = self.lock();
        q.owed = (q.owed - 1).max(-CALLER_AHEAD);
        if let Some(to_bot) = &q.to_bot {
            // A bot that does not keep up loses audio, as a network would;
            // the caller's relay never waits for it.
            let _ = to_bot.try_send(chunk);
        }
    }

    /// The pacer's 20 ms: a caller that sent nothing for a while (VAD,
    /// comfort noise, loss) is silence to the bot, not a pause.
    pub(super) fn caller_tick(&self) {
        let mut q = self.lock();
        q.owed += 1;
        if q.owed > CALLER_LATE {
            q.owed -= 1;
            if let Some(to_bot) = &q.to_bot {
                let _ = to_bot.try_send(vec![MULAW_SILENCE; FRAME]);
            }
        }
    }

    /// The next 20 ms for the caller in its `codec`, in `out` (emptied
    /// first): queued audio, padded with silence when the bot has sent
    /// less.
    pub(super) fn frame(&self, codec: AudioCodec, out: &mut Vec<u8>) {
        let mut mulaw = [MULAW_SILENCE; FRAME];
        let mut q = self.lock();
        let len = q.audio.len();
        // A bot still sending is waited for (one tick at a time, silence
        // meanwhile) rather than its speech cut by padding; a quiet one
        // gets what it sent played out.
        let quiet = !std::mem::take(&mut q.pushed);
        let play = if q.buffering {
            len >= PLAYOUT || quiet
        } else {
            len >= FRAME || quiet
        };
        let n = if play { len.min(FRAME) } else { 0 };
        q.buffering = !play || n == len;
        for (slot, byte) in mulaw.iter_mut().zip(q.audio.drain(..n)) {
            *slot = byte;
        }
        q.shrink_if_empty();
        q.taken += n as u64;
        q.release();
        drop(q);
        // A panic while converting leaves filter state behind: usable.
        let mut to_caller = self.0.to_caller.lock().unwrap_or_else(|e| e.into_inner());
        out.clear();
        if !to_caller.convert_to(&mulaw, AudioCodec::Pcmu, codec, out) && codec == AudioCodec::Opus
        {
            // No Opus encoder could be made: silence, never a gap.
            out.extend_from_slice(&super::opus::SILENCE);
        }
    }
}

/// The bot's uplink: the caller's audio on its way to the bot.
pub(super) struct Uplink {
    queue: BotQueue,
    /// μ-law bytes not yet making a whole chunk (a caller with another
    /// packet time than 20 ms).
    pending: Vec<u8>,
    /// The caller's codec to μ-law (stateful for G.722).
    to_mulaw: Transcoder,
}

impl Uplink {
    pub fn new(queue: BotQueue, to_bot: mpsc::Sender<Vec<u8>>) -> Uplink {
        queue.connect_caller(to_bot);
        Uplink {
            queue,
            pending: Vec::with_capacity(FRAME * 2),
            to_mulaw: Transcoder::new(),
        }
    }

    /// One RTP packet from the caller; audio in the caller's law becomes
    /// μ-law chunks. Telephone-events and other types (comfort noise, 13)
    /// are not audio: the pacer's clock sends silence for them.
    pub fn packet(&mut self, packet: &[u8], codec: LegCodec) {
        let Some((header, range)) = rtp::parse(packet) else {
            return;
        };
        let audio = if header.payload_type == codec.payload_type {
            codec.audio
        } else if Some(header.payload_type) == codec.event_payload_type {
            return;
        } else if let Some(audio) = AudioCodec::from_payload_type(header.payload_type) {
            audio
        } else {
            return;
        };
        let (sequence, timestamp) = (header.sequence, header.timestamp);
        let payload = &packet[range];
        (self.to_mulaw).convert_packet(
            sequence,
            timestamp,
            payload,
            audio,
            AudioCodec::Pcmu,
            &mut self.pending,
        );
        while self.pending.len() >= FRAME {
            let chunk: Vec<u8> = self.pending.drain(..FRAME).collect();
            self.queue.caller_chunk(chunk);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::g711::{Law, transcode};

    #[test]
    fn frames_come_from_the_queue_then_silence_and_marks_follow_their_audio() {
        let (q, mut played) = BotQueue::new();
        q.push(&[1; 100]);
        q.mark("a".into());
        q.push(&[2; 200]);
        q.mark("b".into());
        let mut f = Vec::new();
        q.frame(AudioCodec::Pcmu, &mut f);
        assert_eq!(&f[..100], &[1; 100][..]);
        assert_eq!(&f[100..], &[2; 60][..]);
        assert_eq!(played.try_recv().unwrap(), "a");
        assert!(played.try_recv().is_err(), "b's audio is not all out");
        q.frame(AudioCodec::Pcmu, &mut f);
        assert_eq!(&f[..140], &[2; 140][..]);
        assert!(f[140..].iter().all(|b| *b == MULAW_SILENCE));
        assert_eq!(played.try_recv().unwrap(), "b");
        q.frame(AudioCodec::Pcmu, &mut f);
        assert!(f.iter().all(|b| *b == MULAW_SILENCE), "silence, not a gap");
        q.mark("now".into());
        assert_eq!(played.try_recv().unwrap(), "now", "nothing before it");
    }

    #[test]
    fn after_running_dry_play_waits_for_40_ms_or_a_quiet_bot() {
        let (q, _) = BotQueue::new();
        let mut f = Vec::new();
        q.frame(AudioCodec::Pcmu, &mut f);
        // Real-time 20 ms chunks after a pause: the first waits a tick
        // for the second, then they play back to back, no silence between.
        q.push(&[1; FRAME]);
        q.frame(AudioCodec::Pcmu, &mut f);
        assert!(f.iter().all(|b| *b == MULAW_SILENCE), "buffering");
        let mut heard = Vec::new();
        for byte in 2..=6 {
            q.push(&[byte; FRAME]);
            q.frame(AudioCodec::Pcmu, &mut f);
            heard.push(f[0]);
        }
        assert_eq!(heard, [1, 2, 3, 4, 5]);
        // Half a frame while the bot still sends: held back, not padded.
        q.push(&[7; 80]);
        q.frame(AudioCodec::Pcmu, &mut f);
        assert_eq!(f[0], 6);
        q.push(&[7; 40]);
        q.frame(AudioCodec::Pcmu, &mut f);
        assert!(f.iter().all(|b| *b == MULAW_SILENCE), "held back");
        // The bot goes quiet: what it sent is played, padded.
        q.frame(AudioCodec::Pcmu, &mut f);
        assert!(
            f[..120].iter().all(|b| *b == 7),
            "played once the bot is quiet"
        );
        assert!(f[120..].iter().all(|b| *b == MULAW_SILENCE));
        q.push(&[8; 100]);
        q.frame(AudioCodec::Pcmu, &mut f);
        q.frame(AudioCodec::Pcmu, &mut f);
        assert_eq!(&f[..100], &[8; 100][..]);
        assert!(f[100..].iter().all(|b| *b == MULAW_SILENCE));
    }

    #[test]
    fn clear_drops_the_queue_and_reports_pending_marks() {
        let (q, mut played) = BotQueue::new();
        q.push(&[5; 1600]);
        q.mark("end".into());
        q.clear();
        assert_eq!(played.try_recv().unwrap(), "end");
        let mut f = Vec::new();
        q.frame(AudioCodec::Pcma, &mut f);
        assert!(f.iter().all(|b| *b == Law::A.encode(0)), "A-law silence");
    }

    #[test]
    fn the_queue_and_its_marks_are_bounded_and_give_memory_back() {
        let (q, mut played) = BotQueue::new();
        // Two minutes ahead: the oldest minute is dropped.
        for _ in 0..120 {
            q.push(&[7; 8000]);
        }
        assert_eq!(q.lock().audio.len(), MAX_QUEUED);
        q.clear();
        assert!(q.lock().audio.capacity() <= 2 * KEPT_CAPACITY);
        // Too long a name, and marks beyond the cap, are not kept.
        q.push(&[1; 10]);
        q.mark("x".repeat(MAX_MARK_NAME + 1));
        for i in 0..MAX_MARKS + 10 {
            q.mark(i.to_string());
        }
        assert_eq!(q.lock().marks.len(), MAX_MARKS);
        let mut f = Vec::new();
        // Less than a frame: played once the bot is quiet (a tick later).
        q.frame(AudioCodec::Pcmu, &mut f);
        q.frame(AudioCodec::Pcmu, &mut f);
        let names: Vec<String> = std::iter::from_fn(|| played.try_recv().ok()).collect();
        assert_eq!(names.len(), MAX_MARKS);
        assert_eq!(names[0], "0");
        // Emptied by playing, the queue shrinks too.
        q.push(&vec![3; 8000 * 30]);
        for _ in 0..8000 * 30 / FRAME {
            q.frame(AudioCodec::Pcmu, &mut f);
        }
        assert!(q.lock().audio.capacity() <= 2 * KEPT_CAPACITY);
    }

    #[test]
    fn the_pacer_s_clock_sends_silence_for_a_caller_that_sends_nothing() {
        let (tx, mut rx) = mpsc::channel(100);
        let (q, _) = BotQueue::new();
        let mut uplink = Uplink::new(q.clone(), tx);
        let packet = |pt: u8| {
            let mut head = [0u8; rtp::HEADER_LEN];
            rtp::Header {
                marker: false,
                payload_type: pt,
                sequence: 1,
                timestamp: 2,
                ssrc: 3,
            }
            .write(&mut head);
            [&head[..], &[0x22; FRAME][..]].concat()
        };
        let mu = LegCodec::new(AudioCodec::Pcmu, 0, Some(101));
        let mut chunks = || std::iter::from_fn(|| rx.try_recv().ok()).collect::<Vec<_>>();
        // Talking, one packet a tick (jitter of a tick or two is waited
        // for): the caller's audio only.
        for i in 0..50 {
            if i % 10 == 0 {
                q.caller_tick();
                q.caller_tick();
            } else {
                q.caller_tick();
                uplink.packet(&packet(0), mu);
            }
            if i % 10 == 0 {
                uplink.packet(&packet(0), mu);
                uplink.packet(&packet(0), mu);
            }
        }
        let talk = chunks();
        assert!(
            talk.iter().all(|c| c[0] == 0x22),
            "no silence while talking"
        );
        // Comfort noise (13), then nothing: silence at the clock's pace
        // once the caller is 40 ms late.
        for _ in 0..50 {
            uplink.packet(&packet(13), mu);
            q.caller_tick();
        }
        let quiet = chunks();
        assert!(quiet.len() >= 45, "{} chunks in 1 s", quiet.len());
        assert!(quiet.iter().all(|c| c[..] == [MULAW_SILENCE; FRAME]));
    }

    #[test]
    fn caller_audio_becomes_mulaw_chunks() {
        let (tx, mut rx) = mpsc::channel(8);
        let (q, _) = BotQueue::new();
        let mut uplink = Uplink::new(q, tx);
        let a = LegCodec::new(AudioCodec::Pcma, 8, Some(101));
        let packet = |pt: u8, payload: &[u8]| {
            let mut head = [0u8; rtp::HEADER_LEN];
            rtp::Header {
                marker: false,
                payload_type: pt,
                sequence: 1,
                timestamp: 2,
                ssrc: 3,
            }
            .write(&mut head);
            [&head[..], payload].concat()
        };
        uplink.packet(&packet(101, &[1, 0x80, 0, 160]), a);
        uplink.packet(&packet(8, &[Law::A.encode(1000); 80]), a);
        assert!(rx.try_recv().is_err(), "half a chunk");
        uplink.packet(&packet(8, &[Law::A.encode(1000); 80]), a);
        let chunk = rx.try_recv().unwrap();
        assert_eq!(chunk.len(), FRAME);
        let mut expected = [Law::A.encode(1000); FRAME];
        transcode(&mut expected, Law::A, Law::Mu);
        assert_eq!(chunk, expected);
    }
}
