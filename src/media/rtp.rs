//! RTP (RFC 3550) fixed header: writing ours, reading theirs.

/// Bytes in the fixed RTP header (no CSRCs, no extension).
pub const HEADER_LEN: usize = 12;
/// Samples per 20 ms packet at 8 kHz.
pub const SAMPLES_PER_PACKET: u32 = 160;

/// The fields of an RTP header pinless reads or writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
}

impl Header {
    /// Writes the 12-byte header into `buf[..12]`.
    pub fn write(&self, buf: &mut [u8; HEADER_LEN]) {
        buf[0] = 0x80; // version 2, no padding, no extension, no CSRC
        buf[1] = (self.payload_type & 0x7F) | if self.marker { 0x80 } else { 0 };
        buf[2..4].copy_from_slice(&self.sequence.to_be_bytes());
        buf[4..8].copy_from_slice(&self.timestamp.to_be_bytes());
        buf[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
    }

    /// Rewrites the mutable fields of a packet already in `packet` (whose
    /// header `parse` accepted), keeping CSRCs and extensions intact.
    pub fn rewrite(&self, packet: &mut [u8]) {
        if packet.len() < HEADER_LEN {
            return;
        }
        packet[1] = (self.payload_type & 0x7F) | if self.marker { 0x80 } else { 0 };
        packet[2..4].copy_from_slice(&self.sequence.to_be_bytes());
        packet[4..8].copy_from_slice(&self.timestamp.to_be_bytes());
        packet[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
    }
}

/// Parses an RTP packet: its header and the byte range of its payload.
/// Returns `None` for anything that is not RTP version 2 or is cut short
/// (RTCP on the same port, STUN, garbage).
pub fn parse(packet: &[u8]) -> Option<(Header, std::ops::Range<usize>)> {
    if packet.len() < HEADER_LEN || packet[0] >> 6 != 2 {
        return None;
    }
    let payload_type = packet[1] & 0x7F;
    // RTCP packet types 200–204 land in 72–76 with the marker bit masked.
    if (72..=76).contains(&payload_type) {
        return None;
    }
    let csrc = (packet[0] & 0x0F) as usize;
    let mut start = HEADER_LEN + 4 * csrc;
    if packet[0] & 0x10 != 0 {
        let ext = packet.get(start + 2..start + 4)?;
        start += 4 + 4 * u16::from_be_bytes([ext[0], ext[1]]) as usize;
    }
    let mut end = packet.len();
    if packet[0] & 0x20 != 0 {
        let pad = *packet.last()? as usize;
        end = end.checked_sub(pad)?;
    }
    if start > end {
        return None;
    }
    Some((
        Header {
            marker: packet[1] & 0x80 != 0,
            payload_type,
            sequence: u16::from_be_bytes([packet[2], packet[3]]),
            timestamp: u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]),
            ssrc: u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]),
        },
        start..end,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_then_parse() {
        let h = Header {
            marker: true,
            payload_type: 8,
            sequence: 0xFFFF,
            timestamp: 0xDEADBEEF,
            ssrc: 0x01020304,
        };
        let mut buf = [0u8; HEADER_LEN + 160];
        let mut head = [0u8; HEADER_LEN];
        h.write(&mut head);
        buf[..HEADER_LEN].copy_from_slice(&head);
        assert_eq!(&buf[..4], &[0x80, 0x88, 0xFF, 0xFF]);
        let (p, range) = parse(&buf).unwrap();
        assert_eq!(p, h);
        assert_eq!(range, HEADER_LEN..HEADER_LEN + 160);
    }

    #[test]
    fn csrc_extension_and_padding_are_skipped() {
        let mut buf = vec![0xB1, 0x00, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        buf.extend_from_slice(&[9, 9, 9, 9]); // one CSRC
        buf.extend_from_slice(&[0xBE, 0xDE, 0, 1, 7, 7, 7, 7]); // extension, 1 word
        buf.extend_from_slice(&[1, 2, 3, 0, 0, 3]); // payload + 3 padding bytes
        let (h, range) = parse(&buf).unwrap();
        assert_eq!(h.sequence, 1);
        assert_eq!(&buf[range], &[1, 2, 3]);
    }

    #[test]
    fn non_rtp_is_refused() {
        assert!(parse(&[0x80, 0x00]).is_none());
        assert!(parse(&[0x00; 20]).is_none()); // version 0 (STUN-like)
        let rtcp = [0x80, 200, 0, 6, 0, 0, 0, 1, 0, 0, 0, 0];
        assert!(parse(&rtcp).is_none());
        let mut bad_pad = [0u8; 13];
        bad_pad[0] = 0xA0;
        bad_pad[12] = 200;
        assert!(parse(&bad_pad).is_none());
    }
}
