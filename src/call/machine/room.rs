//! The shape of a room attempt, as pure functions the machine calls when
//! it starts one: which codecs the room is offered, in which order, and
//! whether SRTP keys may go to that target at all.

use crate::codec::AudioCodec;

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
