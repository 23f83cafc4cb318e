//! The requests we send inside a leg's dialog: BYE, REFER, INFO, and the
//! probes and refreshes (OPTIONS, UPDATE, re-INVITE with its ACK). Each
//! goes out in the background; the caller gets its final status.

use super::dialog::Leg;
use super::dialogs::Answer;
use super::leg_state::SipTransport;
use super::timer::request_headers;
use super::trace::Trace;
use bytes::Bytes;
use ezk_sip_core::transaction::TsxKey;
use ezk_sip_core::transaction::consts::T1;
use ezk_sip_core::transport::TargetTransportInfo;
use ezk_sip_core::{Endpoint, Request};
use ezk_sip_types::uri::SipUri;
use ezk_sip_types::{Method, Name};
use std::future::Future;
use std::pin::Pin;
use tokio::sync::oneshot;

/// What a request waits for before it goes out.
type Waiting = Pin<Box<dyn Future<Output = ()> + Send>>;

impl Leg {
    /// A new request in the dialog, with the next CSeq.
    fn request(&mut self, method: Method) -> Request {
        self.s.cseq = self.s.cseq.wrapping_add(1);
        self.in_dialog(method)
    }

    /// A request in the dialog with the current CSeq (the ACK of a
    /// re-INVITE shares its INVITE's).
    fn in_dialog(&self, method: Method) -> Request {
        let mut request = Request::new(method.clone(), self.s.remote_target.clone());
        let h = &mut request.headers;
        h.insert(Name::FROM, self.s.local_from.clone());
        h.insert(Name::TO, self.s.remote_to.clone());
        h.insert(Name::CALL_ID, self.s.key.call_id.clone());
        h.insert(Name::CSEQ, format!("{} {method}", self.s.cseq));
        h.insert(Name::MAX_FORWARDS, "70");
        for route in &self.s.route_set {
            h.insert(Name::ROUTE, route.clone());
        }
        request
    }

    /// Asks the peer to call `target` itself (RFC 3515 REFER); `headers`
    /// ride in the Refer-To URI, for peers that copy them into their
    /// INVITE. Resolves to the REFER's final status (None: no answer).
    /// Progress then arrives as `LegEvent::ReferProgress`. Right after we
    /// answered the peer's INVITE, the REFER waits for the ACK: over UDP
    /// it could overtake our 200, and the peer would answer 481 to a
    /// dialog it does not know yet (bounded: without an ACK in 64·T1 the
    /// leg is dead anyway).
    pub fn refer(&mut self, target: &str, headers: &[(String, String)]) -> Answer {
        let mut request = self.request(Method::REFER);
        let h = &mut request.headers;
        h.insert(
            Name::REFER_TO,
            format!("<{}>", uri_with_headers(target, headers)),
        );
        h.insert("Referred-By", self.s.local_from.clone());
        h.insert(Name::CONTACT, self.s.contact.clone());
        self.send_after(request, Some(Box::pin(self.acked())))
    }

    /// Sends OPTIONS in the dialog: is the peer still there, and does it
    /// still know the dialog (481 if not)?
    pub fn options(&mut self) -> Answer {
        let request = self.request(Method::OPTIONS);
        self.send(request)
    }

    /// Sends INFO with `body` of `content_type` (RFC 6086; DTMF as
    /// `application/dtmf-relay`, say).
    pub fn info(&mut self, content_type: &str, body: &str) -> Answer {
        let mut request = self.request(Method::INFO);
        request
            .headers
            .insert(Name::CONTENT_TYPE, content_type.to_string());
        request.body = Bytes::from(body.to_string().into_bytes());
        self.send(request)
    }

    /// Sends UPDATE without a body (RFC 3311): a session refresh that
    /// leaves media as it is.
    pub fn update(&mut self) -> Answer {
        let mut request = self.request(Method::UPDATE);
        let h = &mut request.headers;
        h.insert(Name::CONTACT, self.s.contact.clone());
        for (name, value) in self
            .s
            .timer
            .as_ref()
            .map(request_headers)
            .into_iter()
            .flatten()
        {
            h.insert(name, value);
        }
        self.send(request)
    }

    /// Sends a re-INVITE offering the SDP we already gave (a session
    /// refresh), and ACKs its 2xx.
    pub fn reinvite(&mut self) -> Answer {
        let mut request = self.request(Method::INVITE);
        let h = &mut request.headers;
        h.insert(Name::CONTACT, self.s.contact.clone());
        h.insert(Name::CONTENT_TYPE, "application/sdp");
        for (name, value) in self
            .s
            .timer
            .as_ref()
            .map(request_headers)
            .into_iter()
            .flatten()
        {
            h.insert(name, value);
        }
        request.body = Bytes::from(self.s.local_sdp.clone().into_bytes());
        let ack = self.in_dialog(Method::ACK);
        let endpoint = self.s.endpoint.clone();
        let (target, hops) = (self.s.target.clone(), self.next_hops());
        let trace = (self.s.trace.clone(), target.kind);
        let (tx, rx) = oneshot::channel();
        tokio::spawn(async move {
            let code = match target.info(&endpoint, &hops).await {
                Ok(info) => invite_and_ack(&endpoint, request, ack, info, trace).await,
                Err(e) => {
                    tracing::debug!(error = %e, "re-INVITE not sent");
                    None
                }
            };
            let _ = tx.send(code);
        });
        rx
    }

    /// Hangs up: sends BYE in the background and forgets the dialog. The
    /// BYE's own transaction retransmits it over UDP.
    pub fn hangup(self) {
        drop(self.hangup_answered());
    }

    /// Hangs up like `hangup`, and tells how the peer answered the BYE.
    pub fn hangup_answered(self) -> Answer {
        self.bye(None)
    }

    /// Hangs up with a `Reason` header (RFC 3326) saying why, e.g.
    /// `SIP;cause=503;text="shutting down"`.
    pub fn hangup_because(self, reason: &str) {
        drop(self.bye(Some(reason)));
    }

    fn bye(mut self, reason: Option<&str>) -> Answer {
        if self.ended {
            let (tx, rx) = oneshot::channel();
            let _ = tx.send(None);
            return rx;
        }
        self.ended = true;
        let mut request = self.request(Method::BYE);
        if let Some(reason) = reason {
            request.headers.insert("Reason", reason.to_string());
        }
        self.send(request)
    }

    /// Sends a non-INVITE request in the background.
    fn send(&self, request: Request) -> Answer {
        self.send_after(request, None)
    }

    /// Sends `request` once `first` resolved (within 64·T1; else it is not
    /// sent, and the answer is None).
    fn send_after(&self, request: Request, first: Option<Waiting>) -> Answer {
        let endpoint = self.s.endpoint.clone();
        let (target, hops) = (self.s.target.clone(), self.next_hops());
        let trace = self.s.trace.clone();
        let (tx, rx) = oneshot::channel();
        tokio::spawn(async move {
            if let Some(first) = first
                && tokio::time::timeout(T1 * 64, first).await.is_err()
            {
                tracing::debug!(method = %request.line.method, "not sent: no ACK of our 2xx");
                let _ = tx.send(None);
                return;
            }
            let method = request.line.method.clone();
            let kind = target.kind;
            let at = std::time::SystemTime::now();
            let sent = match target.info(&endpoint, &hops).await {
                Ok(mut info) => endpoint.send_request(request, &mut info).await,
                Err(e) => Err(e),
            };
            if let Ok(tsx) = &sent {
                trace.sent(at, &tsx.request().parts, kind);
            }
            // Provisional answers to these (rare) are not in the trace:
            // ezk's transaction passes over them here.
            let code = match sent {
                Ok(mut tsx) => match tsx.receive_final().await {
                    Ok(response) => {
                        trace.received(&response.tp_info, kind);
                        Some(response.line.code.into_u16())
                    }
                    Err(e) => {
                        tracing::debug!(%method, error = %e, "request in dialog not answered");
                        None
                    }
                },
                Err(e) => {
                    tracing::debug!(%method, error = %e, "request in dialog not sent");
                    None
                }
            };
            let _ = tx.send(code);
        });
        rx
    }

    /// Where to connect when the dialog has no open connection: the first
    /// Route (loose routing), then the remote target (RFC 3261 §12.2.1.1).
    fn next_hops(&self) -> Vec<SipUri> {
        let route = self.s.route_set.first().and_then(|r| {
            let inner = r.split_once('<')?.1.split_once('>')?.0;
            inner.parse::<SipUri>().ok()
        });
        route
            .into_iter()
            .chain(std::iter::once(self.s.remote_target.clone()))
            .collect()
    }
}

/// Sends a re-INVITE, follows it to its final answer, and ACKs a 2xx and
/// its retransmissions (a new transaction each, RFC 3261 §13.2.2.4).
async fn invite_and_ack(
    endpoint: &Endpoint,
    request: Request,
    ack: Request,
    mut info: TargetTransportInfo,
    (trace, kind): (Trace, SipTransport),
) -> Option<u16> {
    let at = std::time::SystemTime::now();
    let mut tsx = match endpoint.send_invite(request, &mut info).await {
        Ok(tsx) => {
            trace.sent(at, &tsx.request().parts, kind);
            tsx
        }
        Err(e) => {
            tracing::debug!(error = %e, "re-INVITE not sent");
            return None;
        }
    };
    let code = loop {
        match tsx.receive().await {
            Ok(Some(r)) => {
                trace.received(&r.tp_info, kind);
                if r.line.code.into_u16() >= 200 {
                    break r.line.code.into_u16();
                }
            }
            Ok(None) => return None,
            Err(e) => {
                tracing::debug!(error = %e, "re-INVITE not answered");
                return None;
            }
        }
    };
    if code / 100 != 2 {
        return Some(code);
    }
    let mut ack = match endpoint.create_outgoing(ack, &mut info).await {
        Ok(ack) => ack,
        Err(e) => {
            tracing::debug!(error = %e, "ACK not sent");
            return Some(code);
        }
    };
    let via = endpoint.create_via(
        &ack.parts.transport,
        &TsxKey::client(&Method::ACK),
        info.via_host_port.clone(),
    );
    ack.msg.headers.insert_named_front(&via);
    let at = std::time::SystemTime::now();
    if endpoint.send_outgoing_request(&mut ack).await.is_ok() {
        trace.sent(at, &ack.parts, kind);
    }
    let endpoint = endpoint.clone();
    tokio::spawn(async move {
        while let Ok(Some(r)) = tsx.receive().await {
            trace.received(&r.tp_info, kind);
            if r.line.code.into_u16() / 100 == 2 {
                let at = std::time::SystemTime::now();
                if endpoint.send_outgoing_request(&mut ack).await.is_ok() {
                    trace.sent(at, &ack.parts, kind);
                }
            }
        }
    });
    Some(code)
}

/// `target` with `headers` appended as URI headers (`?X-A=1&X-B=2`),
/// escaped as RFC 3261 §25.1 asks of `hname` and `hvalue`.
fn uri_with_headers(target: &str, headers: &[(String, String)]) -> String {
    fn escape(text: &str) -> String {
        let mut out = String::new();
        for b in text.bytes() {
            let c = b as char;
            if c.is_ascii_alphanumeric() || "-_.!~*'()[]/:+$".contains(c) {
                out.push(c);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    }
    if headers.is_empty() {
        return target.to_string();
    }
    let query: Vec<String> = headers
        .iter()
        .map(|(n, v)| format!("{}={}", escape(n), escape(v)))
        .collect();
    let sep = if target.contains('?') { '&' } else { '?' };
    format!("{target}{sep}{}", query.join("&"))
}

#[cfg(test)]
mod tests {
    use super::uri_with_headers;

    #[test]
    fn refer_to_carries_escaped_headers() {
        let h = vec![
            ("X-Lang".to_string(), "de".to_string()),
            ("X-Note".to_string(), "a b&c=d".to_string()),
        ];
        assert_eq!(
            uri_with_headers("sip:room@r:5070", &h),
            "sip:room@r:5070?X-Lang=de&X-Note=a%20b%26c%3Dd"
        );
        assert_eq!(uri_with_headers("sip:room@r", &[]), "sip:room@r");
    }
}
