//! IPFIX over TLS over TCP (RFC 7011 section 10.4.2: TLS as the transport
//! security of a TCP session). rustls with the `ring` provider (pure Rust
//! and assembly: no cmake, no C++), TLS 1.2 and 1.3. The server certificate
//! chain and key come from PEM files; with [`TlsConfig::client_ca`] the
//! exporters must present a certificate signed by one of those CAs (mutual
//! authentication, as RFC 7011 section 11.3 recommends). Framing and
//! sessions are the TCP ones ([`crate::TcpConfig`]).

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

/// TLS settings of the TCP listeners ([`crate::TcpConfig::tls`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// The server's certificate chain, PEM (leaf first).
    pub cert: PathBuf,
    /// Its private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// When set: CA certificates (PEM) the exporters' client certificates
    /// must chain to; connections without one fail the handshake.
    pub client_ca: Option<PathBuf>,
}

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, what)
}

fn certificates(path: &PathBuf) -> io::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| invalid(format!("{}: {e}", path.display())))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(invalid(format!("{}: no PEM certificate", path.display())));
    }
    Ok(certs)
}

/// The rustls server configuration of `config` (files read and checked now).
pub(crate) fn server_config(config: &TlsConfig) -> io::Result<Arc<ServerConfig>> {
    let chain = certificates(&config.cert)?;
    let key = PrivateKeyDer::from_pem_file(&config.key)
        .map_err(|e| invalid(format!("{}: {e}", config.key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(format!("TLS: {e}")))?;
    let builder = match &config.client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for c in certificates(path)? {
                roots
                    .add(c)
                    .map_err(|e| invalid(format!("{}: {e}", path.display())))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| invalid(format!("{}: {e}", path.display())))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let server = builder.with_single_cert(chain, key).map_err(|e| {
        invalid(format!(
            "{} / {}: {e}",
            config.cert.display(),
            config.key.display()
        ))
    })?;
    Ok(Arc::new(server))
}
