// `slice` moves nodes to another buffer, so it is rejected while a slice borrows them.
use gorust::buffer::LinkBuffer;

fn main() {
    let mut buf = LinkBuffer::new();
    buf.write_bytes(b"abcdef");
    buf.flush();
    let head = buf.next(3).unwrap();
    let rest = buf.slice(3).unwrap();
    println!("{:?} {:?}", &*head, rest);
}
