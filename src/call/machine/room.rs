//! A room attempt as pure functions: which codecs the room is offered, in
//! which order, and whether SRTP keys may go to that target at all (the
//! machine calls these when it starts an attempt); and whether a room's
//! 2xx answer can be bridged (the machine calls it on `Input::RoomAnswer`,
//! before the driver touches the media).

use crate::codec::AudioCodec;
use crate::sdes::{LegKeys, MasterKey};
use crate::sip::crypto;
use crate::sip::sdp::{self, PeerMedia};

/// The codecs a room is offered: the caller's first (rooms mostly take the
/// first they speak, and legs that agree are relayed untouched), then the
/// node's others in their configured order.
pub fn offer_codecs(caller: AudioCodec, configured: &[AudioCodec]) -> Vec<AudioCodec> {
    let mut codecs = vec![caller];
    codecs.extend(configured.iter().copied().filter(|c| *c != caller));
    codecs
}

/// Why an SRTP attempt at `target` may not be made: SDES keys travel in
/// the offer, so never over UDP or TCP, whatever the target says
/// (`sips:…;transport=udp` passes the API's check). None: it may.
pub fn srtp_refused(target: &str) -> Option<String> {
    (!crate::sip::reaches_over_tls(target))
        .then(|| format!("SRTP keys are only sent over TLS; {target} is not"))
}

/// A room's 2xx answer that can be bridged: where its media goes and,
/// for an SRTP leg, the keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usable {
    pub media: PeerMedia,
    pub keys: Option<LegKeys>,
}

/// Whether a room's 2xx answer (`body`) to our offer can be bridged: its
/// SDP names one of `codecs`, and it is SRTP exactly when we offered SRTP
/// (`offered`, our keys by tag), with a key we can use. Refused: the code
/// to fail the attempt with (488) and why. A room that answers our SRTP
/// offer in clear would put the caller's audio in clear; one that answers
/// our plain offer with SRTP would have its ciphertext relayed as audio.
pub fn accept_answer(
    body: &[u8],
    codecs: &[AudioCodec],
    offered: Option<&[(u32, MasterKey)]>,
) -> Result<Usable, (u16, String)> {
    let media =
        sdp::parse_for(body, codecs).map_err(|e| (488, format!("room answer unusable: {e}")))?;
    let keys = match offered {
        Some(ours) => crypto::answered(body, ours).map(Some),
        None => crypto::answered_plain(body).map(|()| None),
    };
    match keys {
        Ok(keys) => Ok(Usable { media, keys }),
        Err(e) => Err((488, e.to_string())),
    }
}

/// What calls saved before the machine kept its room codecs are offered.
pub(super) fn saved_default() -> Vec<AudioCodec> {
    vec![AudioCodec::Pcmu, AudioCodec::Pcma]
}

#[cfg(test)]
mod tests {
    use super::*;
    use AudioCodec::*;

    #[test]
    fn the_caller_s_codec_leads_and_none_repeats() {
        assert_eq!(
            offer_codecs(G722, &[Pcmu, Pcma, G722]),
            vec![G722, Pcmu, Pcma]
        );
        assert_eq!(offer_codecs(Pcma, &[Pcmu, Pcma]), vec![Pcma, Pcmu]);
        // A caller's codec the node no longer lists is still offered first.
        assert_eq!(offer_codecs(Pcmu, &[Pcma]), vec![Pcmu, Pcma]);
    }

    fn answer(extra: &str) -> Vec<u8> {
        format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio 4000 {extra}\r\na=rtpmap:0 PCMU/8000\r\n"
        )
        .into_bytes()
    }

    #[test]
    fn a_plain_answer_to_a_plain_offer_is_bridged_on_our_codec() {
        let ok = accept_answer(&answer("RTP/AVP 0"), &[Pcmu, Pcma], None);
        let ok = ok.unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(ok.media.addr.port(), 4000);
        assert_eq!(ok.media.choose().audio, Pcmu);
        assert!(ok.keys.is_none());
    }

    #[test]
    fn answers_that_cannot_be_bridged_are_refused_with_488() {
        // A codec we do not speak.
        let (code, why) = accept_answer(&answer("RTP/AVP 0"), &[Pcma], None).unwrap_err();
        assert_eq!(code, 488);
        assert!(why.starts_with("room answer unusable"), "{why}");
        // Not SDP at all.
        let (code, _) = accept_answer(b"hello", &[Pcmu], None).unwrap_err();
        assert_eq!(code, 488);
        // SRTP to our plain offer: its ciphertext would be relayed as audio.
        let savp = answer("RTP/SAVP 0");
        assert_eq!(accept_answer(&savp, &[Pcmu], None).unwrap_err().0, 488);
        // Clear audio to our SRTP offer.
        let (_, keys) = crate::call::door::secure::room_offer(sdp::offer_of(
            "127.0.0.1".parse().unwrap(),
            4100,
            &[Pcmu],
        ));
        let plain = answer("RTP/AVP 0");
        assert_eq!(
            accept_answer(&plain, &[Pcmu], Some(&keys)).unwrap_err().0,
            488
        );
    }

    #[test]
    fn keys_go_only_to_targets_reached_over_tls() {
        assert_eq!(srtp_refused("sips:room@example.com"), None);
        assert_eq!(srtp_refused("sip:room@example.com;transport=tls"), None);
        let refused = srtp_refused("sips:room@example.com;transport=udp");
        assert_eq!(
            refused.as_deref(),
            Some("SRTP keys are only sent over TLS; sips:room@example.com;transport=udp is not")
        );
        assert!(srtp_refused("sip:room@example.com").is_some());
    }
}
