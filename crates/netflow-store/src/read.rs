//! Reading stored lines back: plain JSON lines or a concatenation of gzip
//! members (the original opens its file in gzip append mode per line).

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;

/// Iterator over the lines of a stored file, without their `\n` (or `\r\n`).
pub struct Lines {
    inner: io::Lines<Box<dyn BufRead + Send>>,
}

impl Iterator for Lines {
    type Item = io::Result<String>;
    fn next(&mut self) -> Option<io::Result<String>> {
        self.inner.next()
    }
}

impl std::fmt::Debug for Lines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Lines")
    }
}

/// Open `path` and iterate its lines: gzip (any number of members, detected
/// by the magic bytes 1f 8b) or plain text. An empty file has no lines.
pub fn read_lines(path: impl AsRef<Path>) -> io::Result<Lines> {
    lines_from(File::open(path)?)
}

/// Like [`read_lines`] for any reader (e.g. stdin).
pub fn lines_from(reader: impl Read + Send + 'static) -> io::Result<Lines> {
    let mut buf = BufReader::new(reader);
    let gzip = {
        let head = buf.fill_buf()?;
        // A short first read could split the magic; gzip's is only 2 bytes and
        // BufReader asks for 8 KiB, so a reader giving 1 byte here is a corner
        // we accept (it is then read as text).
        head.len() >= 2 && head[0] == 0x1f && head[1] == 0x8b
    };
    let inner: Box<dyn BufRead + Send> = if gzip {
        Box::new(BufReader::new(MultiGzDecoder::new(buf)))
    } else {
        Box::new(buf)
    };
    Ok(Lines {
        inner: inner.lines(),
    })
}
