//! Medians, paired ratios, the table and the JSON of `compare`.

use std::fmt::Write as _;

/// The programs compared, in the order each round runs them.
pub const PROGRAMS: [&str; 3] = ["gorust", "tokio", "go"];

/// One timed scenario on one worker count: per program, one sample per round (`None`: that
/// measurement failed or the program was skipped).
pub struct Timed {
    pub scenario: &'static str,
    pub workers: usize,
    pub ops: u64,
    pub samples: [Vec<Option<f64>>; 3],
    pub errors: Vec<String>,
}

/// One memory measurement series: per program, per round.
pub struct Memory {
    pub workers: usize,
    pub goroutines: u64,
    /// KiB per goroutine, per round.
    pub kib: [Vec<Option<f64>>; 3],
    /// Goroutines (tasks) the runtime counted while all were parked, last successful round.
    pub live: [Option<u64>; 3],
    /// Entries of /proc/self/maps while all were parked, last successful round.
    pub maps: [Option<u64>; 3],
    pub errors: Vec<String>,
}

pub fn median(xs: impl IntoIterator<Item = f64>) -> Option<f64> {
    let mut v: Vec<f64> = xs.into_iter().collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    })
}

impl Timed {
    pub fn median(&self, p: usize) -> Option<f64> {
        median(self.samples[p].iter().flatten().copied())
    }

    /// Median over the rounds where both ran of gorust's figure divided by program `p`'s.
    pub fn ratio(&self, p: usize) -> Option<f64> {
        median(
            self.samples[0]
                .iter()
                .zip(&self.samples[p])
                .filter_map(|(g, o)| Some((*g)? / (*o)?)),
        )
    }
}

impl Memory {
    pub fn median(&self, p: usize) -> Option<f64> {
        median(self.kib[p].iter().flatten().copied())
    }
}

fn cell(v: Option<f64>, prec: usize) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.prec$}"))
}

fn count(v: Option<u64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

pub fn table(timed: &[Timed], memory: &[Memory], max_map_count: Option<u64>) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<12} {:>7} {:>9} {:>13} {:>12} {:>10} {:>13} {:>10}",
        "scenario",
        "workers",
        "ops",
        "gorust ns/op",
        "tokio ns/op",
        "go ns/op",
        "gorust/tokio",
        "gorust/go"
    );
    for t in timed {
        let _ = writeln!(
            s,
            "{:<12} {:>7} {:>9} {:>13} {:>12} {:>10} {:>13} {:>10}",
            t.scenario,
            t.workers,
            t.ops,
            cell(t.median(0), 1),
            cell(t.median(1), 1),
            cell(t.median(2), 1),
            cell(t.ratio(1), 2),
            cell(t.ratio(2), 2),
        );
    }
    if !memory.is_empty() {
        let _ = writeln!(
            s,
            "\nmemory: goroutines parked at once; KiB of VmRSS growth per goroutine (median), \
             live count and /proc/self/maps entries while parked (vm.max_map_count = {})",
            count(max_map_count)
        );
        let _ = writeln!(
            s,
            "{:<12} {:>7} {:>9} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
            "scenario",
            "workers",
            "parked",
            "gorust KiB",
            "tokio KiB",
            "go KiB",
            "gorust live",
            "gorust maps",
            "go maps"
        );
        for m in memory {
            let _ = writeln!(
                s,
                "{:<12} {:>7} {:>9} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
                "mem",
                m.workers,
                m.goroutines,
                cell(m.median(0), 2),
                cell(m.median(1), 2),
                cell(m.median(2), 2),
                count(m.live[0]),
                count(m.maps[0]),
                count(m.maps[2]),
            );
        }
    }
    for (name, errors) in timed
        .iter()
        .map(|t| (t.scenario, &t.errors))
        .chain(memory.iter().map(|m| ("mem", &m.errors)))
    {
        for e in errors {
            let _ = writeln!(s, "failed: {name}: {e}");
        }
    }
    s
}

fn json_num(v: Option<f64>) -> String {
    v.map_or_else(|| "null".to_string(), |v| format!("{v:.3}"))
}

fn json_list(v: &[Option<f64>]) -> String {
    let items: Vec<String> = v.iter().map(|x| json_num(*x)).collect();
    format!("[{}]", items.join(","))
}

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

pub fn json(rounds: usize, quick: bool, timed: &[Timed], memory: &[Memory]) -> String {
    let mut items = Vec::new();
    for t in timed {
        let programs: Vec<String> = PROGRAMS
            .iter()
            .enumerate()
            .map(|(i, p)| {
                format!(
                    "\"{p}\":{{\"median_ns_per_op\":{},\"ns_per_op\":{}}}",
                    json_num(t.median(i)),
                    json_list(&t.samples[i])
                )
            })
            .collect();
        let errors: Vec<String> = t.errors.iter().map(|e| json_str(e)).collect();
        items.push(format!(
            "{{\"scenario\":\"{}\",\"workers\":{},\"ops\":{},\"programs\":{{{}}},\
             \"ratio_gorust_over\":{{\"tokio\":{},\"go\":{}}},\"errors\":[{}]}}",
            t.scenario,
            t.workers,
            t.ops,
            programs.join(","),
            json_num(t.ratio(1)),
            json_num(t.ratio(2)),
            errors.join(",")
        ));
    }
    let mut mems = Vec::new();
    for m in memory {
        let programs: Vec<String> = PROGRAMS
            .iter()
            .enumerate()
            .map(|(i, p)| {
                format!(
                    "\"{p}\":{{\"median_rss_kib_per_goroutine\":{},\"rss_kib_per_goroutine\":{},\
                     \"live\":{},\"maps\":{}}}",
                    json_num(m.median(i)),
                    json_list(&m.kib[i]),
                    m.live[i].map_or("null".into(), |v| v.to_string()),
                    m.maps[i].map_or("null".into(), |v| v.to_string()),
                )
            })
            .collect();
        let errors: Vec<String> = m.errors.iter().map(|e| json_str(e)).collect();
        mems.push(format!(
            "{{\"workers\":{},\"goroutines\":{},\"programs\":{{{}}},\"errors\":[{}]}}",
            m.workers,
            m.goroutines,
            programs.join(","),
            errors.join(",")
        ));
    }
    format!(
        "{{\"rounds\":{rounds},\"quick\":{quick},\"timed\":[{}],\"memory\":[{}]}}",
        items.join(","),
        mems.join(",")
    )
}
