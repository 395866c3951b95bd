//! `gorust::fs`: std::fs on the blocking pool.

mod common;

use std::time::Duration;

use common::{run_on, within};

#[test]
fn file_round_trip_from_goroutines() {
    let dir = std::env::temp_dir().join(format!("gorust-fs-{}", std::process::id()));
    within(Duration::from_secs(60), move || {
        run_on(2, move || {
            gorust::fs::create_dir_all(dir.join("sub")).unwrap();
            let hs: Vec<_> = (0..20)
                .map(|i| {
                    let d = dir.clone();
                    gorust::go(move || {
                        let p = d.join("sub").join(format!("f{i}"));
                        gorust::fs::write(&p, format!("hello {i}")).unwrap();
                        gorust::fs::read_to_string(&p).unwrap()
                    })
                })
                .collect();
            for (i, h) in hs.into_iter().enumerate() {
                assert_eq!(h.join().unwrap(), format!("hello {i}"));
            }
            let entries = gorust::fs::read_dir(dir.join("sub")).unwrap().count();
            assert_eq!(entries, 20);
            let m = gorust::fs::metadata(dir.join("sub/f3")).unwrap();
            assert_eq!(m.len(), "hello 3".len() as u64);
            gorust::fs::rename(dir.join("sub/f3"), dir.join("moved")).unwrap();
            assert!(gorust::fs::exists(dir.join("moved")).unwrap());
            assert_eq!(
                gorust::fs::copy(dir.join("moved"), dir.join("copy")).unwrap(),
                7
            );
            let err = gorust::fs::read(dir.join("missing")).unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
            gorust::fs::remove_dir_all(&dir).unwrap();
            assert!(!gorust::fs::exists(&dir).unwrap());
        })
    });
}

/// From a future on a worker, a file call fails with an error that says where to call it,
/// and touches nothing. It used to queue the call on the pool and then panic, while the pool
/// wrote the file anyway (review, session 19). Name resolution fails the same way.
#[test]
fn a_file_call_from_a_future_fails_and_touches_nothing() {
    let path = std::env::temp_dir().join(format!("gorust-fs-future-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let p2 = path.clone();
    within(Duration::from_secs(60), move || {
        common::run_with_one_pool_thread(move || {
            let task = gorust::spawn(async move {
                let write = gorust::fs::write(&p2, b"x").unwrap_err();
                let resolve =
                    gorust::net::ToSocketAddrs::to_socket_addrs(&("localhost", 80)).unwrap_err();
                (write.to_string(), resolve.to_string())
            });
            let (write, resolve) = gorust::block_on(task).unwrap();
            assert!(write.contains("goroutine"), "{write}");
            assert!(resolve.contains("goroutine"), "{resolve}");
            // Behind the write on the one pool thread, had it been queued.
            gorust::blocking(|| ());
        })
    });
    assert!(!path.exists(), "the file was written anyway");
}
