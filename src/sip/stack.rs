//! The SIP endpoint: transports, our layer, and what every leg needs to
//! build its messages (Contact per transport, user agent).

use super::inbound::IncomingInvite;
use super::layer::{PinlessLayer, Shared};
use ezk_sip_core::Endpoint;
use ezk_sip_core::transport::TpHandle;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// Where to listen and what to call ourselves.
#[derive(Clone)]
pub struct StackConfig {
    pub udp: Option<SocketAddr>,
    pub tcp: Option<SocketAddr>,
    /// SIP over TLS: where, and with which certificate (see `tls`).
    pub tls: Option<(SocketAddr, TlsAcceptor)>,
    /// For legs we open to `sips:` / `;transport=tls` URIs.
    pub tls_connector: Option<TlsConnector>,
    /// Host written in Contact headers.
    pub public_host: String,
    /// Longest queue of new INVITEs not yet taken by the application;
    /// beyond it, INVITEs get 503.
    pub invite_queue: usize,
}

/// Why the SIP stack could not start.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    /// A listening socket could not be bound.
    #[error("cannot listen for SIP on {transport} {addr}: {reason}")]
    Bind {
        transport: &'static str,
        addr: SocketAddr,
        reason: String,
    },
}

/// A running SIP endpoint. Cheap to clone.
#[derive(Clone)]
pub struct Stack {
    pub(crate) endpoint: Endpoint,
    pub(crate) shared: Arc<Shared>,
    udp: Option<SocketAddr>,
    tcp: Option<SocketAddr>,
    tls: Option<SocketAddr>,
    public_host: Arc<str>,
}

impl Stack {
    /// Binds the configured transports and starts taking requests. New
    /// INVITEs arrive on the returned receiver.
    ///
    /// Hostile input and ezk 0.9.2: a message ezk cannot parse is dropped
    /// without a reply (there is no hook before its parser), and a request
    /// whose Via parses to nothing makes ezk index an empty list and panic
    /// inside the task it spawns for that one message. The task dies alone
    /// (tokio isolates it); the gateway goes on (tests/security.rs sends
    /// exactly that). What ezk lets through is checked in `limits`.
    pub async fn start(
        config: StackConfig,
    ) -> Result<(Stack, mpsc::Receiver<IncomingInvite>), StackError> {
        let (invites_tx, invites_rx) = mpsc::channel(config.invite_queue.max(1));
        let shared = Arc::new(Shared::new(invites_tx));
        let mut builder = Endpoint::builder();
        builder.user_agent(concat!("pinless/", env!("CARGO_PKG_VERSION")));
        builder.add_layer(PinlessLayer::new(shared.clone()));

        let (udp_want, tcp_want) = resolve_zero_ports(config.udp, config.tcp);
        let mut udp = None;
        if let Some(addr) = udp_want {
            let handle = builder.bind_udp(addr).await.map_err(|e| StackError::Bind {
                transport: "udp",
                addr,
                reason: e.to_string(),
            })?;
            udp = Some(handle.bound());
        }
        let mut tcp = None;
        if let Some(addr) = tcp_want {
            builder
                .listen_tcp(addr)
                .await
                .map_err(|e| StackError::Bind {
                    transport: "tcp",
                    addr,
                    reason: e.to_string(),
                })?;
            tcp = Some(addr);
        }
        let mut tls = None;
        if let Some((want, acceptor)) = config.tls {
            let addr = resolve_zero_ports(None, Some(want)).1.unwrap_or(want);
            builder
                .listen_rustls(addr, acceptor)
                .await
                .map_err(|e| StackError::Bind {
                    transport: "tls",
                    addr,
                    reason: e.to_string(),
                })?;
            let _ = shared.tls_port.set(addr.port());
            tls = Some(addr);
        }
        if let Some(connector) = config.tls_connector {
            builder.use_rustls_connector(connector);
        }
        let endpoint = builder.build();
        let stack = Stack {
            endpoint,
            shared,
            udp,
            tcp,
            tls,
            public_host: config.public_host.into(),
        };
        Ok((stack, invites_rx))
    }

    /// The bound UDP address, if UDP is enabled.
    pub fn udp_addr(&self) -> Option<SocketAddr> {
        self.udp
    }

    /// The bound TCP address, if TCP is enabled.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp
    }

    /// The bound TLS address, if TLS is enabled.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls
    }

    /// The Contact URI for messages on `transport`: our public host and the
    /// port of that transport's listener, so in-dialog requests come back
    /// the way the dialog started.
    pub(crate) fn contact_for(&self, transport: &TpHandle) -> String {
        let (port, param) = match self.shared.transport_name(transport) {
            "udp" => (self.udp.map(|a| a.port()), ""),
            "tls" => (self.tls.map(|a| a.port()), ";transport=tls"),
            _ => (self.tcp.map(|a| a.port()), ";transport=tcp"),
        };
        let port = port.unwrap_or_else(|| transport.bound().port());
        format!(
            "<sip:pinless@{}:{port}{param}>",
            host_literal(&self.public_host)
        )
    }

    /// A Contact for a request we are about to send over an as yet
    /// unselected transport (the URI tells which).
    pub(crate) fn contact_for_uri(&self, uri: &str) -> String {
        let lower = uri.to_ascii_lowercase();
        let tls = lower.starts_with("sips:") || lower.contains("transport=tls");
        let tcp = lower.contains("transport=tcp");
        let (port, param) = match (tls, tcp, self.udp, self.tcp) {
            (true, ..) if self.tls.is_some() => {
                (self.tls.map(|a| a.port()).unwrap_or(5061), ";transport=tls")
            }
            (_, true, _, Some(t)) => (t.port(), ";transport=tcp"),
            (_, _, Some(u), _) => (u.port(), ""),
            (_, _, None, Some(t)) => (t.port(), ";transport=tcp"),
            (_, _, None, None) => (5060, ""),
        };
        format!(
            "<sip:pinless@{}:{port}{param}>",
            host_literal(&self.public_host)
        )
    }
}

/// IPv6 literals go in brackets in URIs.
fn host_literal(host: &str) -> String {
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => format!("[{v6}]"),
        _ => host.to_string(),
    }
}

/// Port 0 (tests, ephemeral setups): ezk's `listen_tcp` does not report the
/// port it bound, so pick a concrete free port ourselves first, and use the
/// same one for UDP and TCP when both ask for 0 on one IP, as SIP usually
/// does. A port taken between the probe and the bind fails the bind with
/// a clear error rather than misreporting.
fn resolve_zero_ports(
    udp: Option<SocketAddr>,
    tcp: Option<SocketAddr>,
) -> (Option<SocketAddr>, Option<SocketAddr>) {
    let Some(t) = tcp.filter(|t| t.port() == 0) else {
        return (udp, tcp);
    };
    for _ in 0..20 {
        let Ok(probe) = std::net::TcpListener::bind(t) else {
            break;
        };
        let Ok(local) = probe.local_addr() else { break };
        let port = local.port();
        let same_ip_udp = udp.filter(|u| u.port() == 0 && u.ip() == t.ip());
        if let Some(u) = same_ip_udp {
            // Both on one port: only accept a port free for UDP too.
            if std::net::UdpSocket::bind(SocketAddr::new(u.ip(), port)).is_err() {
                continue;
            }
            return (Some(SocketAddr::new(u.ip(), port)), Some(local));
        }
        return (udp, Some(local));
    }
    (udp, tcp)
}
