//! The `gorust` command: demonstrations and measurements of the runtime.
//!
//! `cargo run --release -- demo` runs the scheduler demonstration (see `demo.rs`).

mod demo;
mod procfs;

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
}

fn main() {
    let cli = Cli::parse();
    let res = match cli.command {
        Command::Demo(args) => demo::run(args),
    };
    if let Err(e) = res {
        eprintln!("gorust: {e}");
        std::process::exit(1);
    }
}
