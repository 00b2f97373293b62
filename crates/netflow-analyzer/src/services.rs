//! Service names by port, as the original gets them with
//! `socket.getservbyport(port)` (no protocol): the first entry of the
//! services database (`/etc/services`, from the `netbase` package on Debian)
//! with that port, any protocol. Read once; a missing file means no names
//! (the table then prints `(<sport> <dport>)`).

use std::collections::HashMap;
use std::path::Path;

/// Port -> service name, first entry wins.
#[derive(Debug, Clone, Default)]
pub struct Services {
    names: HashMap<u16, String>,
}

impl Services {
    /// The system's `/etc/services` (empty when it cannot be read).
    pub fn system() -> Self {
        Self::from_file("/etc/services").unwrap_or_default()
    }

    pub fn from_file(path: impl AsRef<Path>) -> std::io::Result<Self> {
        Ok(Self::parse(&std::fs::read_to_string(path)?))
    }

    /// services(5): `name port/protocol [aliases ...] [# comment]`.
    pub fn parse(text: &str) -> Self {
        let mut names = HashMap::new();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            let mut words = line.split_whitespace();
            let (Some(name), Some(port_proto)) = (words.next(), words.next()) else {
                continue;
            };
            let Some(port) = port_proto
                .split('/')
                .next()
                .and_then(|p| p.parse::<u16>().ok())
            else {
                continue;
            };
            names.entry(port).or_insert_with(|| name.to_string());
        }
        Services { names }
    }

    pub fn name(&self, port: u16) -> Option<&str> {
        self.names.get(&port).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_entry_of_any_protocol_wins() {
        let s = Services::parse(
            "# comment\nfoo 7/udp\necho\t7/tcp\nhttp\t80/tcp\t\twww\t# WWW\n\nbad line\nx 99999/tcp\n",
        );
        assert_eq!(s.name(7), Some("foo"));
        assert_eq!(s.name(80), Some("http"));
        assert_eq!(s.name(99), None);
    }
}
