use std::time::Instant;
fn main() {
    let what = std::env::args().nth(1).unwrap_or_default();
    let workers: usize = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let rt = gorust::Runtime::builder()
        .workers(workers)
        .build()
        .unwrap_or_else(|e| {
            eprintln!("probe: {e}");
            std::process::exit(2)
        });
    rt.run(move || match what.as_str() {
        "pingpong" => {
            for _ in 0..3 {
                let (tx1, rx1) = gorust::sync::mpsc::sync_channel::<u64>(1);
                let (tx2, rx2) = gorust::sync::mpsc::sync_channel::<u64>(1);
                let n = 1_000_000;
                let h = gorust::go(move || {
                    for v in rx1.iter() {
                        if tx2.send(v).is_err() {
                            break;
                        }
                    }
                });
                let t = Instant::now();
                for i in 0..n {
                    tx1.send(i).unwrap();
                    rx2.recv().unwrap();
                }
                println!(
                    "pingpong {:.0} ns",
                    t.elapsed().as_nanos() as f64 / n as f64
                );
                drop(tx1);
                h.join().unwrap();
            }
        }
        "batch" => {
            for _ in 0..3 {
                let t = Instant::now();
                let n = 1_000_000;
                for _ in 0..n / 1000 {
                    let hs: Vec<_> = (0..1000).map(|i| gorust::go(move || i)).collect();
                    for h in hs {
                        h.join().unwrap();
                    }
                }
                println!("batch {:.0} ns", t.elapsed().as_nanos() as f64 / n as f64);
            }
        }
        "all" => {
            let n = 1_000_000;
            let t = Instant::now();
            let hs: Vec<_> = (0..n).map(|i| gorust::go(move || i)).collect();
            for h in hs {
                h.join().unwrap();
            }
            println!("all {:.0} ns", t.elapsed().as_nanos() as f64 / n as f64);
        }
        _ => println!("probe pingpong|batch|all [workers]"),
    });
}
