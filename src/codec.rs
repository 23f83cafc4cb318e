//! The small codec types that SIP (SDP offers and answers) and media (the
//! hold music and the relay) both speak, and the DTMF key press both
//! report (SIP INFO, RFC 4733 telephone-events). They live in this leaf so that
//! `sip` and `media`, siblings in the layer order, need not import each
//! other; the G.711 arithmetic itself stays in `media::g711`, G.722 in
//! `media::g722`.

/// Which G.711 law a stream uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Law {
    /// PCMU, static payload type 0.
    Mu,
    /// PCMA, static payload type 8.
    A,
}

impl Law {
    pub fn payload_type(self) -> u8 {
        match self {
            Law::Mu => 0,
            Law::A => 8,
        }
    }

    pub fn from_payload_type(pt: u8) -> Option<Law> {
        match pt {
            0 => Some(Law::Mu),
            8 => Some(Law::A),
            _ => None,
        }
    }

    pub fn encoding_name(self) -> &'static str {
        match self {
            Law::Mu => "PCMU",
            Law::A => "PCMA",
        }
    }
}

/// An audio codec we speak: the two G.711 laws (8 kHz audio), G.722
/// (16 kHz audio, ITU-T G.722 at 64 kbit/s) and Opus (RFC 7587). The first
/// three carry 8000 bytes a second, so a 20 ms packet is 160 bytes of
/// payload and its RTP timestamp advances by 160 whichever it is: G.722's
/// RTP clock is 8000 by an historical error that RFC 3551 §4.5.2 keeps for
/// compatibility. Opus packets vary in length and its RTP clock is 48000
/// whatever the audio's bandwidth (RFC 7587 §4.1), so a 20 ms packet
/// advances the timestamp by 960.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum AudioCodec {
    /// G.711 µ-law, static payload type 0.
    Pcmu,
    /// G.711 A-law, static payload type 8.
    Pcma,
    /// G.722, static payload type 9 (`G722/8000` in SDP).
    G722,
    /// Opus, a dynamic payload type (`opus/48000/2` in SDP).
    Opus,
}

/// The payload type of Opus in our offers (dynamic: a peer's own choice is
/// kept for its leg). 111 is what browsers and most SIP stacks use.
pub const OPUS_PAYLOAD_TYPE: u8 = 111;

impl AudioCodec {
    /// Every codec we speak.
    pub const ALL: [AudioCodec; 4] = [
        AudioCodec::Pcmu,
        AudioCodec::Pcma,
        AudioCodec::G722,
        AudioCodec::Opus,
    ];

    /// `[media] codecs` when the config does not say: Opus is opted into
    /// (it costs an encoder per transcoding leg and an encoding of every
    /// clip), the rest is on.
    pub const DEFAULT: [AudioCodec; 3] = [AudioCodec::Pcmu, AudioCodec::Pcma, AudioCodec::G722];

    /// The payload type we offer it with: its static one (RFC 3551), or
    /// `OPUS_PAYLOAD_TYPE`.
    pub fn payload_type(self) -> u8 {
        match self {
            AudioCodec::Pcmu => 0,
            AudioCodec::Pcma => 8,
            AudioCodec::G722 => 9,
            AudioCodec::Opus => OPUS_PAYLOAD_TYPE,
        }
    }

    /// The codec a static payload type stands for (never Opus, whose type
    /// is dynamic and known only from the SDP).
    pub fn from_payload_type(pt: u8) -> Option<AudioCodec> {
        AudioCodec::ALL
            .into_iter()
            .filter(|c| *c != AudioCodec::Opus)
            .find(|c| c.payload_type() == pt)
    }

    /// Its SDP encoding name (`a=rtpmap`), as the config names it too.
    pub fn encoding_name(self) -> &'static str {
        match self {
            AudioCodec::Pcmu => "PCMU",
            AudioCodec::Pcma => "PCMA",
            AudioCodec::G722 => "G722",
            AudioCodec::Opus => "opus",
        }
    }

    /// Its `a=rtpmap` text after the payload type: name, clock, and for
    /// Opus the two channels RFC 7587 §7 requires in the SDP (we send and
    /// take mono; the decoder mixes a stereo sender down).
    pub fn rtpmap(self) -> &'static str {
        match self {
            AudioCodec::Pcmu => "PCMU/8000",
            AudioCodec::Pcma => "PCMA/8000",
            AudioCodec::G722 => "G722/8000",
            AudioCodec::Opus => "opus/48000/2",
        }
    }

    /// The codec an SDP encoding name (any case) stands for.
    pub fn from_name(name: &str) -> Option<AudioCodec> {
        AudioCodec::ALL
            .into_iter()
            .find(|c| c.encoding_name().eq_ignore_ascii_case(name))
    }

    /// The G.711 law, for the two G.711 codecs.
    pub fn law(self) -> Option<Law> {
        match self {
            AudioCodec::Pcmu => Some(Law::Mu),
            AudioCodec::Pcma => Some(Law::A),
            AudioCodec::G722 | AudioCodec::Opus => None,
        }
    }

    /// Audio samples a second as we code it (not the RTP clock): Opus is
    /// coded from and decoded to 16 kHz here, wideband like G.722.
    pub fn sample_rate(self) -> u32 {
        match self {
            AudioCodec::Pcmu | AudioCodec::Pcma => 8000,
            AudioCodec::G722 | AudioCodec::Opus => 16000,
        }
    }

    /// Its RTP clock rate: 8000, or 48000 for Opus.
    pub fn clock_rate(self) -> u32 {
        match self {
            AudioCodec::Opus => 48000,
            _ => 8000,
        }
    }

    /// RTP timestamp ticks in one 20 ms packet: 160, or 960 for Opus.
    pub fn ticks_per_frame(self) -> u32 {
        self.clock_rate() / 50
    }
}

impl From<Law> for AudioCodec {
    fn from(law: Law) -> AudioCodec {
        match law {
            Law::Mu => AudioCodec::Pcmu,
            Law::A => AudioCodec::Pcma,
        }
    }
}

/// What one leg negotiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegCodec {
    /// The audio codec (was `law` when only G.711 was spoken).
    pub audio: AudioCodec,
    pub payload_type: u8,
    /// RFC 4733 telephone-event payload type, if the leg offered it.
    pub event_payload_type: Option<u8>,
    /// What an Opus peer asked of the audio sent to it (the default for
    /// the other codecs, which are always sent in 20 ms packets).
    pub opus: OpusSend,
}

impl LegCodec {
    /// A leg of `audio` at `payload_type`, with telephone-events at
    /// `event_payload_type` and Opus's defaults.
    pub const fn new(
        audio: AudioCodec,
        payload_type: u8,
        event_payload_type: Option<u8>,
    ) -> LegCodec {
        LegCodec {
            audio,
            payload_type,
            event_payload_type,
            opus: OpusSend::PLAIN,
        }
    }

    /// The audio codec of a packet of payload type `pt` on this leg: its
    /// own, or a static type of ours sent anyway; None for events and
    /// what we do not speak.
    pub fn audio_of(&self, pt: u8) -> Option<AudioCodec> {
        if pt == self.payload_type {
            return Some(self.audio);
        }
        if Some(pt) == self.event_payload_type {
            return None;
        }
        AudioCodec::from_payload_type(pt)
    }
}

/// How an Opus peer wants what it is sent (RFC 7587 §6.1, §7): read from
/// its `a=fmtp` (`maxplaybackrate`) and its `a=ptime` / `a=maxptime`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpusSend {
    /// The peer plays audio no wider than narrowband (its
    /// `maxplaybackrate` is below 16000): what we encode is band-limited
    /// to 4 kHz, so no bits go on what it would not play.
    pub narrowband: bool,
    /// 20 ms frames per packet (1, 2 or 3: an `a=ptime` of 20, 40 or 60,
    /// never above its `a=maxptime`).
    pub frames: u8,
}

impl Default for OpusSend {
    fn default() -> Self {
        OpusSend::PLAIN
    }
}

impl OpusSend {
    /// What a peer that says nothing gets: wideband, 20 ms packets.
    pub const PLAIN: OpusSend = OpusSend {
        narrowband: false,
        frames: 1,
    };
    /// The most 20 ms frames we put in one packet.
    pub const MAX_FRAMES: u8 = 3;

    /// What a peer's SDP asks: `maxplaybackrate` (None: unsaid, so 48000),
    /// `ptime` and `maxptime` in ms (None: unsaid).
    pub fn asked(
        max_playback_rate: Option<u32>,
        ptime: Option<u32>,
        maxptime: Option<u32>,
    ) -> Self {
        let wanted = ptime.map_or(1, |ms| ms / 20);
        let allowed = maxptime.map_or(u32::from(Self::MAX_FRAMES), |ms| ms / 20);
        let frames = wanted.min(allowed).clamp(1, u32::from(Self::MAX_FRAMES));
        OpusSend {
            narrowband: max_playback_rate.is_some_and(|rate| rate < 16_000),
            frames: frames as u8,
        }
    }

    /// Whether packets to this peer are joined (more than one frame each).
    pub fn joins(self) -> bool {
        self.frames > 1
    }
}

/// One DTMF key press as the caller made it, however it arrived (RFC 4733
/// telephone-events in RTP, or a SIP INFO): reported once per press.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfPress {
    /// `0`-`9`, `*`, `#` or `A`-`D`.
    pub digit: char,
    /// How long the key was held, in milliseconds (0 when the sender did
    /// not say, as a SIP INFO `application/dtmf` body does not).
    pub duration_ms: u32,
}

/// The key of an RFC 4733 event code (§3.2: 0-9, 10 `*`, 11 `#`, 12-15
/// `A`-`D`); `None` for the other events (flash, tones), which are not keys.
pub fn dtmf_digit(event: u8) -> Option<char> {
    match event {
        0..=9 => Some(char::from(b'0' + event)),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some(char::from(b'A' + event - 12)),
        _ => None,
    }
}

/// The RFC 4733 event code of a DTMF key (`dtmf_digit` backwards).
pub fn dtmf_event(digit: char) -> Option<u8> {
    (0..=15).find(|e| dtmf_digit(*e) == Some(digit))
}
