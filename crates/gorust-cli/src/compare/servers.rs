//! The servers `compare` runs, and how each one starts (a child process of this program, or
//! Go's net/http built from `bench/go/`).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Serialize;

use super::Args;
use crate::child::{self, Spec};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Peer {
    /// gorust's goroutine per connection, one worker.
    Gorust,
    /// gorust's event loop (netpoll's model), one worker.
    #[value(name = "gorust-eventloop")]
    GorustEventloop,
    /// hyper 1 on tokio's current-thread runtime.
    #[value(name = "hyper-tokio")]
    HyperTokio,
    /// may_minihttp, one may worker.
    May,
    /// Go's net/http, GOMAXPROCS=1.
    Go,
}

impl Peer {
    const ALL: [Peer; 5] = [
        Peer::Gorust,
        Peer::GorustEventloop,
        Peer::HyperTokio,
        Peer::May,
        Peer::Go,
    ];

    pub(super) fn name(self) -> &'static str {
        match self {
            Peer::Gorust => "gorust",
            Peer::GorustEventloop => "gorust-eventloop",
            Peer::HyperTokio => "hyper-tokio",
            Peer::May => "may",
            Peer::Go => "go",
        }
    }
}

/// A server to run: which, and for Go the binary built.
pub(super) struct ServerDef {
    pub(super) peer: Peer,
    go_bin: Option<PathBuf>,
}

impl ServerDef {
    pub(super) fn spec(&self, cpu: Option<usize>) -> Spec {
        let this = child::this_program().unwrap_or_else(|_| "gorust".into());
        let mut spec = match self.peer {
            Peer::Gorust => Spec::new("gorust", this).args([
                "serve",
                "--proto",
                "http",
                "--model",
                "goroutine",
                "--workers",
                "1",
                "--port",
                "0",
            ]),
            Peer::GorustEventloop => Spec::new("gorust-eventloop", this).args([
                "serve",
                "--proto",
                "http",
                "--model",
                "eventloop",
                "--workers",
                "1",
                "--port",
                "0",
            ]),
            Peer::HyperTokio => Spec::new("hyper-tokio", this).args([
                "serve",
                "--proto",
                "http",
                "--model",
                "hyper-tokio",
                "--port",
                "0",
            ]),
            Peer::May => Spec::new("may", this).args([
                "serve",
                "--proto",
                "http",
                "--model",
                "may",
                "--workers",
                "1",
                "--port",
                "0",
            ]),
            Peer::Go => {
                let bin = self.go_bin.clone().unwrap_or_default();
                let mut s = Spec::new("go", bin).args(["http", "0"]);
                s.env.push(("GOMAXPROCS".into(), "1".into()));
                s
            }
        };
        spec.cpu = cpu;
        spec
    }
}

/// gorust first, then the peers asked for (or all), Go only if it builds.
pub(super) fn choose_servers(args: &Args) -> Result<Vec<ServerDef>, String> {
    let asked = !args.servers.is_empty();
    let mut peers = vec![Peer::Gorust];
    let wanted: &[Peer] = if asked { &args.servers } else { &Peer::ALL };
    for &p in wanted {
        if !peers.contains(&p) {
            peers.push(p);
        }
    }
    let mut out = Vec::new();
    for peer in peers {
        let go_bin = if peer == Peer::Go {
            match build_go(args.go_src.as_deref()) {
                Ok(bin) => Some(bin),
                Err(e) if asked => return Err(e),
                Err(e) => {
                    eprintln!("gorust compare: {e}; Go's net/http is skipped");
                    continue;
                }
            }
        } else {
            None
        };
        out.push(ServerDef { peer, go_bin });
    }
    Ok(out)
}

pub(super) fn program_exists(name: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|d| {
            let p = d.join(name);
            p.is_file()
        })
    })
}

/// Builds `bench/go` into the directory of this executable; the binary's path.
pub(super) fn build_go(src: Option<&Path>) -> Result<PathBuf, String> {
    let src = src
        .map(Path::to_path_buf)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/go"));
    if !program_exists("go") {
        return Err("go is not installed".into());
    }
    if !src.join("http.go").is_file() {
        return Err(format!(
            "the Go server's source is not in {} (--go-src)",
            src.display()
        ));
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let dir = exe
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(std::env::temp_dir);
    let bin = dir.join("gorust-bench-go");
    let mut cmd = Command::new("go");
    cmd.args(["build", "-o"])
        .arg(&bin)
        .arg(".")
        .current_dir(&src)
        // No dependencies: never reach for a module proxy or another toolchain.
        .env("GOPROXY", "off")
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-mod=mod");
    if std::env::var_os("GOCACHE").is_none() && std::env::var_os("HOME").is_none() {
        cmd.env("GOCACHE", dir.join("go-build-cache"));
    }
    let o = cmd
        .output()
        .map_err(|e| format!("cannot run go build: {e}"))?;
    if !o.status.success() {
        let err = String::from_utf8_lossy(&o.stderr);
        return Err(format!(
            "go build in {} failed: {}",
            src.display(),
            err.trim()
        ));
    }
    Ok(bin)
}
