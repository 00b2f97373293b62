//! The connection of one `netflow generate` exporter: a connected UDP socket
//! (a datagram per export packet), or a TCP connection carrying IPFIX
//! messages back to back, each delimited by its header's length field
//! (RFC 7011 section 10.4), in clear or over TLS (10.4.2; rustls with the
//! `ring` provider).

use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use clap::ValueEnum;

use crate::generate::exporter_socket;

/// `--transport`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Transport {
    /// A datagram per packet (every version)
    #[default]
    Udp,
    /// IPFIX messages back to back on one TCP connection per exporter (RFC 7011 10.4)
    Tcp,
    /// As tcp, over TLS (needs --tls-ca)
    Tls,
}

/// The TLS client side: whom to trust, what to present, which name to check.
#[derive(Debug, Clone, Default)]
pub struct TlsClient {
    /// CA certificates (PEM) the collector's certificate must chain to.
    pub ca: Option<PathBuf>,
    /// A client certificate chain and key (PEM), for collectors that ask.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// The name the certificate must have [default: the target's host].
    pub server_name: Option<String>,
}

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, what)
}

fn certificates(path: &PathBuf) -> io::Result<Vec<CertificateDer<'static>>> {
    CertificateDer::pem_file_iter(path)
        .map_err(|e| invalid(format!("{}: {e}", path.display())))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("{}: {e}", path.display())))
}

impl TlsClient {
    /// The rustls client configuration (files read now).
    pub fn config(&self) -> io::Result<Arc<ClientConfig>> {
        let ca = self
            .ca
            .as_ref()
            .ok_or_else(|| invalid("--transport tls needs --tls-ca FILE".into()))?;
        let mut roots = RootCertStore::empty();
        for c in certificates(ca)? {
            roots
                .add(c)
                .map_err(|e| invalid(format!("{}: {e}", ca.display())))?;
        }
        if roots.is_empty() {
            return Err(invalid(format!("{}: no PEM certificate", ca.display())));
        }
        let builder =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| invalid(format!("TLS: {e}")))?
                .with_root_certificates(roots);
        let config = match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                let key = PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| invalid(format!("{}: {e}", key.display())))?;
                builder
                    .with_client_auth_cert(certificates(cert)?, key)
                    .map_err(|e| invalid(format!("{}: {e}", cert.display())))?
            }
            (None, None) => builder.with_no_client_auth(),
            _ => return Err(invalid("--tls-cert and --tls-key go together".into())),
        };
        Ok(Arc::new(config))
    }
}

/// The server name to check: `--tls-server-name`, else the host part of
/// `--target` (an IP address or a DNS name).
pub fn server_name(explicit: Option<&str>, target: &str) -> Result<ServerName<'static>, String> {
    let host = match explicit {
        Some(n) => n.to_string(),
        None => {
            let h = target.rsplit_once(':').map_or(target, |(h, _)| h);
            h.trim_start_matches('[').trim_end_matches(']').to_string()
        }
    };
    ServerName::try_from(host.clone()).map_err(|e| format!("TLS server name {host}: {e}"))
}

/// One exporter's way to the collector.
#[derive(Debug)]
pub enum Connection {
    Udp(UdpSocket),
    Tcp(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

/// A TCP connection to `target` from port 0 of `source`.
fn tcp_connect(target: SocketAddr, source: Option<IpAddr>) -> io::Result<TcpStream> {
    let stream = match source {
        None => TcpStream::connect(target)?,
        Some(ip) => {
            let socket = socket2::Socket::new(
                socket2::Domain::for_address(target),
                socket2::Type::STREAM,
                Some(socket2::Protocol::TCP),
            )?;
            socket.bind(&SocketAddr::new(ip, 0).into())?;
            socket.connect(&target.into())?;
            socket.into()
        }
    };
    stream.set_nodelay(true)?;
    Ok(stream)
}

impl Connection {
    /// Open it: a UDP socket bound to port 0 of `source`, or a TCP
    /// connection from it.
    /// `tls`: the client configuration and the server name (TLS only).
    pub fn open(
        transport: Transport,
        target: SocketAddr,
        source: Option<IpAddr>,
        tls: Option<(&Arc<ClientConfig>, &ServerName<'static>)>,
    ) -> io::Result<Connection> {
        match transport {
            Transport::Udp => exporter_socket(target, source).map(Connection::Udp),
            Transport::Tcp => tcp_connect(target, source).map(Connection::Tcp),
            Transport::Tls => {
                let (config, name) = tls.ok_or_else(|| invalid("no TLS configuration".into()))?;
                let mut stream = tcp_connect(target, source)?;
                let mut conn = ClientConnection::new(config.clone(), name.clone())
                    .map_err(|e| invalid(format!("TLS: {e}")))?;
                // The handshake now, so that a refused certificate is an
                // error at the start, not at the first packet.
                while conn.is_handshaking() {
                    conn.complete_io(&mut stream)?;
                }
                Ok(Connection::Tls(Box::new(StreamOwned::new(conn, stream))))
            }
        }
    }

    /// Its local address (the exporter's source address and port).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Connection::Udp(s) => s.local_addr(),
            Connection::Tcp(s) => s.local_addr(),
            Connection::Tls(s) => s.sock.local_addr(),
        }
    }

    /// Send one export packet: a datagram, or a message written whole to
    /// the stream.
    pub fn send(&mut self, packet: &[u8]) -> io::Result<()> {
        match self {
            Connection::Udp(s) => s.send(packet).map(|_| ()),
            Connection::Tcp(s) => s.write_all(packet),
            Connection::Tls(s) => s.write_all(packet),
        }
    }

    /// TCP: end the stream (FIN) after everything written; TLS: close_notify
    /// first; UDP: nothing.
    pub fn finish(&mut self) -> io::Result<()> {
        match self {
            Connection::Udp(_) => Ok(()),
            Connection::Tcp(s) => {
                s.flush()?;
                s.shutdown(std::net::Shutdown::Write)
            }
            Connection::Tls(s) => {
                s.conn.send_close_notify();
                s.flush()?;
                while s.conn.wants_write() {
                    s.conn.write_tls(&mut s.sock)?;
                }
                s.sock.shutdown(std::net::Shutdown::Write)
            }
        }
    }
}
