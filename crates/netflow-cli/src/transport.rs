//! The connection of one `netflow generate` exporter: a connected UDP socket
//! (a datagram per export packet), or a TCP connection carrying IPFIX
//! messages back to back, each delimited by its header's length field
//! (RFC 7011 section 10.4).

use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};

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
}

/// One exporter's way to the collector.
#[derive(Debug)]
pub enum Connection {
    Udp(UdpSocket),
    Tcp(TcpStream),
}

impl Connection {
    /// Open it: a UDP socket bound to port 0 of `source`, or a TCP
    /// connection from it.
    pub fn open(
        transport: Transport,
        target: SocketAddr,
        source: Option<IpAddr>,
    ) -> io::Result<Connection> {
        match transport {
            Transport::Udp => exporter_socket(target, source).map(Connection::Udp),
            Transport::Tcp => {
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
                Ok(Connection::Tcp(stream))
            }
        }
    }

    /// Its local address (the exporter's source address and port).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Connection::Udp(s) => s.local_addr(),
            Connection::Tcp(s) => s.local_addr(),
        }
    }

    /// Send one export packet: a datagram, or a message written whole to
    /// the stream.
    pub fn send(&mut self, packet: &[u8]) -> io::Result<()> {
        match self {
            Connection::Udp(s) => s.send(packet).map(|_| ()),
            Connection::Tcp(s) => s.write_all(packet),
        }
    }

    /// TCP: end the stream (FIN) after everything written; UDP: nothing.
    pub fn finish(&mut self) -> io::Result<()> {
        match self {
            Connection::Udp(_) => Ok(()),
            Connection::Tcp(s) => {
                s.flush()?;
                s.shutdown(std::net::Shutdown::Write)
            }
        }
    }
}
