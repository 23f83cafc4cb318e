//! `POST /v1/dialin/pinlessCallUpdate` (Daily-compatible): validate the
//! body, hand the transfer to the call's driver, answer 200 as soon as it
//! is under way (never waiting for the room).

use super::Api;
use super::reply::{error, json};
use crate::call::CallId;
use crate::call::driver::DriverMsg;
use crate::sip::headers;
use serde_json::Value;
use std::time::Duration;
use tokio::sync::oneshot;
use warp::http::StatusCode;
use warp::hyper::{Body, Response};

const FIELDS: [&str; 4] = ["callId", "callDomain", "sipUri", "headers"];

/// A validated update.
#[derive(Debug, PartialEq, Eq)]
pub struct Update {
    pub call_id: String,
    pub call_domain: String,
    pub sip_uri: String,
    pub headers: Vec<(String, String)>,
}

/// Parses and checks the body; the error names the field.
pub fn parse(body: &[u8]) -> Result<Update, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("body is not valid JSON: {e}"))?;
    let Value::Object(obj) = value else {
        return Err("body must be a JSON object".into());
    };
    if let Some(unknown) = obj.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(format!("{unknown}: unknown field"));
    }
    let string = |name: &str| -> Result<String, String> {
        match obj.get(name) {
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_string()),
            Some(Value::String(_)) => Err(format!("{name}: must not be empty")),
            Some(_) => Err(format!("{name}: must be a string")),
            None => Err(format!("{name}: required")),
        }
    };
    let call_id = string("callId")?;
    let call_domain = string("callDomain")?;
    let sip_uri = string("sipUri")?;
    if crate::sip::uri_user(&sip_uri).is_none()
        || sip_uri.parse::<ezk_sip_types::uri::SipUri>().is_err()
    {
        return Err(
            "sipUri: must be a sip: or sips: URI with a user part, like sip:room@host".into(),
        );
    }
    let mut extra = Vec::new();
    match obj.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (name, value) in map {
                let Value::String(value) = value else {
                    return Err(format!("headers.{name}: must be a string"));
                };
                headers::check(name, value).map_err(|e| format!("headers.{name}: {e}"))?;
                extra.push((name.clone(), value.clone()));
            }
        }
        Some(_) => return Err("headers: must be an object of strings".into()),
    }
    Ok(Update {
        call_id,
        call_domain,
        sip_uri,
        headers: extra,
    })
}

pub async fn handle(api: &Api, body: &[u8]) -> Response<Body> {
    let update = match parse(body) {
        Ok(u) => u,
        Err(msg) => return error(StatusCode::BAD_REQUEST, &msg),
    };
    if update.call_domain != api.call_domain {
        return error(StatusCode::NOT_FOUND, "unknown callDomain");
    }
    let Some(call) = api.registry.get(&CallId(update.call_id.clone())) else {
        if let Some(ended) = api.registry.snapshot(&CallId(update.call_id.clone())) {
            return error(
                StatusCode::CONFLICT,
                &format!("call is {:?}", ended.state).to_lowercase(),
            );
        }
        return error(StatusCode::NOT_FOUND, "unknown callId");
    };
    let (reply, answer) = oneshot::channel();
    let msg = DriverMsg::Update {
        transfer_to: update.sip_uri.clone(),
        headers: update.headers,
        reply,
    };
    if call.tx.send(msg).is_err() {
        return error(StatusCode::CONFLICT, "call is ended");
    }
    match tokio::time::timeout(Duration::from_secs(2), answer).await {
        Ok(Ok(Ok(()))) => json(
            StatusCode::OK,
            &serde_json::json!({ "status": "transferring", "callId": update.call_id, "sipUri": update.sip_uri }),
        ),
        Ok(Ok(Err(refused))) => error(StatusCode::CONFLICT, &refused.to_string()),
        _ => error(StatusCode::CONFLICT, "call is ended"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_field() {
        let e = |b: &str| parse(b.as_bytes()).unwrap_err();
        assert!(e("{").contains("JSON"));
        assert!(e("[]").contains("object"));
        assert!(e(r#"{"callDomain":"d","sipUri":"sip:a@b"}"#).starts_with("callId"));
        assert!(
            e(r#"{"callId":1,"callDomain":"d","sipUri":"sip:a@b"}"#)
                .starts_with("callId: must be a string")
        );
        assert!(e(r#"{"callId":"c","callDomain":"d","sipUri":"http://x"}"#).starts_with("sipUri"));
        assert!(
            e(r#"{"callId":"c","callDomain":"d","sipUri":"sip:a@b","headers":{"Via":"x"}}"#)
                .starts_with("headers.Via")
        );
        assert!(
            e(r#"{"callId":"c","callDomain":"d","sipUri":"sip:a@b","extra":1}"#)
                .starts_with("extra")
        );
    }

    #[test]
    fn good_body() {
        let u = parse(br#"{"callId":"c","callDomain":"d","sipUri":"sip:room@127.0.0.1:5070;transport=tcp","headers":{"X-A":"1"}}"#).unwrap();
        assert_eq!(u.sip_uri, "sip:room@127.0.0.1:5070;transport=tcp");
        assert_eq!(u.headers, vec![("X-A".to_string(), "1".to_string())]);
    }
}
