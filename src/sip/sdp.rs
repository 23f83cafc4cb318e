//! SDP for G.711, G.722 and Opus audio with RFC 4733 telephone-events: reading
//! a peer's offer or answer (with ezk-sdp-types), choosing the codec, and
//! writing ours (plain text: a few media lines need no builder). Which
//! codecs we speak, and in which order we offer them, is `[media] codecs`.

use crate::codec::{AudioCodec, LegCodec, OpusSend};
use bytesstr::BytesStr;
use ezk_sdp_types::{
    Direction, MediaType, SessionDescription, TaggedAddress, TransportProtocol, UnknownAttribute,
};
use std::net::{IpAddr, SocketAddr};

/// Payload type we offer for telephone-event (at 8000, beside G.711 and
/// G.722).
pub const EVENT_PAYLOAD_TYPE: u8 = 101;
/// Payload type we offer for telephone-event/48000, beside Opus: an event's
/// clock is its audio's (RFC 4733 §2.1), so an Opus leg has its own.
pub const WIDE_EVENT_PAYLOAD_TYPE: u8 = 110;
/// What we say of our Opus (RFC 7587 §6.1): we take in-band FEC, and code
/// audio at 16 kHz at most (wideband, as G.722), so a sender need not spend
/// bits on more.
const OPUS_FMTP: &str = "useinbandfec=1;maxplaybackrate=16000;sprop-maxcapturerate=16000";

/// Why an SDP body cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// Not parseable as SDP (or empty).
    #[error("malformed SDP: {0}")]
    Malformed(String),
    /// No active RTP/AVP audio stream with an IP address.
    #[error("no usable audio stream in SDP")]
    NoAudio,
    /// Audio, but in none of the codecs we speak (the text lists them).
    #[error("no common codec ({0} needed)")]
    NoCommonCodec(Needed),
}

/// The codecs a peer needed one of, for `SdpError::NoCommonCodec`'s text:
/// "PCMU or PCMA", "PCMU, PCMA or G722".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Needed(pub Vec<AudioCodec>);

impl std::fmt::Display for Needed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.0.iter().map(|c| c.encoding_name()).collect();
        match names.split_last() {
            None => f.write_str("none"),
            Some((last, [])) => f.write_str(last),
            Some((last, rest)) => write!(f, "{} or {last}", rest.join(", ")),
        }
    }
}

/// What the peer's SDP says about its audio.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerMedia {
    /// Where to send RTP.
    pub addr: SocketAddr,
    /// Audio payloads we speak, in the peer's order of preference.
    pub codecs: Vec<(u8, AudioCodec)>,
    /// telephone-event/8000, for the G.711 and G.722 codecs.
    pub event_payload_type: Option<u8>,
    /// telephone-event/48000, for Opus.
    pub wide_event_payload_type: Option<u8>,
    /// What the peer asks of the Opus it is sent (its fmtp, ptime and
    /// maxptime); the default when it has no Opus of ours.
    pub opus: OpusSend,
    /// Whether the peer says it sends audio: false for `a=recvonly` or
    /// `a=inactive` (media level over session level) or port 0. A leg
    /// that does not send is never taken for dead for its silence.
    pub sends: bool,
}

impl PeerMedia {
    /// The codec to use: the peer's first choice among ours.
    pub fn choose(&self) -> LegCodec {
        let (payload_type, audio) = self.codecs[0];
        LegCodec {
            audio,
            payload_type,
            event_payload_type: match audio.clock_rate() {
                8000 => self.event_payload_type,
                _ => self.wide_event_payload_type,
            },
            opus: match audio {
                AudioCodec::Opus => self.opus,
                _ => OpusSend::PLAIN,
            },
        }
    }
}

/// Reads the first active audio stream of an SDP body, keeping every
/// codec we know (see `parse_for`).
pub fn parse(body: &[u8]) -> Result<PeerMedia, SdpError> {
    parse_for(body, &AudioCodec::ALL)
}

/// Reads the first active audio stream of an SDP body, keeping only the
/// codecs of `ours` (`[media] codecs`): a peer with none of them gets
/// `NoCommonCodec`.
pub fn parse_for(body: &[u8], ours: &[AudioCodec]) -> Result<PeerMedia, SdpError> {
    let text = std::str::from_utf8(body).map_err(|_| SdpError::Malformed("not UTF-8".into()))?;
    if text.trim().is_empty() {
        return Err(SdpError::Malformed("empty body".into()));
    }
    let sdp = SessionDescription::parse(&BytesStr::from(text))
        .map_err(|e| SdpError::Malformed(e.to_string()))?;
    for m in &sdp.media_descriptions {
        if m.media.media_type != MediaType::Audio
            || m.media.port == 0
            // RTP/SAVP: SRTP, whose keys `crypto` reads.
            || !matches!(m.media.proto, TransportProtocol::RtpAvp | TransportProtocol::RtpSavp)
        {
            continue;
        }
        let Some(conn) = m.connection.as_ref().or(sdp.connection.as_ref()) else {
            continue;
        };
        let ip: IpAddr = match &conn.address {
            TaggedAddress::IP4(ip) => (*ip).into(),
            TaggedAddress::IP6(ip) => (*ip).into(),
            _ => continue,
        };
        let mut codecs = Vec::new();
        let (mut event, mut wide_event) = (None, None);
        for &pt in &m.media.fmts {
            let map = m.rtpmap.iter().find(|r| r.payload == pt);
            let name = map.map(|r| r.encoding.to_ascii_uppercase());
            let rate = map.map(|r| r.clock_rate).unwrap_or(8000);
            // A static type needs no rtpmap; a dynamic one is known by its
            // name and clock: 8000 for G.711 and G.722 (RFC 3551 §4.5.2),
            // 48000 for Opus (RFC 7587 §7).
            let audio = match name.as_deref() {
                Some("TELEPHONE-EVENT") => {
                    let slot = match rate {
                        8000 => &mut event,
                        48000 => &mut wide_event,
                        _ => continue,
                    };
                    slot.get_or_insert(pt);
                    continue;
                }
                Some(name) => AudioCodec::from_name(name).filter(|c| c.clock_rate() == rate),
                None => AudioCodec::from_payload_type(pt),
            };
            if let Some(audio) = audio.filter(|a| ours.contains(a)) {
                codecs.push((pt, audio));
            }
        }
        if codecs.is_empty() {
            return Err(SdpError::NoCommonCodec(Needed(ours.to_vec())));
        }
        let opus = match codecs.iter().find(|(_, c)| *c == AudioCodec::Opus) {
            Some(&(pt, _)) => {
                let fmtp = m.fmtp.iter().find(|f| f.format == pt);
                let rate = fmtp.and_then(|f| fmtp_param(&f.params, "maxplaybackrate"));
                // Media level over session level (RFC 4566 §6).
                let ms = |name| number(&m.attributes, name).or(number(&sdp.attributes, name));
                OpusSend::asked(rate, ms("ptime"), ms("maxptime"))
            }
            None => OpusSend::PLAIN,
        };
        return Ok(PeerMedia {
            addr: SocketAddr::new(ip, m.media.port),
            codecs,
            event_payload_type: event,
            wide_event_payload_type: wide_event,
            opus,
            sends: sends(m.media.port, m.direction),
        });
    }
    Err(SdpError::NoAudio)
}

/// The number `name=` says in an fmtp's `;`-separated parameters (None:
/// absent or not a number, so the default stands).
fn fmtp_param(params: &str, name: &str) -> Option<u32> {
    params.split(';').find_map(|p| {
        let (key, value) = p.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| value.trim().parse().ok())?
    })
}

/// The number of the first `a=name:` among `attributes` (None: absent or
/// not a number).
fn number(attributes: &[UnknownAttribute], name: &str) -> Option<u32> {
    let attr = attributes
        .iter()
        .find(|a| a.name.eq_ignore_ascii_case(name))?;
    attr.value.as_ref()?.trim().parse().ok()
}

/// Whether a stream with this port and direction carries audio from the
/// peer. ezk's parser already gives a stream the session's direction when
/// it has none of its own, so `direction` is the one in force.
fn sends(port: u16, direction: Direction) -> bool {
    port != 0 && matches!(direction, Direction::SendRecv | Direction::SendOnly)
}

fn head(ip: IpAddr, session: u64) -> String {
    let family = if ip.is_ipv4() { "IP4" } else { "IP6" };
    format!(
        "v=0\r\no=pinless {session} {session} IN {family} {ip}\r\ns=pinless\r\nc=IN {family} {ip}\r\nt=0 0\r\n"
    )
}

/// Our answer: the chosen codec (and telephone-event if the peer has it).
pub fn answer(ip: IpAddr, port: u16, codec: LegCodec) -> String {
    let mut s = head(ip, rand::random::<u32>() as u64);
    let pt = codec.payload_type;
    match codec.event_payload_type {
        Some(te) => s += &format!("m=audio {port} RTP/AVP {pt} {te}\r\n"),
        None => s += &format!("m=audio {port} RTP/AVP {pt}\r\n"),
    }
    s += &rtpmap(pt, codec.audio);
    if let Some(te) = codec.event_payload_type {
        s += &events(te, codec.audio.clock_rate());
    }
    s += "a=ptime:20\r\na=sendrecv\r\n";
    s
}

/// The `a=rtpmap` line of `codec` at `pt` (and Opus's `a=fmtp`).
fn rtpmap(pt: u8, codec: AudioCodec) -> String {
    let mut s = format!("a=rtpmap:{pt} {}\r\n", codec.rtpmap());
    if codec == AudioCodec::Opus {
        s += &format!("a=fmtp:{pt} {OPUS_FMTP}\r\n");
    }
    s
}

/// The telephone-event lines of `pt` at `rate`.
fn events(pt: u8, rate: u32) -> String {
    format!("a=rtpmap:{pt} telephone-event/{rate}\r\na=fmtp:{pt} 0-16\r\n")
}

/// A G.711 offer: PCMU, PCMA and telephone-event, for a party that speaks
/// G.711 only (the probe; test phones).
pub fn offer(ip: IpAddr, port: u16) -> String {
    offer_of(ip, port, &[AudioCodec::Pcmu, AudioCodec::Pcma])
}

/// Our offer: `codecs` in that order (`[media] codecs`: PCMU, PCMA and
/// G722 by default), and telephone-event at each clock they use.
pub fn offer_of(ip: IpAddr, port: u16, codecs: &[AudioCodec]) -> String {
    let mut s = head(ip, rand::random::<u32>() as u64);
    let clocks = |rate: u32| codecs.iter().any(|c| c.clock_rate() == rate);
    let mut te = Vec::new();
    if clocks(8000) {
        te.push((EVENT_PAYLOAD_TYPE, 8000));
    }
    if clocks(48000) {
        te.push((WIDE_EVENT_PAYLOAD_TYPE, 48000));
    }
    let pts: Vec<String> = (codecs.iter().map(|c| c.payload_type()))
        .chain(te.iter().map(|(pt, _)| *pt))
        .map(|pt| pt.to_string())
        .collect();
    s += &format!("m=audio {port} RTP/AVP {}\r\n", pts.join(" "));
    for c in codecs {
        s += &rtpmap(c.payload_type(), *c);
    }
    for (pt, rate) in te {
        s += &events(pt, rate);
    }
    s += "a=ptime:20\r\na=sendrecv\r\n";
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
m=audio 4000 RTP/AVP 8 0 96\r\na=rtpmap:96 telephone-event/8000\r\n";

    #[test]
    fn callers_order_is_kept_and_events_found() {
        let p = parse(OFFER.as_bytes()).unwrap();
        assert_eq!(p.addr, "10.0.0.1:4000".parse().unwrap());
        assert_eq!(p.codecs, vec![(8, AudioCodec::Pcma), (0, AudioCodec::Pcmu)]);
        let c = p.choose();
        assert_eq!(
            (c.audio, c.payload_type, c.event_payload_type),
            (AudioCodec::Pcma, 8, Some(96))
        );
    }

    #[test]
    fn no_common_codec_and_no_audio() {
        let g722 = OFFER
            .replace("8 0 96", "9")
            .replace("a=rtpmap:96 telephone-event/8000\r\n", "");
        let g711 = [AudioCodec::Pcmu, AudioCodec::Pcma];
        let refused = parse_for(g722.as_bytes(), &g711);
        assert_eq!(refused, Err(SdpError::NoCommonCodec(Needed(g711.to_vec()))));
        assert_eq!(
            refused.unwrap_err().to_string(),
            "no common codec (PCMU or PCMA needed)"
        );
        let h261 = OFFER.replace("8 0 96", "31");
        assert_eq!(
            parse(h261.as_bytes()).unwrap_err().to_string(),
            "no common codec (PCMU, PCMA, G722 or opus needed)"
        );
        let video = OFFER.replace("m=audio", "m=video");
        assert_eq!(parse(video.as_bytes()), Err(SdpError::NoAudio));
        assert!(matches!(parse(b"garbage"), Err(SdpError::Malformed(_))));
        assert!(matches!(parse(b""), Err(SdpError::Malformed(_))));
    }

    #[test]
    fn direction_says_whether_the_peer_sends() {
        let sends = |sdp: &str| parse(sdp.as_bytes()).unwrap().sends;
        assert!(sends(OFFER), "no direction: sendrecv");
        let media = |attr: &str| format!("{OFFER}a={attr}\r\n");
        assert!(sends(&media("sendrecv")));
        assert!(sends(&media("sendonly")));
        assert!(!sends(&media("recvonly")));
        assert!(!sends(&media("inactive")));
        // Session level, before the first m= line.
        let session = |attr: &str| OFFER.replace("t=0 0\r\n", &format!("t=0 0\r\na={attr}\r\n"));
        assert!(!sends(&session("recvonly")));
        assert!(!sends(&session("inactive")));
        assert!(sends(&session("sendonly")));
        // The media level wins over the session level, either way.
        assert!(sends(&format!("{}a=sendrecv\r\n", session("inactive"))));
        assert!(!sends(&format!("{}a=inactive\r\n", session("sendrecv"))));
        // A stream on port 0 is off (`parse` skips it for a usable one).
        assert!(!super::sends(0, Direction::SendRecv));
    }

    #[test]
    fn our_sdp_parses_back() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let o = parse(offer_of(ip, 20000, &AudioCodec::ALL).as_bytes()).unwrap();
        assert_eq!(
            o.codecs,
            vec![
                (0, AudioCodec::Pcmu),
                (8, AudioCodec::Pcma),
                (9, AudioCodec::G722),
                (111, AudioCodec::Opus)
            ]
        );
        assert_eq!(o.event_payload_type, Some(101));
        assert_eq!(o.wide_event_payload_type, Some(110));
        let a = parse(answer(ip, 20002, o.choose()).as_bytes()).unwrap();
        assert_eq!(a.addr.port(), 20002);
        assert_eq!(a.codecs, vec![(0, AudioCodec::Pcmu)]);
    }

    #[test]
    fn g722_is_offered_in_the_configured_order_and_chosen_by_the_peer() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let ours = [AudioCodec::G722, AudioCodec::Pcmu];
        let text = offer_of(ip, 20000, &ours);
        let g711 = parse(offer(ip, 20000).as_bytes()).unwrap();
        assert_eq!(
            g711.codecs,
            vec![(0, AudioCodec::Pcmu), (8, AudioCodec::Pcma)]
        );
        assert!(text.contains("m=audio 20000 RTP/AVP 9 0 101\r\n"), "{text}");
        assert!(text.contains("a=rtpmap:9 G722/8000\r\n"), "{text}");
        // A caller preferring G.722 gets it, with or without an rtpmap
        // (9 is static); one preferring PCMA gets PCMA, unless we do not
        // speak PCMA: then its next choice.
        let wide = OFFER.replace("8 0 96", "9 0 96");
        let c = parse(wide.as_bytes()).unwrap().choose();
        assert_eq!((c.audio, c.payload_type), (AudioCodec::G722, 9));
        let named = OFFER.replace("8 0 96", "0 9 96") + "a=rtpmap:9 g722/8000\r\n";
        assert_eq!(
            parse(named.as_bytes()).unwrap().choose().audio,
            AudioCodec::Pcmu
        );
        let narrow = OFFER.replace("8 0 96", "8 9 0 96");
        assert_eq!(
            parse(narrow.as_bytes()).unwrap().choose().audio,
            AudioCodec::Pcma
        );
        let c = parse_for(narrow.as_bytes(), &ours).unwrap().choose();
        assert_eq!(c.audio, AudioCodec::G722);
        // G722 at another clock rate is not ours.
        let odd = OFFER.replace("8 0 96", "9") + "a=rtpmap:9 G722/16000\r\n";
        assert!(matches!(
            parse(odd.as_bytes()),
            Err(SdpError::NoCommonCodec(_))
        ));
        let a = answer(ip, 20002, c);
        assert!(
            a.contains("m=audio 20002 RTP/AVP 9 96\r\na=rtpmap:9 G722/8000\r\n"),
            "{a}"
        );
    }

    #[test]
    fn opus_is_known_by_name_and_clock_with_its_own_events() {
        let offer = OFFER.replace("8 0 96", "120 0 96 97")
            + "a=rtpmap:120 OPUS/48000/2\r\na=fmtp:120 useinbandfec=1\r\n\
               a=rtpmap:97 telephone-event/48000\r\n";
        let p = parse(offer.as_bytes()).unwrap();
        assert_eq!(
            p.codecs,
            vec![(120, AudioCodec::Opus), (0, AudioCodec::Pcmu)]
        );
        let c = p.choose();
        assert_eq!(
            (c.audio, c.payload_type, c.event_payload_type),
            (AudioCodec::Opus, 120, Some(97)),
            "an Opus leg's key presses come at 48 kHz"
        );
        // Without Opus among ours, the same caller gets PCMU and 8 kHz events.
        let c = parse_for(offer.as_bytes(), &AudioCodec::DEFAULT)
            .unwrap()
            .choose();
        assert_eq!(
            (c.audio, c.event_payload_type),
            (AudioCodec::Pcmu, Some(96))
        );
        // Opus at a clock other than 48000 is not Opus.
        let odd = offer.replace("OPUS/48000/2", "opus/8000");
        assert_eq!(
            parse(odd.as_bytes()).unwrap().codecs,
            vec![(0, AudioCodec::Pcmu)]
        );
        // Opus alone where it is not configured: no common codec.
        let only = OFFER.replace("8 0 96", "120") + "a=rtpmap:120 opus/48000/2\r\n";
        assert!(matches!(
            parse_for(only.as_bytes(), &AudioCodec::DEFAULT),
            Err(SdpError::NoCommonCodec(_))
        ));
    }

    #[test]
    fn an_opus_peer_s_playback_rate_and_packet_time_are_read() {
        let opus = OFFER.replace("8 0 96", "120 0")
            + "a=rtpmap:120 opus/48000/2\r\na=fmtp:120 useinbandfec=1; MaxPlaybackRate=8000\r\n";
        let asked = |sdp: &str| parse(sdp.as_bytes()).unwrap().choose().opus;
        assert_eq!(
            asked(&format!("{opus}a=ptime:40\r\n")),
            OpusSend {
                narrowband: true,
                frames: 2
            }
        );
        // Session level, bounded by the stream's maxptime.
        let session = opus.replace("t=0 0\r\n", "t=0 0\r\na=ptime:60\r\n");
        assert_eq!(asked(&session).frames, 3);
        assert_eq!(asked(&format!("{session}a=maxptime:40\r\n")).frames, 2);
        // Unsaid or unreadable: 20 ms, wideband.
        let plain = opus.replace("MaxPlaybackRate=8000", "maxplaybackrate=x");
        assert_eq!(asked(&format!("{plain}a=ptime:soon\r\n")), OpusSend::PLAIN);
        // The rate is the Opus type's own: another type's fmtp is not read.
        let other = opus.replace("a=fmtp:120", "a=fmtp:0");
        assert!(!asked(&other).narrowband);
        // A leg that chose PCMU is sent 20 ms whatever its Opus asked.
        let pcmu = opus.replace("120 0", "0 120") + "a=ptime:40\r\n";
        assert_eq!(
            parse(pcmu.as_bytes()).unwrap().choose().opus,
            OpusSend::PLAIN
        );
        assert_eq!(parse(pcmu.as_bytes()).unwrap().opus.frames, 2);
    }

    #[test]
    fn our_opus_offer_and_answer_say_its_clock_fmtp_and_events() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let text = offer_of(ip, 20000, &[AudioCodec::Opus, AudioCodec::Pcmu]);
        assert!(
            text.contains("m=audio 20000 RTP/AVP 111 0 101 110\r\n"),
            "{text}"
        );
        assert!(text.contains("a=rtpmap:111 opus/48000/2\r\n"), "{text}");
        assert!(text.contains("a=fmtp:111 useinbandfec=1;"), "{text}");
        assert!(
            text.contains("a=rtpmap:110 telephone-event/48000\r\n"),
            "{text}"
        );
        let back = parse(text.as_bytes()).unwrap();
        assert_eq!(back.choose().event_payload_type, Some(110));
        let a = answer(ip, 20002, back.choose());
        assert!(
            a.contains("m=audio 20002 RTP/AVP 111 110\r\na=rtpmap:111 opus/48000/2\r\n"),
            "{a}"
        );
        // A G.711-only offer carries no 48 kHz events.
        assert!(!offer(ip, 20004).contains("/48000"));
    }
}
