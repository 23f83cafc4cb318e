//! The Call-ID of a SIP message as it went over the wire, for the HEP
//! correlation chunk: found by a scan of the header lines (`Call-ID:` or
//! its compact form `i:`, any case), without parsing the message.

/// The Call-ID's value, trimmed; None when the head has none.
pub fn of(message: &[u8]) -> Option<&str> {
    let head_end = find(message, b"\r\n\r\n").unwrap_or(message.len());
    let head = &message[..head_end];
    // Skip the start line.
    let mut lines = head.split(|b| *b == b'\n');
    lines.next()?;
    for line in lines {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let name = line[..colon].trim_ascii();
        if name.eq_ignore_ascii_case(b"call-id") || name.eq_ignore_ascii_case(b"i") {
            let value = std::str::from_utf8(line[colon + 1..].trim_ascii()).ok()?;
            return (!value.is_empty()).then_some(value);
        }
    }
    None
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_call_id_is_found_in_long_and_compact_form() {
        let m = b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nCall-ID:  abc@h \r\nCSeq: 1 INVITE\r\n\r\nv=0\r\n";
        assert_eq!(of(m), Some("abc@h"));
        let m = b"SIP/2.0 200 OK\r\ni:x1\r\n\r\n";
        assert_eq!(of(m), Some("x1"));
        let m = b"SIP/2.0 200 OK\r\nCALL-ID: Y\r\n\r\n";
        assert_eq!(of(m), Some("Y"));
    }

    #[test]
    fn none_when_absent_or_only_in_the_body() {
        assert_eq!(
            of(b"SIP/2.0 200 OK\r\nCSeq: 1 INVITE\r\n\r\nCall-ID: body\r\n"),
            None
        );
        assert_eq!(of(b""), None);
        assert_eq!(of(b"garbage"), None);
        // "Via" contains an "i" but is not the compact Call-ID.
        assert_eq!(of(b"ACK x SIP/2.0\r\nVia: i\r\n\r\n"), None);
    }
}
