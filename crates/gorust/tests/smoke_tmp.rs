use std::time::{Duration, Instant};

#[test]
fn smoke() {
    let rt = gorust::Runtime::builder().workers(2).build().unwrap();
    let r = rt.run(|| {
        let hs: Vec<_> = (0..1000u64).map(|i| gorust::go(move || { gorust::yield_now(); i })).collect();
        let s: u64 = hs.into_iter().map(|h| h.join().unwrap()).sum();
        let t = Instant::now();
        gorust::time::sleep(Duration::from_millis(5));
        assert!(t.elapsed() >= Duration::from_millis(5));
        let p = gorust::go(|| panic!("boom")).join();
        assert!(p.is_err());
        let f = gorust::block_on(gorust::spawn(async { 5 })).unwrap();
        s + f
    });
    assert_eq!(r, 499500 + 5);
}
