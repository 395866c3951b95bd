//! Interleaved comparison of gorust with tokio and Go on a noisy machine.
//!
//! ```text
//! cargo bench -p gorust --bench compare -- [--rounds R] [--quick] [--json] [--only a,b]
//! ```
//!
//! Why interleaved: on the machine this was written for, the two vCPUs are sometimes placed far
//! apart for 10-60 s and throughput then drops about 1.75x. Running all of A's rounds and then
//! all of B's would compare A in a good minute with B in a bad one. So each scenario runs the
//! programs in turn for R rounds (default 7), each round starting one program later — gorust,
//! tokio, Go; tokio, Go, gorust; … — so that none always runs first, and
//! the table gives, per program, the median ns/op over the rounds and, per peer, the median of
//! the per-round *paired* ratios gorust/peer (below 1: gorust costs less). A slow spell hits
//! the three measurements of a round alike and mostly cancels out of that round's ratios.
//!
//! How one measurement runs: every program runs in a fresh child process (gorust and tokio are
//! this same binary re-run with `--child`; Go is `bench/go` built once into the target
//! directory, run with `GOMAXPROCS` = workers). The child times a fixed operation count from
//! inside, so process and runtime start-up are excluded for all three alike, and no program
//! inherits a warm allocator, stack pool or page cache from another.
//!
//! Scenarios, each on 1 and on 2 workers (tokio: current_thread for 1, multi_thread for 2):
//!
//! | name        | one operation                                          | count     |
//! |-------------|--------------------------------------------------------|-----------|
//! | spawn_all   | spawn a trivial goroutine; all N spawned, then joined  | 1,000,000 |
//! | spawn_batch | the same, 1,000 at a time (Go: a WaitGroup per batch)  | 1,000,000 |
//! | pingpong    | round trip to an echo goroutine, two channels of cap 1 |   100,000 |
//! | select      | the same through selects, on unbuffered channels       |   100,000 |
//! | yield       | `yield_now` / `task::yield_now` / `runtime.Gosched`    | 1,000,000 |
//! | mem         | 1,000,000 goroutines parked at once: KiB of RSS each   |           |
//!
//! Ping-pong channels: gorust `sync::mpsc::sync_channel(1)`, tokio `mpsc::channel(1)`, Go
//! `make(chan int, 1)`. Select ping-pong (three selects per round trip: the sender's, the
//! receiver's, the echo's): gorust `sync::Select` over `sync_channel(0)`s, Go `select` over
//! `make(chan int)`s, tokio `select!` over `mpsc::channel(1)`s (it has no unbuffered one).
//!
//! Memory, measured honestly: in the child, `VmRSS` (from /proc/self/status) is read in the
//! main goroutine after the runtime started, then N goroutines are started that each park on
//! one shared gate (gorust: `block_on` of a `tokio::sync::watch` receive; Go: `<-gate`;
//! tokio: the same receive in a task, for reference); once all have parked, `VmRSS` is read
//! again. (after - before) / N is everything the goroutines cost: stacks' touched pages, task
//! cells, closures, allocator overhead. The child also reports how many goroutines the runtime
//! counted and how many mappings the process had, so a count capped by `vm.max_map_count`
//! (65,530 by default) would show. The gate is then opened and all goroutines finish.
//!
//! The memory scenario runs at most 2 rounds (its figure barely varies). `--quick` divides
//! every count by 10 and runs 3 rounds (the memory scenario still parks more goroutines than
//! `vm.max_map_count`). `--json` prints the results as JSON after the table. `--only
//! spawn_all,mem` runs only those scenarios. A measurement that runs past 60 s is killed and
//! reported as failed. This is a report: nothing here asserts a speed. Run without the
//! `--bench` argument that `cargo bench` passes (for example by `cargo test --benches`), it is
//! a smoke test: counts / 1000, one round.

#[path = "common/peers.rs"]
mod peers;
#[path = "compare/proc.rs"]
mod proc;
#[path = "compare/report.rs"]
mod report;
#[path = "compare/workloads.rs"]
mod workloads;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use report::{Memory, Timed, PROGRAMS};

/// Timed scenarios and their operation counts in a default run.
const TIMED: [(&str, u64); 5] = [
    ("spawn_all", 1_000_000),
    ("spawn_batch", 1_000_000),
    ("pingpong", 100_000),
    ("select", 100_000),
    ("yield", 1_000_000),
];
/// Goroutines parked at once in the memory scenario (default run).
const MEM_GOROUTINES: u64 = 1_000_000;
/// Rounds of the memory scenario at most: its figure barely varies, and parking a million
/// goroutines takes seconds per program.
const MEM_ROUNDS: usize = 2;
const WORKERS: [usize; 2] = [1, 2];
/// A measurement still running after this is killed and reported as failed (a hang).
const LIMIT: Duration = Duration::from_secs(60);

struct Opts {
    rounds: usize,
    quick: bool,
    json: bool,
    only: Option<Vec<String>>,
    /// Run without `--bench` (as `cargo test --benches` does): a smoke test that every
    /// program runs every scenario, at 1/1000 of the counts, one round, figures meaningless.
    smoke: bool,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        child(&args[1..]);
        return;
    }
    let opts = match parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("compare: {e}\nusage: compare [--rounds R] [--quick] [--json] [--only a,b]");
            std::process::exit(2);
        }
    };
    let started = Instant::now();
    let scale = match (opts.smoke, opts.quick) {
        (true, _) => 1000,
        (false, true) => 10,
        (false, false) => 1,
    };
    if opts.smoke {
        eprintln!("compare: smoke test (no --bench argument): counts / 1000, figures meaningless");
    }
    let wanted = |name: &str| {
        opts.only
            .as_ref()
            .is_none_or(|o| o.iter().any(|s| s == name))
    };
    let go = go_binary();
    eprintln!(
        "compare: {} rounds, programs interleaved ({} in round 1, each round starting one later){}",
        opts.rounds,
        PROGRAMS.join(" → "),
        if opts.quick {
            ", quick (counts / 10)"
        } else {
            ""
        }
    );

    let mut notes = Vec::new();
    if go.is_none() {
        notes.push("go: not installed, skipped");
    }
    let mut timed = Vec::new();
    for (scenario, ops) in TIMED {
        if !wanted(scenario) {
            continue;
        }
        for workers in WORKERS {
            timed.push(run_timed(
                scenario,
                workers,
                ops / scale,
                opts.rounds,
                go.as_deref(),
            ));
        }
    }
    let mut memory = Vec::new();
    if wanted("mem") {
        let rounds = opts.rounds.min(MEM_ROUNDS);
        for workers in WORKERS {
            memory.push(run_memory(
                workers,
                MEM_GOROUTINES / scale,
                rounds,
                go.as_deref(),
            ));
        }
    }

    let max_map_count = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|s| s.trim().parse().ok());
    eprintln!(
        "compare: done in {:.0} s\n",
        started.elapsed().as_secs_f64()
    );
    print!("{}", report::table(&timed, &memory, max_map_count));
    for note in notes {
        println!("{note}");
    }
    if opts.json {
        println!("{}", report::json(opts.rounds, opts.quick, &timed, &memory));
    }
    // A measurement that failed (a program that crashed, hung or printed no figure) fails the
    // run after the report, so that CI's smoke run fails with it (before, only a missing Go
    // did).
    let failed: usize = timed.iter().map(|t| t.errors.len()).sum::<usize>()
        + memory.iter().map(|m| m.errors.len()).sum::<usize>();
    if failed > 0 {
        eprintln!("compare: {failed} measurement(s) failed (listed above)");
        std::process::exit(1);
    }
}

fn parse(args: &[String]) -> Result<Opts, String> {
    let mut o = Opts {
        rounds: 7,
        quick: false,
        json: false,
        only: None,
        smoke: true,
    };
    let mut rounds = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--rounds" => {
                let v = it.next().ok_or("--rounds needs a value")?;
                let r: usize = v.parse().map_err(|_| format!("bad --rounds {v:?}"))?;
                rounds = Some(r.max(1));
            }
            "--quick" => o.quick = true,
            "--json" => o.json = true,
            "--only" => {
                let v = it.next().ok_or("--only needs a value")?;
                o.only = Some(v.split(',').map(str::to_string).collect());
            }
            // `cargo bench` passes `--bench` to every bench binary; without it, smoke test.
            "--bench" => o.smoke = false,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    o.rounds = match (o.smoke, o.quick) {
        (true, _) => 1,
        (false, true) => rounds.unwrap_or(3),
        (false, false) => rounds.unwrap_or(7),
    };
    Ok(o)
}

/// `--child PROGRAM SCENARIO WORKERS N`: one measurement, printed on stdout.
fn child(args: &[String]) {
    let [program, scenario, workers, n] = args else {
        eprintln!("compare --child: expected PROGRAM SCENARIO WORKERS N");
        std::process::exit(2);
    };
    let (Ok(workers), Ok(n)) = (workers.parse::<usize>(), n.parse::<u64>()) else {
        eprintln!("compare --child: WORKERS and N must be numbers");
        std::process::exit(2);
    };
    match workloads::run(program, scenario, workers, n) {
        Ok(line) => println!("{line}"),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}

/// The command that runs one measurement of `program`.
fn command(
    program: &str,
    scenario: &str,
    workers: usize,
    n: u64,
    go: Option<&Path>,
) -> Option<Command> {
    if program == "go" {
        let mut c = Command::new(go?);
        c.args([scenario, &n.to_string()])
            .env("GOMAXPROCS", workers.to_string());
        return Some(c);
    }
    let exe = std::env::current_exe().expect("compare: cannot find its own executable");
    let mut c = Command::new(exe);
    c.args([
        "--child",
        program,
        scenario,
        &workers.to_string(),
        &n.to_string(),
    ]);
    Some(c)
}

fn run_timed(
    scenario: &'static str,
    workers: usize,
    ops: u64,
    rounds: usize,
    go: Option<&Path>,
) -> Timed {
    let mut t = Timed {
        scenario,
        workers,
        ops,
        samples: Default::default(),
        errors: Vec::new(),
    };
    for round in 0..rounds {
        let mut line = format!(
            "  {scenario} workers={workers} round {}/{rounds}:",
            round + 1
        );
        for (i, program) in round_order(round) {
            let v = command(program, scenario, workers, ops, go)
                .map(|c| proc::measure(c, LIMIT).and_then(|f| proc::field(&f, "ns_per_op")));
            let v = match v {
                None => None,
                Some(Ok(v)) => Some(v),
                Some(Err(e)) => {
                    t.errors.push(format!(
                        "{program} workers={workers} round {}: {e}",
                        round + 1
                    ));
                    None
                }
            };
            line.push_str(&format!(
                " {program} {}",
                v.map_or("-".into(), |v| format!("{v:.1}"))
            ));
            t.samples[i].push(v);
        }
        eprintln!("{line}");
    }
    t
}

/// The programs of round `round` with their indices: each round starts one program later
/// (gorust, tokio, Go; tokio, Go, gorust; …), as the echo bench and the CLI's `compare` run
/// theirs, so that no program always runs first (on this machine the position in a round
/// moved a figure by up to 20%).
fn round_order(round: usize) -> impl Iterator<Item = (usize, &'static &'static str)> {
    (0..PROGRAMS.len()).map(move |k| {
        let i = (round + k) % PROGRAMS.len();
        (i, &PROGRAMS[i])
    })
}

fn run_memory(workers: usize, n: u64, rounds: usize, go: Option<&Path>) -> Memory {
    let mut m = Memory {
        workers,
        goroutines: n,
        kib: Default::default(),
        live: [None; 3],
        maps: [None; 3],
        errors: Vec::new(),
    };
    for round in 0..rounds {
        let mut line = format!("  mem workers={workers} round {}/{rounds}:", round + 1);
        for (i, program) in round_order(round) {
            let Some(c) = command(program, "mem", workers, n, go) else {
                m.kib[i].push(None);
                continue;
            };
            let parsed = proc::measure(c, LIMIT).and_then(|f| {
                Ok((
                    proc::field(&f, "rss_kib_per_goroutine")?,
                    proc::field(&f, "goroutines")? as u64,
                    proc::field(&f, "maps")? as u64,
                ))
            });
            match parsed {
                Ok((kib, live, maps)) => {
                    m.kib[i].push(Some(kib));
                    m.live[i] = Some(live);
                    m.maps[i] = Some(maps);
                    line.push_str(&format!(
                        " {program} {kib:.2} KiB (live {live}, maps {maps})"
                    ));
                }
                Err(e) => {
                    m.kib[i].push(None);
                    m.errors.push(format!(
                        "{program} workers={workers} round {}: {e}",
                        round + 1
                    ));
                    line.push_str(&format!(" {program} -"));
                }
            }
        }
        eprintln!("{line}");
    }
    m
}

/// Notes that Go's programs are left out, and why; under `GORUST_NO_SKIP=1` (set by `.ci/run`,
/// which installs Go) ends the run with status 1 instead.
fn skip(why: &str) {
    if peers::skipping_forbidden() {
        eprintln!("{why}; GORUST_NO_SKIP=1 forbids skipping Go");
        std::process::exit(1);
    }
    eprintln!("{why}: skipped");
}

/// Builds `bench/go` into the target directory; `None` (and a line saying why) without `go`.
fn go_binary() -> Option<PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/go");
    let exe = std::env::current_exe().ok()?;
    // The bench binary is <target>/<profile>/deps/compare-<hash>.
    let out_dir = exe.parent()?.parent()?.to_path_buf();
    let out = out_dir.join("gorust-bench-go");
    let mut c = Command::new("go");
    c.args(["build", "-o"])
        .arg(&out)
        .arg(".")
        .current_dir(&src)
        // No dependencies: never reach for a module proxy or another toolchain.
        .env("GOPROXY", "off")
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-mod=mod");
    if std::env::var_os("GOCACHE").is_none() && std::env::var_os("HOME").is_none() {
        c.env("GOCACHE", out_dir.join("go-build-cache"));
    }
    match c.output() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            skip("go: not installed");
            None
        }
        Err(e) => {
            skip(&format!("go: cannot run go build ({e})"));
            None
        }
        Ok(o) if !o.status.success() => {
            skip(&format!(
                "go: build of {} failed:\n{}",
                src.display(),
                String::from_utf8_lossy(&o.stderr)
            ));
            None
        }
        Ok(_) => {
            let v = Command::new("go").arg("version").output();
            let v = v.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
            eprintln!("go: built {} ({})", out.display(), v.unwrap_or_default());
            Some(out)
        }
    }
}
