//! One recording channel's decoder: a packet's payload, in whichever
//! codec it came, to audio at the file's rate. The codecs' decoders are
//! stateful (G.722's ADPCM, Opus), so each channel has its own, made
//! when its first packet in that codec comes.

use crate::codec::AudioCodec;
use crate::media::g722::G722Decoder;
use crate::media::opus;
use crate::media::resample::{Downsampler, Upsampler};

pub struct ChannelDecoder {
    /// The file's rate: 8000 or 16000.
    rate: u32,
    g722: Option<G722Decoder>,
    opus: Option<opus::Decoder>,
    up: Option<Upsampler>,
    down: Option<Downsampler>,
    /// Audio at the codec's own rate, before resampling.
    scratch: Vec<i16>,
}

impl ChannelDecoder {
    pub fn new(rate: u32) -> ChannelDecoder {
        ChannelDecoder {
            rate,
            g722: None,
            opus: None,
            up: None,
            down: None,
            scratch: Vec::new(),
        }
    }

    /// Appends `payload`'s audio at the file's rate to `out`; false when
    /// it cannot be decoded (nothing appended).
    pub fn decode(&mut self, codec: AudioCodec, payload: &[u8], out: &mut Vec<i16>) -> bool {
        self.scratch.clear();
        let from = match codec {
            AudioCodec::Pcmu | AudioCodec::Pcma => {
                let Some(law) = codec.law() else {
                    return false;
                };
                law.decode_into(payload, &mut self.scratch);
                8000
            }
            AudioCodec::G722 => {
                let d = self.g722.get_or_insert_with(G722Decoder::new);
                self.scratch.extend(d.decode(payload));
                16000
            }
            AudioCodec::Opus => {
                if self.opus.is_none() {
                    self.opus = opus::Decoder::new(self.rate).ok();
                }
                let Some(d) = self.opus.as_mut() else {
                    return false;
                };
                if !d.decode(payload, &mut self.scratch) {
                    return false;
                }
                self.rate
            }
        };
        match (from, self.rate) {
            (a, b) if a == b => out.extend_from_slice(&self.scratch),
            (8000, 16000) => {
                let up = self.up.get_or_insert_with(Upsampler::new);
                up.process(&self.scratch, out);
            }
            (16000, 8000) => {
                let down = self.down.get_or_insert_with(Downsampler::new);
                down.process(&self.scratch, out);
            }
            _ => return false,
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::g711::ulaw_encode;
    use crate::media::g722::G722Encoder;

    #[test]
    fn each_codec_comes_out_at_the_file_s_rate() {
        let tone: Vec<i16> = (0..320)
            .map(|i| ((i as f64 * 0.2).sin() * 6000.0) as i16)
            .collect();
        let g722 = G722Encoder::new().encode(&tone);
        let mulaw: Vec<u8> = tone[..160].iter().map(|s| ulaw_encode(*s)).collect();
        let mut wide = ChannelDecoder::new(16000);
        let mut narrow = ChannelDecoder::new(8000);
        let mut out = Vec::new();
        assert!(wide.decode(AudioCodec::G722, &g722, &mut out));
        assert_eq!(out.len(), 320);
        out.clear();
        assert!(wide.decode(AudioCodec::Pcmu, &mulaw, &mut out));
        assert_eq!(out.len(), 320, "8 kHz doubled");
        out.clear();
        assert!(narrow.decode(AudioCodec::G722, &g722, &mut out));
        assert_eq!(out.len(), 160, "16 kHz halved");
        out.clear();
        assert!(narrow.decode(AudioCodec::Pcma, &mulaw, &mut out));
        assert_eq!(out.len(), 160);
        out.clear();
        assert!(
            !wide.decode(AudioCodec::Opus, &[0xFF; 3], &mut out),
            "garbage"
        );
        assert!(out.is_empty());
    }
}
