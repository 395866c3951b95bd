//! std's per-call timeouts (`set_read_timeout`/`set_write_timeout`), shared by every socket
//! type. Each blocking call reads them once and passes them to `Registration::io` as its own
//! deadline, beside the descriptor's Go-style deadline.

use std::io;
use std::sync::Mutex;
use std::time::Duration;

#[derive(Debug, Default)]
pub(super) struct Timeouts(Mutex<(Option<Duration>, Option<Duration>)>);

impl Timeouts {
    fn get(&self) -> (Option<Duration>, Option<Duration>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn read(&self) -> Option<Duration> {
        self.get().0
    }

    pub(super) fn write(&self) -> Option<Duration> {
        self.get().1
    }

    /// `Some(ZERO)` is an error, as in std.
    pub(super) fn set_read(&self, t: Option<Duration>) -> io::Result<()> {
        check(t)?;
        self.0.lock().unwrap_or_else(|e| e.into_inner()).0 = t;
        Ok(())
    }

    pub(super) fn set_write(&self, t: Option<Duration>) -> io::Result<()> {
        check(t)?;
        self.0.lock().unwrap_or_else(|e| e.into_inner()).1 = t;
        Ok(())
    }

    /// A copy for a cloned handle.
    pub(super) fn duplicate(&self) -> Timeouts {
        Timeouts(Mutex::new(self.get()))
    }
}

/// Validates a std-style timeout: `Some(ZERO)` is an error, as in std.
pub(super) fn check(t: Option<Duration>) -> io::Result<()> {
    if t == Some(Duration::ZERO) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "cannot set a 0 duration timeout",
        ));
    }
    Ok(())
}
