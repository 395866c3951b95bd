//! Running one measurement: a child process with a time limit, whose stdout holds one line of
//! `key=value` fields.

use std::io::Read;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// What a measurement printed, or why it printed nothing usable.
pub type Fields = Vec<(String, String)>;

/// Runs `cmd`, kills it after `limit`, and parses the `key=value` fields of its stdout.
pub fn measure(mut cmd: Command, limit: Duration) -> Result<Fields, String> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    super::peers::dies_with_parent(&mut cmd);
    let mut child = cmd.spawn().map_err(|e| format!("cannot start: {e}"))?;
    // Drain both pipes on threads, so a chatty child cannot block on a full pipe.
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if start.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("timed out after {} s (killed)", limit.as_secs()));
            }
            Ok(None) => thread::sleep(Duration::from_millis(2)),
            Err(e) => {
                // Our own child, by its PID: not left running when we cannot watch it.
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("wait: {e}"));
            }
        }
    };
    let out = out.join().unwrap_or_default();
    let err = err.join().unwrap_or_default();
    if !status.success() {
        let first = err.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        return Err(format!("{status}: {first}"));
    }
    let fields: Fields = out
        .split_whitespace()
        .filter_map(|f| f.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    if fields.is_empty() {
        return Err(format!("no result printed (stdout: {:?})", out.trim()));
    }
    Ok(fields)
}

/// The value of `key` in `fields`, as a number.
pub fn field(fields: &Fields, key: &str) -> Result<f64, String> {
    fields
        .iter()
        .find(|(k, _)| k == key)
        .ok_or_else(|| format!("no {key}= in the output"))?
        .1
        .parse()
        .map_err(|e| format!("{key}: {e}"))
}

fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_string(&mut s);
        }
        s
    })
}
