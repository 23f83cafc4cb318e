//! Answering a request on the spot, outside any leg's logic: errors to
//! requests that match nothing, and the routine answers of a dialog (200 to
//! BYE, 405, 481…). Used by the layer and by legs alike; a leg passes its
//! `Tap` so that the answer goes into its call's trace.

use super::dialogs::random_tag;
use super::refusal::Refusal;
use super::trace::{Tap, print};
use bytesstr::BytesStr;
use ezk_sip_core::transport::OutgoingResponse;
use ezk_sip_core::{Endpoint, IncomingRequest};
use ezk_sip_types::{Method, Name, StatusCode};

/// Answers `request` with `code` (statelessly as far as we are concerned:
/// ezk's server transaction still absorbs retransmissions).
pub(crate) async fn reply(
    endpoint: &Endpoint,
    request: IncomingRequest,
    code: u16,
    reason: Option<&'static str>,
    tap: Option<Tap<'_>>,
) {
    let response = endpoint.create_response(
        &request,
        StatusCode::from(code),
        reason.map(BytesStr::from_static),
    );
    respond(endpoint, request, with_to_tag(response), tap).await;
}

/// Answers `request` with `code` and extra headers.
pub(crate) async fn reply_with(
    endpoint: &Endpoint,
    request: IncomingRequest,
    code: u16,
    headers: &[(Name, String)],
    tap: Option<Tap<'_>>,
) {
    let mut response = endpoint.create_response(&request, StatusCode::from(code), None);
    for (name, value) in headers {
        response.msg.headers.insert(name.clone(), value.clone());
    }
    respond(endpoint, request, with_to_tag(response), tap).await;
}

/// Answers `request` 200 with extra headers and an SDP body (an UPDATE
/// that carried an offer: RFC 3311 wants the answer in its 2xx).
pub(crate) async fn reply_sdp(
    endpoint: &Endpoint,
    request: IncomingRequest,
    headers: &[(Name, String)],
    sdp: &str,
    tap: Option<Tap<'_>>,
) {
    let mut response = endpoint.create_response(&request, StatusCode::OK, None);
    for (name, value) in headers {
        response.msg.headers.insert(name.clone(), value.clone());
    }
    response
        .msg
        .headers
        .insert(Name::CONTENT_TYPE, "application/sdp");
    response.msg.body = bytes::Bytes::from(sdp.to_string());
    respond(endpoint, request, with_to_tag(response), tap).await;
}

/// Answers `request` with a refusal's code, phrase and headers.
pub(crate) async fn refuse(endpoint: &Endpoint, request: IncomingRequest, refusal: &Refusal) {
    let mut response = endpoint.create_response(
        &request,
        StatusCode::from(refusal.code),
        refusal.phrase.map(BytesStr::from_static),
    );
    for (name, value) in &refusal.headers {
        response.msg.headers.insert(name.to_string(), value.clone());
    }
    respond(endpoint, request, with_to_tag(response), None).await;
}

/// RFC 3261 §8.2.6.2: every response but 100 carries a To-tag; ezk copies
/// the request's To as it is, so add one when it has none.
pub(crate) fn with_to_tag(mut response: OutgoingResponse) -> OutgoingResponse {
    if response.msg.line.code != StatusCode::TRYING {
        let _ =
            response
                .msg
                .headers
                .edit(Name::TO, |to: &mut ezk_sip_types::header::typed::FromTo| {
                    if to.tag.is_none() {
                        to.tag = Some(random_tag().into());
                    }
                });
    }
    response
}

/// Sends `response` in a server transaction of its own (recorded in
/// `tap`'s trace, if any).
pub(crate) async fn respond(
    endpoint: &Endpoint,
    mut request: IncomingRequest,
    mut response: OutgoingResponse,
    tap: Option<Tap<'_>>,
) {
    if let Some(tap) = tap {
        // Printed now so that the trace has the very bytes sent.
        print(&mut response);
        tap.sent(std::time::SystemTime::now(), &response.parts);
    }
    let result = if request.line.method == Method::INVITE {
        // A final error to an INVITE waits for the ACK (up to 32 s over
        // UDP); do that off the receive path.
        let tsx = endpoint.create_server_inv_tsx(&mut request);
        tokio::spawn(async move {
            if let Err(e) = tsx.respond_failure(response).await {
                tracing::debug!(error = %e, "INVITE error response not acknowledged");
            }
        });
        Ok(())
    } else {
        endpoint
            .create_server_tsx(&mut request)
            .respond(response)
            .await
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "response not delivered");
    }
}
