//! The `gorust` command: demonstrations and measurements of the runtime.
//!
//! - `gorust demo`: the scheduler demonstration (see `demo.rs`);
//! - `gorust serve`: an echo or HTTP/1.1 server: goroutine or thread per connection, or the event loop (`serve.rs`);
//! - `gorust load`: a wrk-like load generator for both protocols (`load.rs`);
//! - `gorust compare`: the HTTP hello against hyper on tokio, may_minihttp and Go's net/http,
//!   one core each, interleaved rounds (`compare/`).
//!
//! Bad input (an unknown flag, a malformed value, a port in use, a refused connection) ends
//! the command with one line on stderr and a non-zero exit code.

mod chart;
mod child;
mod compare;
mod demo;
mod demo_net;
mod http;
mod http_date;
mod load;
mod load_loop;
mod procfs;
mod progress;
mod serve;
mod serve_eventloop;
mod serve_peers;
mod sys;
#[cfg(test)]
mod testing;

use clap::error::ErrorKind;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "gorust",
    version,
    about = "Go's goroutine scheduler and netpoller, in Rust"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Spawn, park and wake many goroutines on a few threads, and show what it costs.
    Demo(demo::Args),
    /// Serve echo or HTTP/1.1 hello, a goroutine (or an OS thread) per connection.
    Serve(serve::Args),
    /// Load an echo or HTTP/1.1 server and report throughput and latency percentiles.
    Load(load::Args),
    /// Compare gorust's HTTP hello with hyper on tokio, may_minihttp and Go's net/http.
    Compare(compare::Args),
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => match e.kind() {
            ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => e.exit(),
            _ => {
                // clap's first line says what is wrong; the usage lines after it are noise here.
                let text = e.render().to_string();
                let line = text.lines().next().unwrap_or("invalid arguments");
                eprintln!("gorust: {}", line.trim_start_matches("error: "));
                std::process::exit(2);
            }
        },
    };
    let res = match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Load(args) => load::run(args),
        Command::Compare(args) => compare::run(args),
    };
    if let Err(e) = res {
        eprintln!("gorust: {e}");
        std::process::exit(1);
    }
}
