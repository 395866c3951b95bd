//! `--idle N`: what an idle connection costs each server (issue 4's memory figure).
//!
//! For each server, in turn and for up to 3 interleaved rounds: start it (pinned as for the
//! throughput runs), read its `VmRSS` once it is ready, open N connections and echo one 4 KiB
//! message on each (so that every connection has read and written once, and any per-connection
//! buffer has been used), wait a second for the server to settle with all N connections idle,
//! and read `VmRSS` again. The figure is (after − before) / N, in KiB. The kernel's socket
//! buffers are not in any process's RSS, so a plain C epoll loop with one shared buffer is the
//! floor (≈ 0).

use std::io::{Read, Write};
use std::time::Duration;

use super::{median, Server};

const MESSAGE: usize = 4096;

pub fn run(servers: &[Server], conns: usize, rounds: usize, json: bool) {
    println!(
        "echo --idle: {conns} idle connections per server after one {MESSAGE} B echo each, \
         {rounds} round(s)"
    );
    let mut port = super::first_port() + 500;
    let mut per: Vec<Vec<f64>> = vec![Vec::new(); servers.len()];
    for _ in 0..rounds.max(1) {
        for (si, s) in servers.iter().enumerate() {
            let port = super::next_port(&mut port, 1);
            match one(s, port, conns) {
                Ok(kib) => per[si].push(kib),
                Err(e) => super::run_failed(&format!("echo --idle: {}: {e}", s.name)),
            }
        }
    }
    println!("\n{:<10} {:>14}", "server", "KiB per conn");
    let mut js = Vec::new();
    for (s, v) in servers.iter().zip(per) {
        let m = median(v);
        let shown = m.map_or("-".to_string(), |k| format!("{k:.2}"));
        println!("{:<10} {:>14}", s.name, shown);
        js.push(format!(
            "{{\"server\":\"{}\",\"conns\":{conns},\"kib_per_conn\":{}}}",
            s.name,
            m.map_or("null".into(), |k| format!("{k:.3}"))
        ));
    }
    if json {
        println!("[{}]", js.join(","));
    }
}

fn vm_rss_kib(pid: u32) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("status: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| "no VmRSS".to_string())
}

fn one(s: &Server, port: u16, conns: usize) -> Result<f64, String> {
    let (child, pid) = super::start(s, port)?;
    std::thread::sleep(Duration::from_millis(200));
    let before = vm_rss_kib(pid)?;
    let msg = vec![0x5au8; MESSAGE];
    let mut back = vec![0u8; MESSAGE];
    let mut socks = Vec::with_capacity(conns);
    for _ in 0..conns {
        let to = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let mut c = std::net::TcpStream::connect_timeout(&to, super::CONNECT_LIMIT)
            .map_err(|e| format!("connect: {e}"))?;
        c.set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        c.write_all(&msg).map_err(|e| format!("write: {e}"))?;
        c.read_exact(&mut back).map_err(|e| format!("read: {e}"))?;
        if back != msg {
            return Err("the server sent back bytes it was not sent".to_string());
        }
        socks.push(c);
    }
    std::thread::sleep(Duration::from_secs(1));
    let after = vm_rss_kib(pid)?;
    drop(socks);
    drop(child);
    Ok(after.saturating_sub(before) as f64 / conns as f64)
}
