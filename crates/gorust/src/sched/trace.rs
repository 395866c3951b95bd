//! `GORUST_DEBUG=schedtrace=MS`: one line every MS milliseconds on stderr, like Go's
//! `GODEBUG=schedtrace`.
//!
//! ```text
//! SCHED 1001ms: workers=2 idle=1 searching=0 goroutines=10000 tasks=10001 blocking=0 global=0 local=[12 0] polls=[40211 3920] steals=[0 4] parks=[3 57]
//! ```
//!
//! The tracer is a plain thread holding a `Weak` reference, so it never keeps a runtime alive.

use std::fmt::Write;
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::Shared;
use crate::loom::sync::atomic::Ordering::Acquire;

/// Parses `GORUST_DEBUG` (comma-separated `key=value` pairs) for `schedtrace`.
pub(crate) fn schedtrace_from_env() -> Option<Duration> {
    let v = std::env::var("GORUST_DEBUG").ok()?;
    parse_schedtrace(&v)
}

fn parse_schedtrace(v: &str) -> Option<Duration> {
    v.split(',').find_map(|kv| {
        let (k, val) = kv.split_once('=')?;
        if k.trim() != "schedtrace" {
            return None;
        }
        match val.trim().parse::<u64>() {
            Ok(0) => None,
            Ok(ms) => Some(Duration::from_millis(ms)),
            Err(_) => {
                diag!("gorust: ignoring GORUST_DEBUG schedtrace={val:?}: expected milliseconds");
                None
            }
        }
    })
}

pub(crate) fn start(shared: &Arc<Shared>, every: Duration) {
    let weak: Weak<Shared> = Arc::downgrade(shared);
    let started = std::thread::Builder::new()
        .name("gorust-schedtrace".into())
        .spawn(move || loop {
            std::thread::sleep(every);
            let Some(s) = weak.upgrade() else { return };
            if s.shutdown.load(Acquire) {
                return;
            }
            diag!("{}", line(&s));
        });
    if let Err(e) = started {
        diag!("gorust: GORUST_DEBUG schedtrace is off: its thread cannot start ({e})");
    }
}

pub(crate) fn line(s: &Shared) -> String {
    let m = s.metrics();
    let list = |f: &dyn Fn(&super::metrics::WorkerStats) -> String| {
        m.workers.iter().map(f).collect::<Vec<_>>().join(" ")
    };
    let mut out = String::new();
    let _ = write!(
        out,
        "SCHED {}ms: workers={} idle={} searching={} goroutines={} tasks={} blocking={} global={} local=[{}] polls=[{}] steals=[{}] parks=[{}]",
        s.started.elapsed().as_millis(),
        m.workers.len(),
        m.idle_workers,
        m.searching_workers,
        m.goroutines,
        m.tasks,
        m.blocking_threads,
        m.global_queue_depth,
        list(&|w| w.queue_depth.to_string()),
        list(&|w| w.polls.to_string()),
        list(&|w| w.steals.to_string()),
        list(&|w| w.parks.to_string()),
    );
    out
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn parses_go_style_settings() {
        assert_eq!(
            parse_schedtrace("schedtrace=1000"),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            parse_schedtrace("foo=1, schedtrace=250"),
            Some(Duration::from_millis(250))
        );
        assert_eq!(parse_schedtrace("schedtrace=0"), None);
        assert_eq!(parse_schedtrace("schedtrace=abc"), None);
        assert_eq!(parse_schedtrace("other=5"), None);
    }
}
