//! The bodies pinless posts, and their message ids, built in one place so
//! that their exact bytes (which apps parse and verify signatures over)
//! cannot drift between the call driver, the events sink and the API.
//!
//! Bodies are built as `serde_json::Value` maps, which keep keys sorted:
//! the key order of every body is therefore part of its contract, pinned
//! by the tests below.

use serde_json::{Map, Value, json};

/// A new `webhook-id`: `msg_` and a random UUID in simple form. Kept the
/// same across the retries of one body.
pub fn message_id() -> String {
    format!("msg_{}", uuid::Uuid::new_v4().simple())
}

/// The webhook's `sipHeaders` object: header names compared without case,
/// the first spelling kept, a repeated header's values joined with ", ".
pub fn sip_headers(headers: &[(String, String)]) -> Map<String, Value> {
    let mut out = Map::new();
    for (name, value) in headers {
        let existing = out
            .iter_mut()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v);
        match existing {
            Some(Value::String(v)) => {
                v.push_str(", ");
                v.push_str(value);
            }
            _ => {
                out.insert(name.clone(), Value::String(value.clone()));
            }
        }
    }
    out
}

/// The incoming-call webhook (Daily's shape, with `To`/`From` capitalised
/// as Daily sends them). A call that came through a registration's
/// binding also carries `"registration": name`; others are Daily's exactly.
pub fn incoming_call(
    to: &str,
    from: &str,
    call_id: &str,
    call_domain: &str,
    headers: &[(String, String)],
    registration: Option<&str>,
) -> Vec<u8> {
    let mut body = json!({
        "To": to,
        "From": from,
        "callId": call_id,
        "callDomain": call_domain,
        "sipHeaders": sip_headers(headers),
    });
    if let Some(name) = registration {
        body["registration"] = json!(name);
    }
    body.to_string().into_bytes()
}

/// One call event for the events webhook. An event without detail gets
/// `"data": {}`, so receivers can always index into `data`.
pub fn call_event(
    kind: &str,
    timestamp_ms: u64,
    call_id: &str,
    call_domain: &str,
    data: &Value,
) -> Vec<u8> {
    let data = if data.is_null() {
        json!({})
    } else {
        data.clone()
    };
    json!({
        "type": kind,
        "timestamp": timestamp_ms,
        "callId": call_id,
        "callDomain": call_domain,
        "data": data,
    })
    .to_string()
    .into_bytes()
}

/// The verification posted when an entry is saved through the API, as
/// Daily posts it.
pub fn verification() -> Vec<u8> {
    br#"{"Test":"test"}"#.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(n: &str, v: &str) -> (String, String) {
        (n.into(), v.into())
    }

    fn text(bytes: Vec<u8>) -> String {
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn message_ids_are_msg_and_a_simple_uuid() {
        let id = message_id();
        let hex = id.strip_prefix("msg_").unwrap();
        assert_eq!(hex.len(), 32);
        assert!(hex.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(message_id(), id);
    }

    #[test]
    fn repeated_headers_join_and_keep_the_first_spelling() {
        let map = sip_headers(&[
            h("X-Lang", "de"),
            h("User-to-User", "abc"),
            h("x-lang", "fr"),
        ]);
        assert_eq!(
            Value::Object(map).to_string(),
            r#"{"User-to-User":"abc","X-Lang":"de, fr"}"#
        );
    }

    #[test]
    fn incoming_call_bytes() {
        let body = incoming_call(
            "+15550001111",
            "sip:alice@example.com",
            "c-1",
            "d-1",
            &[h("X-Ref", "7"), h("X-Ref", "8")],
            None,
        );
        assert_eq!(
            text(body),
            r#"{"From":"sip:alice@example.com","To":"+15550001111","callDomain":"d-1","callId":"c-1","sipHeaders":{"X-Ref":"7, 8"}}"#
        );
        assert_eq!(
            text(incoming_call("t", "f", "c", "d", &[], None)),
            r#"{"From":"f","To":"t","callDomain":"d","callId":"c","sipHeaders":{}}"#
        );
    }

    #[test]
    fn call_event_bytes() {
        let detail = json!({ "sipUri": "sip:room@h", "attempt": 1, "mode": "bridge" });
        assert_eq!(
            text(call_event(
                "call.transfer_started",
                1_700_000_000_123,
                "c",
                "d",
                &detail
            )),
            r#"{"callDomain":"d","callId":"c","data":{"attempt":1,"mode":"bridge","sipUri":"sip:room@h"},"timestamp":1700000000123,"type":"call.transfer_started"}"#
        );
        assert_eq!(
            text(call_event("call.held", 5, "c", "d", &Value::Null)),
            r#"{"callDomain":"d","callId":"c","data":{},"timestamp":5,"type":"call.held"}"#
        );
    }

    #[test]
    fn verification_bytes() {
        assert_eq!(text(verification()), r#"{"Test":"test"}"#);
    }
}
