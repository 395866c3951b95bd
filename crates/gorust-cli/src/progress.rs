//! Progress bars for `demo` and `compare`, on stderr and only when stderr is a terminal, so
//! that results on stdout, CI logs and tests stay clean.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar of `len` steps; hidden unless stderr is a terminal.
pub fn bar(len: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "{spinner} {elapsed_precise} [{bar:30}] {pos}/{len} {wide_msg}",
    )
    .map(|s| s.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    pb.set_style(style);
    pb.enable_steady_tick(Duration::from_millis(100));
    pb
}

/// Prints a line on stdout without tearing the bar. A closed stdout (`| head`) is not an
/// error worth stopping a measurement for: the line is dropped.
pub fn println(pb: &ProgressBar, line: impl AsRef<str>) {
    pb.suspend(|| {
        let _ = writeln!(std::io::stdout(), "{}", line.as_ref());
    });
}

/// Writes a whole document on stdout; a closed stdout is an error.
pub fn print_document(text: &str) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")
        .and_then(|_| out.flush())
        .map_err(|e| format!("stdout: {e}"))
}
