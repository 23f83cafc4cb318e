//! SIP over TLS with rustls: the acceptor for our `sip.tls` listener (a
//! PEM certificate chain and key) and the connector for room legs to
//! `sips:` / `;transport=tls` URIs (the web PKI roots, plus any extra CA
//! certificates the operator trusts, e.g. a private PBX's).

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_rustls::rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// Why TLS could not be set up. Each names the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or parsed.
    #[error("{path}: {source}")]
    Pem {
        path: PathBuf,
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    /// A PEM file holds no certificate.
    #[error("{path}: no PEM certificate in the file")]
    NoCertificate { path: PathBuf },
    /// rustls refused a certificate of the file (or, with an empty path,
    /// its own default protocol versions).
    #[error("{path}: {source}")]
    Rejected {
        path: PathBuf,
        #[source]
        source: tokio_rustls::rustls::Error,
    },
    /// The certificate and key do not make a server configuration.
    #[error("certificate {cert} with key {key}: {source}")]
    Config {
        cert: PathBuf,
        key: PathBuf,
        #[source]
        source: tokio_rustls::rustls::Error,
    },
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let err = |source| TlsError::Pem {
        path: path.to_path_buf(),
        source,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(err)?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

/// The acceptor for our TLS listener.
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let chain = certificates(cert)?;
    let private = PrivateKeyDer::from_pem_file(key).map_err(|source| TlsError::Pem {
        path: key.to_path_buf(),
        source,
    })?;
    let config = ServerConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .and_then(|b| b.with_no_client_auth().with_single_cert(chain, private))
    .map_err(|source| TlsError::Config {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        source,
    })?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The connector for outgoing TLS legs: web PKI roots plus `extra_ca`.
pub fn connector(extra_ca: Option<&Path>) -> Result<TlsConnector, TlsError> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = extra_ca {
        for cert in certificates(path)? {
            roots.add(cert).map_err(|source| TlsError::Rejected {
                path: path.to_path_buf(),
                source,
            })?;
        }
    }
    let config = ClientConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|source| TlsError::Rejected {
        path: extra_ca.map(Path::to_path_buf).unwrap_or_default(),
        source,
    })?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}
