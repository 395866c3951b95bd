//! Compile-fail tests: a `gorust::buffer::Slice` cannot outlive `release`, the buffer, or a
//! write, and a `LinkBuffer` cannot be shared between threads. Each file in `tests/ui/` must fail
//! to compile with the error recorded beside it (`TRYBUILD=overwrite` re-records them after a
//! compiler upgrade changes the wording).

#[test]
fn slices_cannot_outlive_their_memory() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
