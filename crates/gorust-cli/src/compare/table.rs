//! `compare`'s output for people: the table rows and the SVG chart.

use std::path::Path;

use super::servers::{Peer, ServerDef};
use super::{Level, Medians, Summary};
use crate::chart::{self, Panel, Series};
use crate::load;

pub(super) fn header() -> String {
    format!(
        "   {:>6} {:<16} {:>10} {:>8} {:>8} {:>8} {:>10} {:>9} {:>7}   {:>17} {:>7}",
        "conns",
        "server",
        "req/s",
        "p50",
        "p99",
        "p99.9",
        "CPU µs/req",
        "RSS KiB",
        "errors",
        "gorust/peer req/s",
        "p99"
    )
}

/// A median latency for people.
fn ms(us: f64) -> String {
    load::micros(us.round() as u64)
}

pub(super) fn row(conns: usize, s: &Summary) -> String {
    let name = s.server.name();
    let Some(m) = &s.median else {
        return format!("   {conns:>6} {name:<16} every run failed");
    };
    let errors: u64 = s.runs.iter().map(|r| r.errors).sum();
    let (rps, p99) = match &s.gorust_ratio {
        Some(r) => (
            format!("{:.2}", r.requests_per_sec),
            format!("{:.2}", r.p99),
        ),
        None if s.server == Peer::Gorust => ("1.00".into(), "1.00".into()),
        None => ("-".into(), "-".into()),
    };
    format!(
        "   {conns:>6} {name:<16} {:>10.0} {:>8} {:>8} {:>8} {:>10.2} {:>9.0} {:>7}   {rps:>17} {p99:>7}",
        m.requests_per_sec,
        ms(m.p50_us),
        ms(m.p99_us),
        m.p999_us.map_or("-".into(), ms),
        m.server_cpu_us_per_request,
        m.server_rss_kib,
        errors,
    )
}

/// Median requests/s and p99 against connections, a line per server.
pub(super) fn write_chart(
    path: &Path,
    title: &str,
    servers: &[ServerDef],
    levels: &[Level],
) -> Result<(), String> {
    let series = |f: fn(&Medians) -> f64| -> Vec<Series> {
        servers
            .iter()
            .map(|def| Series {
                name: def.peer.name().to_string(),
                points: levels
                    .iter()
                    .filter_map(|l| {
                        let s = l.servers.iter().find(|s| s.server == def.peer)?;
                        Some((l.connections as f64, f(s.median.as_ref()?)))
                    })
                    .collect(),
            })
            .collect()
    };
    let panels = [
        Panel {
            title: "HTTP hello: requests per second (median)".into(),
            y_label: "requests/s".into(),
            series: series(|m| m.requests_per_sec),
        },
        Panel {
            title: "p99 latency (median)".into(),
            y_label: "p99 latency, ms".into(),
            series: series(|m| m.p99_us / 1000.0),
        },
    ];
    chart::write_svg(path, title, &panels)
}
