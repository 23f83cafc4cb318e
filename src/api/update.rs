//! `POST /v1/dialin/pinlessCallUpdate` (Daily-compatible): validate the
//! body, hand the transfer to the call's driver, answer 200 as soon as it
//! is under way (never waiting for the room).

use super::bad_request::{BadRequest, FieldError};
use super::calls::live;
use super::error::{ApiError, Unknown};
use super::reply::json;
use super::state::Api;
use crate::call::TransferRequest;
use crate::call::machine::route;
use crate::stream::StreamUrl;
use warp::http::StatusCode;
use warp::hyper::{Body, Response};

const FIELDS: [&str; 8] = [
    "callId",
    "callDomain",
    "sipUri",
    "sipUris",
    "headers",
    "mode",
    "mediaEncryption",
    "record",
];

/// A validated update.
#[derive(Debug, PartialEq, Eq)]
pub struct Update {
    pub call_id: String,
    pub call_domain: String,
    pub transfer: TransferRequest,
}

/// Parses and checks the body; the error names the field.
pub fn parse(body: &[u8]) -> Result<Update, BadRequest> {
    let obj = BadRequest::object(body)?;
    let known = |k: &str| FIELDS.contains(&k) || route::STREAM_FIELDS.contains(&k);
    if let Some(unknown) = obj.keys().find(|k| !known(k.as_str())) {
        return Err(FieldError::rule(unknown.as_str(), "unknown field").into());
    }
    let call_id = route::string("callId", obj.get("callId")).map_err(FieldError::from)?;
    let call_domain =
        route::string("callDomain", obj.get("callDomain")).map_err(FieldError::from)?;
    let transfer = route::transfer(&obj).map_err(FieldError::from)?;
    Ok(Update {
        call_id,
        call_domain,
        transfer,
    })
}

/// Checks an `Idempotency-Key` header value.
fn check_key(key: Option<&str>) -> Result<Option<String>, FieldError> {
    match key {
        None => Ok(None),
        Some(k) if !k.is_empty() && k.len() <= 255 && k.chars().all(|c| c.is_ascii_graphic()) => {
            Ok(Some(k.to_string()))
        }
        Some(_) => Err(FieldError::rule(
            "Idempotency-Key",
            "must be 1 to 255 printable ASCII characters",
        )),
    }
}

pub async fn handle(api: &Api, body: &[u8], key: Option<&str>) -> Result<Response<Body>, ApiError> {
    let update = parse(body)?;
    let key = check_key(key)?;
    // Any node's callDomain is good in a cluster: the app may hold the
    // owner's and reach another node.
    if update.call_domain != api.call_domain {
        let member = match &api.cluster {
            Some(cluster) => cluster.is_member(&update.call_domain).await?,
            None => false,
        };
        if !member {
            return Err(ApiError::Unknown(Unknown::CallDomain));
        }
    }
    let first = update.transfer.targets[0].clone();
    let request = update.transfer;
    let call = live(api, &update.call_id)?;
    if let Some(stream) = &request.stream {
        reachable(api, &stream.url).await?;
    }
    // A duplicate gets the very answer the first one got.
    call.update(request, key).await?;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "status": "transferring", "callId": update.call_id, "sipUri": first }),
    ))
}

/// Refuses a `streamUrl` whose addresses an API client may not reach,
/// before the call is touched (the opening checks again as it connects).
async fn reachable(api: &Api, url: &str) -> Result<(), FieldError> {
    let parsed = StreamUrl::parse(url).map_err(|e| FieldError::rule("streamUrl", e.to_string()))?;
    api.urls
        .resolve(&parsed.host(), parsed.port())
        .await
        .map(|_| ())
        .map_err(|e| FieldError::rule("streamUrl", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::Mode;

    #[test]
    fn errors_name_the_field() {
        let e = |b: &str| parse(b.as_bytes()).unwrap_err().to_string();
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
        let both = r#"{"callId":"c","callDomain":"d","sipUri":"sip:a@b","sipUris":["sip:a@b"]}"#;
        assert!(e(both).starts_with("sipUris"));
        assert!(e(r#"{"callId":"c","callDomain":"d","sipUris":[]}"#).starts_with("sipUris"));
        assert!(
            e(r#"{"callId":"c","callDomain":"d","sipUris":["sip:a@b","x"]}"#)
                .starts_with("sipUris[1]")
        );
        assert!(
            e(r#"{"callId":"c","callDomain":"d","sipUri":"sip:a@b","mode":"x"}"#)
                .starts_with("mode")
        );
        assert!(check_key(Some("bad key")).is_err());
        assert_eq!(check_key(Some("k-1")).unwrap(), Some("k-1".into()));
        // Exact texts clients read.
        assert_eq!(
            e(r#"{"callId":"c","callDomain":"d","sipUris":["sip:a@b","x"]}"#),
            "sipUris[1]: must be a sip: or sips: URI with a user part, like sip:room@host"
        );
        assert_eq!(
            e(r#"{"callId":"c","callDomain":"d","sipUri":"sip:a@b","headers":{"Via":"x"}}"#),
            "headers.Via: only X- headers and User-to-User may be set"
        );
        assert_eq!(
            check_key(Some("")).unwrap_err().to_string(),
            "Idempotency-Key: must be 1 to 255 printable ASCII characters"
        );
    }

    #[test]
    fn good_body() {
        let u = parse(br#"{"callId":"c","callDomain":"d","sipUri":"sip:room@127.0.0.1:5070;transport=tcp","headers":{"X-A":"1"}}"#).unwrap();
        assert_eq!(
            u.transfer.targets,
            ["sip:room@127.0.0.1:5070;transport=tcp"]
        );
        assert_eq!(
            u.transfer.headers,
            vec![("X-A".to_string(), "1".to_string())]
        );
        assert_eq!(u.transfer.mode, Mode::Bridge);
        let u = parse(
            br#"{"callId":"c","callDomain":"d","sipUris":["sip:a@h","sip:b@h"],"mode":"refer"}"#,
        )
        .unwrap();
        assert_eq!(u.transfer.targets, ["sip:a@h", "sip:b@h"]);
        assert_eq!(u.transfer.mode, Mode::Refer);
    }
}
