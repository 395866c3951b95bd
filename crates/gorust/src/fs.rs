//! `std::fs`, goroutine-friendly: each call runs on the blocking pool while the calling
//! goroutine parks, so a slow disk never stalls a worker (Go's runtime hands the P off during
//! file system calls for the same reason).
//!
//! The functions have `std::fs`'s names, arguments and errors. Where [`crate::blocking`] runs
//! its closure on the calling thread (outside a runtime, on a blocking-pool thread, on a plain
//! thread in `Runtime::block_on`, in a destructor run by a shutdown or by a panic's unwind)
//! they call `std::fs` directly; called from a goroutine once its runtime has begun to shut
//! down, they park until it is unwound, as `blocking` does. From a future on a worker thread they
//! fail with an error that says to call them from a goroutine (or to use `spawn_blocking`),
//! and touch nothing. `read_dir` reads the whole directory on the pool and returns its
//! entries as an iterator, rather than a lazy `ReadDir` that would block on each step. The
//! entries are std's `DirEntry`: their `metadata()` (and `file_type()` on a file system that
//! does not report types in the listing) is a system call on the calling thread; use
//! [`metadata`] on `entry.path()` to keep it on the pool.

use std::fs::{DirEntry, Metadata, Permissions};
use std::io;
use std::path::{Path, PathBuf};

use crate::blocking::blocking_io;

fn owned(p: impl AsRef<Path>) -> PathBuf {
    p.as_ref().to_path_buf()
}

/// [`std::fs::read`] on the blocking pool.
pub fn read(path: impl AsRef<Path>) -> io::Result<Vec<u8>> {
    let p = owned(path);
    blocking_io(move || std::fs::read(p))
}

/// [`std::fs::read_to_string`] on the blocking pool.
pub fn read_to_string(path: impl AsRef<Path>) -> io::Result<String> {
    let p = owned(path);
    blocking_io(move || std::fs::read_to_string(p))
}

/// [`std::fs::write`] on the blocking pool.
pub fn write(path: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> io::Result<()> {
    let (p, c) = (owned(path), contents.as_ref().to_vec());
    blocking_io(move || std::fs::write(p, c))
}

/// [`std::fs::read_dir`] on the blocking pool; the entries are read eagerly. An entry's
/// `metadata()` runs on the calling thread (see the module header).
pub fn read_dir(path: impl AsRef<Path>) -> io::Result<std::vec::IntoIter<io::Result<DirEntry>>> {
    let p = owned(path);
    blocking_io(move || Ok(std::fs::read_dir(p)?.collect::<Vec<_>>().into_iter()))
}

/// [`std::fs::create_dir`] on the blocking pool.
pub fn create_dir(path: impl AsRef<Path>) -> io::Result<()> {
    let p = owned(path);
    blocking_io(move || std::fs::create_dir(p))
}

/// [`std::fs::create_dir_all`] on the blocking pool.
pub fn create_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    let p = owned(path);
    blocking_io(move || std::fs::create_dir_all(p))
}

/// [`std::fs::remove_file`] on the blocking pool.
pub fn remove_file(path: impl AsRef<Path>) -> io::Result<()> {
    let p = owned(path);
    blocking_io(move || std::fs::remove_file(p))
}

/// [`std::fs::remove_dir`] on the blocking pool.
pub fn remove_dir(path: impl AsRef<Path>) -> io::Result<()> {
    let p = owned(path);
    blocking_io(move || std::fs::remove_dir(p))
}

/// [`std::fs::remove_dir_all`] on the blocking pool.
pub fn remove_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    let p = owned(path);
    blocking_io(move || std::fs::remove_dir_all(p))
}

/// [`std::fs::rename`] on the blocking pool.
pub fn rename(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<()> {
    let (f, t) = (owned(from), owned(to));
    blocking_io(move || std::fs::rename(f, t))
}

/// [`std::fs::copy`] on the blocking pool.
pub fn copy(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<u64> {
    let (f, t) = (owned(from), owned(to));
    blocking_io(move || std::fs::copy(f, t))
}

/// [`std::fs::hard_link`] on the blocking pool.
pub fn hard_link(original: impl AsRef<Path>, link: impl AsRef<Path>) -> io::Result<()> {
    let (o, l) = (owned(original), owned(link));
    blocking_io(move || std::fs::hard_link(o, l))
}

/// [`std::fs::metadata`] on the blocking pool.
pub fn metadata(path: impl AsRef<Path>) -> io::Result<Metadata> {
    let p = owned(path);
    blocking_io(move || std::fs::metadata(p))
}

/// [`std::fs::symlink_metadata`] on the blocking pool.
pub fn symlink_metadata(path: impl AsRef<Path>) -> io::Result<Metadata> {
    let p = owned(path);
    blocking_io(move || std::fs::symlink_metadata(p))
}

/// [`std::fs::canonicalize`] on the blocking pool.
pub fn canonicalize(path: impl AsRef<Path>) -> io::Result<PathBuf> {
    let p = owned(path);
    blocking_io(move || std::fs::canonicalize(p))
}

/// [`std::fs::read_link`] on the blocking pool.
pub fn read_link(path: impl AsRef<Path>) -> io::Result<PathBuf> {
    let p = owned(path);
    blocking_io(move || std::fs::read_link(p))
}

/// [`std::fs::set_permissions`] on the blocking pool.
pub fn set_permissions(path: impl AsRef<Path>, perm: Permissions) -> io::Result<()> {
    let p = owned(path);
    blocking_io(move || std::fs::set_permissions(p, perm))
}

/// [`std::fs::exists`] on the blocking pool.
pub fn exists(path: impl AsRef<Path>) -> io::Result<bool> {
    let p = owned(path);
    blocking_io(move || std::fs::exists(p))
}
