use std::time::{Duration, Instant};
fn main() {
    let rt = gorust::Runtime::builder().workers(2).build().unwrap();
    rt.run(move || {
        let mut v = Vec::new();
        for _ in 0..2000 {
            let t = Instant::now();
            gorust::time::sleep(Duration::from_micros(100));
            v.push(t.elapsed().as_micros() as u64);
        }
        v.sort();
        println!(
            "100us sleep: min {} p50 {} p90 {} p99 {} max {}",
            v[0], v[1000], v[1800], v[1980], v[1999]
        );
    });
}
