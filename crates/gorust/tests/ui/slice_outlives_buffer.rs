// A slice cannot outlive the buffer it borrows from.
use gorust::buffer::{LinkBuffer, Slice};

fn first_line<'a>() -> Slice<'a> {
    let mut buf = LinkBuffer::new();
    buf.write_bytes(b"line\n");
    buf.flush();
    buf.until(b'\n').unwrap()
}

fn main() {
    println!("{:?}", first_line());
}
