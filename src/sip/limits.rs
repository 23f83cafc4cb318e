//! Size limits on an INVITE, checked before any other work: a message too
//! large gets 513, too many headers or a header line too long gets 400, and
//! so does a Content-Length that is not the body's length (which the SIP
//! library lets through when it is negative).

use super::inbound::InviteInfo;

/// `[limits]` values for SIP messages.
#[derive(Debug, Clone, Copy)]
pub struct MessageLimits {
    pub max_message_bytes: usize,
    pub max_headers: usize,
    pub max_header_line_bytes: usize,
}

/// Why a message was refused: the status code and reason phrase.
pub type Refused = (u16, &'static str);

/// Checks an INVITE against `limits`.
pub fn check(info: &InviteInfo, limits: &MessageLimits) -> Result<(), Refused> {
    if info.all_headers.len() > limits.max_headers {
        return Err((400, "Too Many Headers"));
    }
    let mut total = info.sdp.len();
    for (name, value) in &info.all_headers {
        let line = name.len() + 2 + value.len();
        if line > limits.max_header_line_bytes {
            return Err((400, "Header Line Too Long"));
        }
        total += line + 2;
    }
    if total > limits.max_message_bytes {
        return Err((513, "Message Too Large"));
    }
    let length = info
        .all_headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length") || n == "l")
        .map(|(_, v)| v.trim());
    if length.is_some_and(|l| l.parse::<usize>().ok() != Some(info.sdp.len())) {
        return Err((400, "Bad Content-Length"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(headers: &[(&str, &str)], body: &str) -> InviteInfo {
        InviteInfo {
            source: "127.0.0.1:5060".parse().unwrap(),
            transport: "udp",
            call_id: "c".into(),
            to_uri: "sip:a@b".into(),
            to_user: Some("a".into()),
            from_uri: "sip:c@d".into(),
            from_user: Some("c".into()),
            request_user: Some("a".into()),
            custom_headers: vec![],
            all_headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            sdp: bytes::Bytes::from(body.to_string()),
        }
    }

    const L: MessageLimits = MessageLimits {
        max_message_bytes: 200,
        max_headers: 3,
        max_header_line_bytes: 50,
    };

    #[test]
    fn each_limit_has_its_answer() {
        assert_eq!(check(&info(&[("Content-Length", "2")], "ab"), &L), Ok(()));
        let many = [("A", "1"), ("B", "2"), ("C", "3"), ("D", "4")];
        assert_eq!(check(&info(&many, ""), &L), Err((400, "Too Many Headers")));
        let long = "x".repeat(60);
        assert_eq!(
            check(&info(&[("X-L", &long)], ""), &L),
            Err((400, "Header Line Too Long"))
        );
        let body = "y".repeat(300);
        assert_eq!(
            check(&info(&[], &body), &L),
            Err((513, "Message Too Large"))
        );
        for bad in ["-5", "3", "x"] {
            assert_eq!(
                check(&info(&[("Content-Length", bad)], "ab"), &L),
                Err((400, "Bad Content-Length"))
            );
        }
    }
}
