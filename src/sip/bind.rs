//! Starting the SIP stack: binds the configured transports, installs our
//! layer, and hands new INVITEs to the application.

use super::dialogs::Shared;
use super::inbound::IncomingInvite;
use super::layer::PinlessLayer;
use super::stack::Stack;
use ezk_sip_core::Endpoint;
use std::net::SocketAddr;
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
    #[error("cannot listen for SIP on {transport} {addr}: {source}")]
    Bind {
        transport: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

// `Stack` is defined in `stack`, which the legs import; starting one needs
// the layer, which needs the legs, so it is done here.
impl Stack {
    /// Binds the configured transports and starts taking requests. New
    /// INVITEs arrive on the returned receiver.
    ///
    /// Hostile input and ezk 0.9.2: a message ezk cannot parse is dropped
    /// without a reply (there is no hook before its parser), and a request
    /// whose Via parses to nothing makes ezk index an empty list and panic
    /// inside the task it spawns for that one message. The task dies alone
    /// (tokio isolates it); the gateway goes on (tests/it/security.rs sends
    /// exactly that). What ezk lets through is checked in `limits`.
    pub async fn start(
        config: StackConfig,
    ) -> Result<(Stack, mpsc::Receiver<IncomingInvite>), StackError> {
        let (invites_tx, invites_rx) = mpsc::channel(config.invite_queue.max(1));
        let shared = Arc::new(Shared::new());
        let mut builder = Endpoint::builder();
        builder.user_agent(concat!("pinless/", env!("CARGO_PKG_VERSION")));
        builder.add_layer(PinlessLayer::new(shared.clone(), invites_tx));

        let (udp_want, tcp_want) = resolve_zero_ports(config.udp, config.tcp);
        let mut udp = None;
        if let Some(addr) = udp_want {
            let handle = builder.bind_udp(addr).await.map_err(|e| StackError::Bind {
                transport: "udp",
                addr,
                source: e,
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
                    source: e,
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
                    source: e,
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
