// Dropping (or moving) the buffer while a peeked slice is alive is rejected.
use gorust::buffer::LinkBuffer;

fn main() {
    let mut buf = LinkBuffer::new();
    buf.write_bytes(b"abc");
    buf.flush();
    let s = buf.peek(3).unwrap();
    drop(buf);
    println!("{:?}", &*s);
}
