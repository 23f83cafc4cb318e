//! REGISTER to a provider's registrar (RFC 3261 §10): one request sent
//! and its final answer read into data, and the CRLF keep-alive (RFC 5626
//! §3.5.1) that keeps a NAT binding open between them. When to send what
//! is decided elsewhere (`crate::register`, sans-IO).

use super::outbound::tls_for_sips;
use super::stack::Stack;
use super::stack::host_literal;
use ezk_sip_core::Request;
/// A flow's connection state (TCP/TLS), as ezk reports it.
pub use ezk_sip_core::transport::TransportState;
use ezk_sip_core::transport::{TargetTransportInfo, TpHandle};
use ezk_sip_types::host::{Host, HostPort};
use ezk_sip_types::uri::SipUri;
use ezk_sip_types::{Method, Name};
use std::net::SocketAddr;

/// One REGISTER to send.
#[derive(Debug, Clone)]
pub struct RegisterRequest {
    /// The Request-URI: `sip:sip.example.net`.
    pub registrar: String,
    /// Sent there instead (and named in a Route), if set.
    pub outbound_proxy: Option<String>,
    /// To and From.
    pub aor: String,
    pub from_tag: String,
    pub call_id: String,
    pub cseq: u32,
    /// Our Contact URI (without brackets).
    pub contact: String,
    pub expires: u32,
    /// `Authorization` or `Proxy-Authorization` (name, value).
    pub credentials: Option<(&'static str, String)>,
}

/// A registrar's final answer, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterAnswer {
    pub code: u16,
    pub reason: String,
    /// The lifetime granted to our Contact: its `expires` parameter in
    /// the 2xx, else the `Expires` header.
    pub granted: Option<u32>,
    pub min_expires: Option<u32>,
    pub retry_after: Option<u32>,
    /// `WWW-Authenticate` (false) or `Proxy-Authenticate` (true) value.
    pub challenge: Option<(bool, String)>,
    /// How the registrar saw us: `received` and `rport` of our Via.
    pub seen_as: Option<(String, Option<u16>)>,
}

/// Where a registration's requests went: the address (for the door,
/// which takes INVITEs on the binding only from it) and the transport.
#[derive(Clone)]
pub struct Flow {
    pub peer: SocketAddr,
    pub transport: TpHandle,
}

/// Why no answer came.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("not a valid SIP URI: {0}")]
    BadUri(String),
    #[error("cannot send REGISTER: {0}")]
    Send(#[source] ezk_sip_core::Error),
    #[error("no answer to REGISTER")]
    TimedOut,
}

impl Stack {
    /// Our Contact URI for a registration: `user` at this node's public
    /// host and the listener's port for the registrar's transport, or at
    /// `seen_as` (the address the registrar saw us at behind a NAT); with
    /// the host and port it names.
    pub fn registration_contact(
        &self,
        user: &str,
        registrar: &str,
        seen_as: Option<&(String, u16)>,
    ) -> (String, (String, u16)) {
        let (port, param) = self.listener_for_uri(registrar);
        let (host, port) = match seen_as {
            Some((host, port)) => (host.clone(), *port),
            None => (self.public_host.to_string(), port),
        };
        let uri = format!("sip:{user}@{}:{port}{param}", host_literal(&host));
        (uri, (host, port))
    }

    /// Sends `r` and waits for its final answer (the transaction's own
    /// timer, 32 s at most, bounds the wait).
    pub async fn register(
        &self,
        r: &RegisterRequest,
    ) -> Result<(RegisterAnswer, Flow), RegisterError> {
        let parse = |text: &str| -> Result<SipUri, RegisterError> {
            let text = tls_for_sips(text);
            text.parse()
                .map_err(|_| RegisterError::BadUri(text.to_string()))
        };
        let uri = parse(&r.registrar)?;
        let next_hop = match &r.outbound_proxy {
            Some(proxy) => parse(proxy)?,
            None => uri.clone(),
        };
        let mut request = Request::new(Method::REGISTER, uri);
        let h = &mut request.headers;
        h.insert(Name::FROM, format!("<{}>;tag={}", r.aor, r.from_tag));
        h.insert(Name::TO, format!("<{}>", r.aor));
        h.insert(Name::CALL_ID, r.call_id.clone());
        h.insert(Name::CSEQ, format!("{} REGISTER", r.cseq));
        h.insert(Name::MAX_FORWARDS, "70");
        if let Some(proxy) = &r.outbound_proxy {
            h.insert(Name::ROUTE, format!("<{};lr>", tls_for_sips(proxy)));
        }
        h.insert(Name::CONTACT, format!("<{}>", r.contact));
        h.insert(Name::EXPIRES, r.expires.to_string());
        if let Some((name, value)) = &r.credentials {
            h.insert(*name, value.clone());
        }
        let (handle, destination) = self
            .endpoint
            .select_transport(&next_hop)
            .await
            .map_err(RegisterError::Send)?;
        let kind = self.shared.transport_kind(&handle);
        let port = self
            .sent_by(kind, handle.bound().port())
            .port
            .unwrap_or(5060);
        // RFC 3581: `rport` asks the registrar to answer to the address
        // and port our REGISTER came from, which behind a NAT is the
        // mapping, not our Via. ezk writes its Via without parameters
        // of ours (it has no hook for them), so the parameter rides in
        // the sent-by text, which ezk prints as it is given.
        let via = HostPort {
            host: Host::Name(format!("{}:{port};rport", host_literal(&self.public_host)).into()),
            port: None,
        };
        let flow = Flow {
            peer: destination,
            transport: handle.clone(),
        };
        let mut target = TargetTransportInfo {
            via_host_port: Some(via),
            transport: Some((handle, destination)),
        };
        let mut tsx = self
            .endpoint
            .send_request(request, &mut target)
            .await
            .map_err(RegisterError::Send)?;
        let response = match tsx.receive_final().await {
            Ok(r) => r,
            Err(ezk_sip_core::Error::RequestTimedOut) => return Err(RegisterError::TimedOut),
            Err(e) => return Err(RegisterError::Send(e)),
        };
        let raw = |name: Name| {
            response
                .headers
                .get_raw(&name)
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
        };
        let number = |name: Name| raw(name).first().and_then(|v| leading_number(v));
        let code = response.line.code.into_u16();
        let challenge = match raw(Name::WWW_AUTHENTICATE).into_iter().next() {
            Some(c) => Some((false, c)),
            None => raw(Name::PROXY_AUTHENTICATE)
                .into_iter()
                .next()
                .map(|c| (true, c)),
        };
        let granted =
            granted_for(&raw(Name::CONTACT), &r.contact).or_else(|| number(Name::EXPIRES));
        let answer = RegisterAnswer {
            code,
            reason: response
                .line
                .reason
                .as_ref()
                .map(|r| r.to_string())
                .unwrap_or_default(),
            granted,
            min_expires: number(Name::MIN_EXPIRES),
            retry_after: number(Name::RETRY_AFTER),
            challenge,
            seen_as: raw(Name::VIA).first().and_then(|v| seen_as(v)),
        };
        Ok((answer, flow))
    }

    /// Sends the CRLF keep-alive on a registration's UDP flow (over TCP
    /// and TLS the connection itself is watched instead).
    pub async fn keep_alive(&self, flow: &Flow) -> std::io::Result<()> {
        if flow.transport.is_udp() {
            flow.transport.send(b"\r\n\r\n", flow.peer).await
        } else {
            Ok(())
        }
    }
}

/// The number a header value starts with (`3600`, `120;duration=60`).
fn leading_number(value: &str) -> Option<u32> {
    let digits: String = value
        .trim()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// The `expires` parameter of the Contact (among the registrar's list,
/// which names every binding of the AOR) that is ours.
fn granted_for(contacts: &[String], ours: &str) -> Option<u32> {
    let ours = ours.to_ascii_lowercase();
    contacts
        .iter()
        .flat_map(|line| split_contacts(line))
        .find(|c| {
            let lower = c.to_ascii_lowercase();
            let uri = lower
                .split_once('<')
                .and_then(|(_, rest)| rest.split_once('>'))
                .map_or(lower.as_str(), |(uri, _)| uri);
            uri == ours
        })
        .and_then(|c| {
            let params = c.rsplit_once('>').map_or(c.as_str(), |(_, p)| p);
            params.split(';').find_map(|p| {
                let (name, value) = p.split_once('=')?;
                name.trim()
                    .eq_ignore_ascii_case("expires")
                    .then(|| leading_number(value))?
            })
        })
}

/// A Contact header value's entries (commas outside `<…>` and quotes).
fn split_contacts(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut depth, mut quoted, mut start) = (0, false, 0);
    for (i, ch) in line.char_indices() {
        match ch {
            '"' => quoted = !quoted,
            '<' if !quoted => depth += 1,
            '>' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                out.push(line[start..i].trim().to_string());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(line[start..].trim().to_string());
    out
}

/// `received` and `rport` of a Via value.
fn seen_as(via: &str) -> Option<(String, Option<u16>)> {
    let mut received = None;
    let mut rport = None;
    for p in via.split(';').skip(1) {
        let (name, value) = p.split_once('=').unwrap_or((p, ""));
        match name.trim().to_ascii_lowercase().as_str() {
            "received" => received = Some(value.trim().to_string()),
            "rport" => rport = value.trim().parse().ok(),
            _ => {}
        }
    }
    match (received, rport) {
        (None, None) => None,
        (received, rport) => Some((received.unwrap_or_default(), rport)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grant_is_read_from_our_own_contact() {
        let ours = "sip:reg-p@192.0.2.1:5060";
        let lines = vec![
            "<sip:other@198.51.100.7:5060>;expires=3000, <sip:reg-p@192.0.2.1:5060>;expires=120"
                .to_string(),
        ];
        assert_eq!(granted_for(&lines, ours), Some(120));
        let quoted = vec!["\"a, b\" <sip:reg-p@192.0.2.1:5060>;q=0.5;expires=90".to_string()];
        assert_eq!(granted_for(&quoted, ours), Some(90));
        assert_eq!(granted_for(&lines, "sip:nobody@x"), None);
    }

    #[test]
    fn received_and_rport_are_read_from_the_via() {
        assert_eq!(
            seen_as("SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK1;received=203.0.113.7;rport=40312"),
            Some(("203.0.113.7".into(), Some(40312)))
        );
        assert_eq!(
            seen_as("SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK1;rport"),
            None
        );
        assert_eq!(leading_number(" 120;duration=60"), Some(120));
    }
}
