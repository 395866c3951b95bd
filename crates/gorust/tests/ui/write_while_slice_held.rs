// Writing (which may take nodes, and moves the tail) is rejected while a slice is held.
use gorust::buffer::LinkBuffer;

fn main() {
    let mut buf = LinkBuffer::new();
    buf.write_bytes(b"abc");
    buf.flush();
    let s = buf.next(1).unwrap();
    buf.write_bytes(b"more");
    println!("{:?}", &*s);
}
