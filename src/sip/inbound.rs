//! An INVITE we received: 100 Trying is sent on arrival; the application
//! then rings, rejects or answers it. A CANCEL before the answer is
//! reported through `cancelled()`; the owner then answers 487. An INVITE
//! may first be held in early media (`progress`: 183 with SDP, see
//! `early`), and answered later.

use super::dialog::{Leg, LegSetup, spawn_2xx_retransmit};
use super::dialogs::{DialogKey, Shared, random_tag};
use super::early::{CallerLeft, EarlyDialog, EarlyNews, EarlySetup, first_rseq, requires_100rel};
use super::headers::custom_headers;
use super::leg_state::SipTransport;
use super::stack::Stack;
use super::target::Target;
use super::timer;
use super::trace::{Tap, Trace, print};
use bytes::Bytes;
use bytesstr::BytesStr;
use ezk_sip_core::transaction::ServerInvTsx;
use ezk_sip_core::transport::OutgoingResponse;
use ezk_sip_core::{Endpoint, IncomingRequest};
use ezk_sip_types::header::typed::{Contact, FromTo, Routing};
use ezk_sip_types::print::AppendCtx;
use ezk_sip_types::uri::SipUriUserPart;
use ezk_sip_types::{Name, StatusCode};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// What the application needs to know of an incoming INVITE.
#[derive(Debug, Clone)]
pub struct InviteInfo {
    /// Where the INVITE came from (IP and port).
    pub source: SocketAddr,
    /// "udp", "tcp" or "tls".
    pub transport: &'static str,
    pub call_id: String,
    /// The To URI as text, and its user part.
    pub to_uri: String,
    pub to_user: Option<String>,
    /// The From URI as text, and its user part.
    pub from_uri: String,
    pub from_user: Option<String>,
    /// User part of the Request-URI.
    pub request_user: Option<String>,
    /// `X-…` and `User-to-User` headers, in order, as received.
    pub custom_headers: Vec<(String, String)>,
    /// Every header as received (name, value), for tests and tracing.
    pub all_headers: Vec<(String, String)>,
    /// The SDP offer (may be empty).
    pub sdp: Bytes,
}

/// An INVITE not yet answered.
pub struct IncomingInvite {
    endpoint: Endpoint,
    shared: Arc<Shared>,
    request: IncomingRequest,
    /// Taken when the final response goes out.
    tsx: Option<ServerInvTsx>,
    local_tag: String,
    branch: String,
    cancel_rx: oneshot::Receiver<()>,
    cancelled: bool,
    /// Set once a 183 with SDP went out: the early dialog it began.
    early: Option<EarlyDialog>,
    /// The call's SIP ladder, which this INVITE begins (or continues,
    /// after a digest challenge).
    trace: Trace,
    /// What the INVITE came on, as the trace names it.
    transport: SipTransport,
    pub info: InviteInfo,
}

impl IncomingInvite {
    /// Takes a new INVITE off the wire: sends 100 Trying and registers it
    /// for CANCEL. Gives the request back if it lacks what a dialog needs.
    pub(crate) async fn new(
        endpoint: Endpoint,
        shared: Arc<Shared>,
        mut request: IncomingRequest,
    ) -> Result<Self, Box<IncomingRequest>> {
        if request.headers.get_named::<Contact>().is_err() {
            return Err(Box::new(request));
        }
        let transport = shared.transport_kind(&request.tp_info.transport);
        let info = info_of(&request, transport.as_str());
        let trace = (shared.challenged.take(&info.call_id)).unwrap_or_else(|| shared.new_trace());
        trace.received(&request.tp_info, transport);
        let branch = request.tsx_key.branch().to_string();
        let mut tsx = endpoint.create_server_inv_tsx(&mut request);
        let mut trying = endpoint.create_response(&request, StatusCode::TRYING, None);
        let at = std::time::SystemTime::now();
        match tsx.respond_provisional(&mut trying).await {
            Ok(()) => trace.sent(at, &trying.parts, transport),
            Err(e) => tracing::debug!(error = %e, "100 Trying not sent"),
        }
        let (cancel_tx, cancel_rx) = oneshot::channel();
        shared
            .pending
            .insert(branch.clone(), (cancel_tx, trace.clone()));
        Ok(Self {
            endpoint,
            shared,
            request,
            tsx: Some(tsx),
            local_tag: random_tag(),
            branch,
            cancel_rx,
            cancelled: false,
            early: None,
            trace,
            transport,
            info,
        })
    }

    /// The call's SIP ladder (shared with the legs this INVITE leads to).
    pub fn trace(&self) -> Trace {
        self.trace.clone()
    }

    fn tap(&self) -> Tap<'_> {
        Tap {
            trace: &self.trace,
            transport: self.transport,
        }
    }

    /// Resolves when the caller CANCELs (or at once if it already has).
    pub async fn cancelled(&mut self) {
        if self.cancelled {
            return;
        }
        if (&mut self.cancel_rx).await.is_ok() {
            self.cancelled = true;
        } else {
            std::future::pending::<()>().await
        }
    }

    fn response(
        &self,
        stack: Option<&Stack>,
        code: u16,
        reason: Option<&'static str>,
    ) -> OutgoingResponse {
        let mut r = self.endpoint.create_response(
            &self.request,
            StatusCode::from(code),
            reason.map(BytesStr::from_static),
        );
        let tag = self.local_tag.clone();
        let _ = r.msg.headers.edit(Name::TO, |to: &mut FromTo| {
            if to.tag.is_none() {
                to.tag = Some(tag.into());
            }
        });
        if let Some(stack) = stack {
            let _ = self
                .request
                .headers
                .clone_into(&mut r.msg.headers, Name::RECORD_ROUTE);
            r.msg.headers.insert(
                Name::CONTACT,
                stack.contact_for(&self.request.tp_info.transport),
            );
        }
        r
    }

    /// Sends 180 Ringing.
    pub async fn ring(&mut self, stack: &Stack) {
        let mut r = self.response(Some(stack), 180, None);
        let Some(tsx) = self.tsx.as_mut() else { return };
        let at = std::time::SystemTime::now();
        match tsx.respond_provisional(&mut r).await {
            Ok(()) => self.trace.sent(at, &r.parts, self.transport),
            Err(e) => tracing::debug!(error = %e, "180 Ringing not sent"),
        }
    }

    /// Sends 183 Session Progress with `sdp` (early media): reliably
    /// (RFC 3262) when the INVITE requires 100rel, and opens the early
    /// dialog that answers PRACK. Once only; a later call does nothing.
    pub async fn progress(&mut self, stack: &Stack, sdp: &str) -> Result<(), ezk_sip_core::Error> {
        if self.early.is_some() {
            return Ok(());
        }
        let mut r = self.response(Some(stack), 183, None);
        let rseq = requires_100rel(&self.request).then(first_rseq);
        if let Some(rseq) = rseq {
            r.msg.headers.insert(Name::REQUIRE, "100rel");
            r.msg.headers.insert(Name::RSEQ, rseq.to_string());
        }
        r.msg.headers.insert(Name::CONTENT_TYPE, "application/sdp");
        r.msg.body = Bytes::from(sdp.to_string().into_bytes());
        let Some(tsx) = self.tsx.as_mut() else {
            return Err(ezk_sip_core::Error::RequestTimedOut);
        };
        let at = std::time::SystemTime::now();
        tsx.respond_provisional(&mut r).await?;
        self.trace.sent(at, &r.parts, self.transport);
        self.early = Some(EarlyDialog::start(EarlySetup {
            endpoint: self.endpoint.clone(),
            shared: self.shared.clone(),
            trace: self.trace.clone(),
            transport: self.transport,
            key: self.key(),
            response: r,
            rseq,
            invite_cseq: self.request.base_headers.cseq.cseq,
        }));
        Ok(())
    }

    /// The next thing the owner of an INVITE in early media must act on:
    /// the caller gave up (a CANCEL, or in the early dialog a BYE or a
    /// reliable 183 never PRACKed), the 2xx may go out now (when
    /// `answer_wanted`: the reliable 183 was PRACKed), or a key press in
    /// an INFO. Without an early dialog, only a CANCEL is news.
    pub async fn early_news(&mut self, answer_wanted: bool) -> EarlyNews {
        let Self {
            early,
            cancel_rx,
            cancelled,
            ..
        } = self;
        let early = async {
            match early.as_mut() {
                Some(e) => e.news(answer_wanted).await,
                None if answer_wanted => EarlyNews::Answerable,
                None => std::future::pending().await,
            }
        };
        let cancel = async {
            if !*cancelled {
                if cancel_rx.await.is_err() {
                    std::future::pending::<()>().await
                }
                *cancelled = true;
            }
        };
        tokio::select! {
            biased;
            _ = cancel => EarlyNews::Left(CallerLeft::Cancelled),
            news = early => news,
        }
    }

    /// Whether the 2xx may go out now (see `accept`): `Err` when the
    /// caller left, or a reliable 183 is not PRACKed yet.
    pub fn early_ready(&mut self) -> Result<(), CallerLeft> {
        if self.cancelled || self.cancel_rx.try_recv().is_ok() {
            self.cancelled = true;
            return Err(CallerLeft::Cancelled);
        }
        match self.early.as_mut() {
            Some(e) => e.ready(),
            None => Ok(()),
        }
    }

    /// The dialog key our answers (183 or 200) set up.
    fn key(&self) -> DialogKey {
        DialogKey {
            call_id: self.info.call_id.clone(),
            local_tag: self.local_tag.clone(),
        }
    }

    /// Answers with a final error (4xx–6xx), with extra headers.
    pub async fn reject(self, code: u16, reason: Option<&'static str>, headers: &[(&str, String)]) {
        let mut r = self.response(None, code, reason);
        for (name, value) in headers {
            r.msg.headers.insert(name.to_string(), value.clone());
        }
        self.finish_failure(r).await;
    }

    /// Answers with the refusal's code, phrase and headers.
    pub async fn refuse(self, r: &super::refusal::Refusal) {
        self.reject(r.code, r.phrase, &r.headers).await;
    }

    async fn finish_failure(mut self, mut response: OutgoingResponse) {
        self.shared.pending.remove(&self.branch);
        let Some(tsx) = self.tsx.take() else { return };
        print(&mut response);
        self.tap()
            .sent(std::time::SystemTime::now(), &response.parts);
        // A challenge: the retry with credentials continues this ladder.
        if matches!(response.msg.line.code.into_u16(), 401 | 407) {
            self.shared
                .challenged
                .keep(&self.info.call_id, self.trace.clone());
        }
        tokio::spawn(async move {
            if let Err(e) = tsx.respond_failure(response).await {
                tracing::debug!(error = %e, "final error response not acknowledged");
            }
        });
    }

    /// Answers 200 OK with `sdp` and returns the established leg. Over UDP
    /// the 200 is retransmitted until the ACK arrives; without one after
    /// 32 s the leg reports `LegEvent::AckTimeout`. It never waits: an
    /// INVITE in early media is answered once `early_news` said
    /// `Answerable` and `early_ready` holds (RFC 3262 §3: no 2xx before
    /// the PRACK of a reliable 183 with SDP).
    pub async fn accept(mut self, stack: &Stack, sdp: String) -> Result<Leg, ezk_sip_core::Error> {
        let Some(tsx) = self.tsx.take() else {
            return Err(ezk_sip_core::Error::RequestTimedOut);
        };
        // A CANCEL from now on is too late (RFC 3261 §9.2).
        self.shared.pending.remove(&self.branch);
        if let Some(early) = self.early.take() {
            early.finish();
        }
        let mut response = self.response(Some(stack), 200, None);
        response
            .msg
            .headers
            .insert(Name::CONTENT_TYPE, "application/sdp");
        response.msg.body = Bytes::from(sdp.clone().into_bytes());
        let min_se = self
            .shared
            .min_se
            .load(std::sync::atomic::Ordering::Relaxed);
        let session_timer = timer::negotiate(&self.request, min_se);
        for (name, value) in session_timer
            .as_ref()
            .map(timer::answer_headers)
            .into_iter()
            .flatten()
        {
            response.msg.headers.insert(name, value);
        }

        let request = &self.request;
        let remote_from = request.base_headers.from.default_print_ctx().to_string();
        let mut local = request.base_headers.to.clone();
        local.tag = Some(self.local_tag.clone().into());
        let remote_target = request
            .headers
            .get_named::<Contact>()
            .map(|c| c.uri.uri)
            .unwrap_or_else(|_| request.line.uri.clone());
        let route_set: Vec<String> = request
            .headers
            .get::<Vec<Routing>>(Name::RECORD_ROUTE)
            .unwrap_or_default()
            .iter()
            .map(|r| r.default_print_ctx().to_string())
            .collect();
        let transport = request.tp_info.transport.clone();
        let destination = transport
            .connection_remote()
            .unwrap_or(request.tp_info.source);
        let reliable = !transport.is_udp();
        let key = self.key();
        // Register before the 200 leaves, so the ACK finds us (this
        // replaces an early dialog's entry).
        let (tx, rx) = mpsc::unbounded_channel();
        self.shared.dialogs.insert(key.clone(), tx.clone());
        let mut leg = Leg::new(LegSetup {
            endpoint: self.endpoint.clone(),
            shared: self.shared.clone(),
            key,
            local_from: local.default_print_ctx().to_string(),
            remote_to: remote_from,
            remote_target,
            route_set,
            cseq: rand::random::<u16>() as u32,
            remote_cseq: self.request.base_headers.cseq.cseq,
            target: {
                let kind = self.shared.transport_kind(&transport);
                let via = stack.sent_by(kind, transport.bound().port());
                Target::new(kind, transport, destination, via)
            },
            contact: stack.contact_for(&self.request.tp_info.transport),
            local_sdp: sdp,
            timer: session_timer,
            rx,
            trace: self.trace.clone(),
        });
        print(&mut response);
        let at = std::time::SystemTime::now();
        let parts = response.parts.clone();
        let accepted = tsx.respond_success(response).await?;
        self.tap().sent(at, &parts);
        let ack_rx = leg.expect_ack();
        let retransmits = (self.trace.clone(), self.transport, parts);
        spawn_2xx_retransmit(accepted, reliable, ack_rx, tx, retransmits);
        Ok(leg)
    }
}

impl Drop for IncomingInvite {
    fn drop(&mut self) {
        self.shared.pending.remove(&self.branch);
        // Ended in early media without a 2xx: the early dialog is over.
        if self.early.take().is_some() {
            self.shared.dialogs.remove(&self.key());
        }
    }
}

fn user_of(part: &SipUriUserPart) -> Option<String> {
    match part {
        SipUriUserPart::Empty => None,
        SipUriUserPart::User(u) => Some(u.to_string()),
        SipUriUserPart::UserPw(u) => Some(u.user.to_string()),
    }
}

fn info_of(request: &IncomingRequest, transport: &'static str) -> InviteInfo {
    let to = &request.base_headers.to.uri.uri;
    let from = &request.base_headers.from.uri.uri;
    let uri_text = |u: &ezk_sip_types::uri::SipUri| {
        let mut u = u.clone();
        // Parameters and headers are not part of the address users see.
        u.uri_params = Default::default();
        u.header_params = Default::default();
        u.default_print_ctx().to_string()
    };
    let all_headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(n, v)| (n.as_print_str().to_string(), v.to_string()))
        .collect();
    InviteInfo {
        source: request.tp_info.source,
        transport,
        call_id: request.base_headers.call_id.0.to_string(),
        to_uri: uri_text(to),
        to_user: user_of(&to.user_part),
        from_uri: uri_text(from),
        from_user: user_of(&from.user_part),
        request_user: user_of(&request.line.uri.user_part),
        custom_headers: custom_headers(&all_headers),
        all_headers,
        sdp: request.body.clone(),
    }
}
