//! Opening inputs with a progress bar on stderr (indicatif) for large files:
//! the bar follows the bytes read from the file (compressed bytes for gzip),
//! and is hidden when stderr is not a terminal or the file is small.

use std::fs::File;
use std::io::{self, IsTerminal};
use std::path::Path;
use std::time::Duration;

pub use indicatif::ProgressBar;
use indicatif::ProgressStyle;

use crate::flow::FlowReader;

/// Files smaller than this read too fast for a bar to help.
pub const MIN_BAR_BYTES: u64 = 16 << 20;

/// `path` (or stdin when `None`) as a [`FlowReader`], with the bar that
/// follows it (call `finish_and_clear` on it when done). A missing file is
/// an `io::ErrorKind::NotFound` error.
pub fn open_with_progress(path: Option<&Path>) -> io::Result<(FlowReader, ProgressBar)> {
    let Some(path) = path else {
        return Ok((FlowReader::from_reader(io::stdin())?, ProgressBar::hidden()));
    };
    if crate::columns::is_columns_path(path) {
        // Read by blocks with positioned reads: no byte stream to follow.
        return Ok((FlowReader::open(path)?, ProgressBar::hidden()));
    }
    let file = File::open(path)?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let bar = if io::stderr().is_terminal() && len >= MIN_BAR_BYTES {
        let bar = ProgressBar::new(len);
        bar.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_message(path.display().to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    } else {
        ProgressBar::hidden()
    };
    let reader = FlowReader::from_reader(bar.wrap_read(file))?;
    Ok((reader, bar))
}
