// A slice from `next` cannot be used after `release`: release needs `&mut`, the slice holds `&`.
use gorust::buffer::LinkBuffer;

fn main() {
    let mut buf = LinkBuffer::new();
    buf.write_bytes(b"hello");
    buf.flush();
    let s = buf.next(5).unwrap();
    buf.release();
    println!("{:?}", &*s);
}
