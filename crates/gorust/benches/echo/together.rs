//! `--together`: each server measured at the same time as a reference server, for A/B work.
//!
//! The interleaved runs (the default) compare servers run one after the other, and on this
//! machine the host's placement of its two vCPUs changes every 10–60 s and moves a server's CPU
//! per round trip by 25% or more between two runs; five interleaved rounds do not settle a 5%
//! difference. Here both servers of a pair run at once: both pinned to CPU 0, each with its own
//! load thread, both pinned to CPU 1, started together and measured over windows of the same
//! length. A placement change then hits both, and their ratio stays: two copies of the same
//! server (an A/A run) measured within 3% of each other in every round of session 15 (most
//! within 1%), where the same pairs interleaved spread over ±10–40%.
//!
//! What it measures is not the interleaved runs' figure. The two servers share CPU 0 in time
//! slices, so each finds its lines colder at the start of its slice than when it runs alone:
//! its CPU per round trip is higher and its round trips per second are about half. The ratio
//! between the two is what this is for, to decide whether a change helps; issue 3's table stays
//! the interleaved runs'.
//!
//! The first server listed (`--servers`) is the reference; every other server is paired with
//! it once per round, in an order that starts one server later each round. The report is, per
//! configuration and server, the median, lowest and highest of its CPU per round trip over the
//! reference's in the same pair. Round trips per second over the reference's say less: the two
//! loads share CPU 1 and the two servers CPU 0, so neither side sets a pair's pace alone.
//! `--servers gorust,gorust` is an A/A run, the method's own noise.

use std::sync::Barrier;
use std::time::Duration;

use super::{load, median, pin_to, start, Measured, Server};

pub fn run(servers: &[Server], configs: &[(usize, usize)], rounds: usize, secs: u64) {
    let Some((reference, others)) = servers.split_first() else {
        println!("echo --together: no servers");
        return;
    };
    if others.is_empty() {
        println!("echo --together: name at least two servers (the first is the reference)");
        return;
    }
    println!(
        "echo --together: each of {:?} at once with {} (both on CPU 0, loads on CPU 1), \
         {rounds} round(s) of {secs} s",
        others.iter().map(|s| s.name).collect::<Vec<_>>(),
        reference.name
    );
    let measure = Duration::from_secs(secs);
    let mut port = super::first_port() + 1000;
    println!(
        "\n{:>6} {:>6}  {:<10} {:>14} {:>16} {:>18} {:>12} {:>12}",
        "conns",
        "bytes",
        "server",
        "cpu vs ref",
        "lowest–highest",
        "rt/s vs ref",
        "cpu µs/rt",
        "user µs/rt"
    );
    for &(conns, size) in configs {
        let mut pairs: Vec<Vec<(Measured, Measured)>> = vec![Vec::new(); others.len()];
        for round in 0..rounds {
            for k in 0..others.len() {
                let oi = (round + k) % others.len();
                let port = super::next_port(&mut port, 2);
                // Which of the two starts first, on the lower port, with the first load thread,
                // alternates by round: a position in a pair can move CPU per round trip.
                match pair(
                    reference,
                    &others[oi],
                    round % 2 == 1,
                    port,
                    conns,
                    size,
                    measure,
                ) {
                    Ok(p) => pairs[oi].push(p),
                    Err(e) => super::run_failed(&format!(
                        "echo --together: {} with {} at {conns} × {size} B: {e}",
                        others[oi].name, reference.name
                    )),
                }
            }
        }
        for (s, ps) in others.iter().zip(&pairs) {
            let cpu: Vec<f64> = ps.iter().map(|(r, o)| o.cpu_ns / r.cpu_ns).collect();
            let lo = cpu.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = cpu.iter().copied().fold(0.0, f64::max);
            let rts = median(
                ps.iter()
                    .map(|(r, o)| o.rt_per_sec / r.rt_per_sec)
                    .collect(),
            );
            let own = median(ps.iter().map(|(_, o)| o.cpu_ns).collect());
            let user = median(ps.iter().map(|(_, o)| o.user_ns).collect());
            let f =
                |v: Option<f64>, scale: f64| v.map_or("-".into(), |x| format!("{:.2}", x * scale));
            let range = if cpu.is_empty() {
                "-".to_string()
            } else {
                format!("{lo:.3}–{hi:.3}")
            };
            println!(
                "{conns:>6} {size:>6}  {:<10} {:>14} {:>16} {:>18} {:>12} {:>12}",
                s.name,
                median(cpu).map_or("-".into(), |x| format!("{x:.3}")),
                range,
                f(rts, 1.0),
                f(own, 1e-3),
                f(user, 1e-3),
            );
        }
    }
}

/// One pair: `a` and `b` serve at once, each loaded by its own thread; both loads open their
/// connections, wait for each other, then warm up and measure windows of the same length
/// (each load takes its own marks, so the windows match to within a few milliseconds).
/// `b_first`: start `b` first, on `port`. Returns `a`'s figures, then `b`'s.
fn pair(
    a: &Server,
    b: &Server,
    b_first: bool,
    port: u16,
    conns: usize,
    size: usize,
    measure: Duration,
) -> Result<(Measured, Measured), String> {
    if b_first {
        let (rb, ra) = pair(b, a, false, port, conns, size, measure)?;
        return Ok((ra, rb));
    }
    let (child_a, pid_a) = start(a, port)?;
    let (child_b, pid_b) = start(b, port + 1)?;
    let (addr_a, addr_b) = (
        format!("127.0.0.1:{port}"),
        format!("127.0.0.1:{}", port + 1),
    );
    let connected = Barrier::new(2);
    let warmup = Duration::from_millis(500);
    let serve_load = |addr: &str, pid| match pin_to(super::cpus().1) {
        Ok(()) => load(addr, conns, size, warmup, measure, pid, Some(&connected)),
        Err(e) => {
            connected.wait(); // the other load must not wait for this one for ever
            Err(e)
        }
    };
    let (ra, rb) = std::thread::scope(|sc| {
        let ta = sc.spawn(|| serve_load(&addr_a, pid_a));
        let tb = sc.spawn(|| serve_load(&addr_b, pid_b));
        (ta.join().unwrap(), tb.join().unwrap())
    });
    drop((child_a, child_b));
    Ok((ra?, rb?))
}
