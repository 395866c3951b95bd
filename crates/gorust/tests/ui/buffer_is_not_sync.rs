// The readers move a cursor through `&self` (in `Cell`s), so a buffer cannot be shared
// between threads; it can be sent.
use gorust::buffer::LinkBuffer;

fn assert_send<T: Send>() {}
fn assert_sync<T: Sync>() {}

fn main() {
    assert_send::<LinkBuffer>();
    assert_sync::<LinkBuffer>();
}
