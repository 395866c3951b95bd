//! `Slice`: bytes read from a buffer, borrowed when they lie in one node.

use std::fmt;
use std::ops::Deref;

/// Bytes returned by [`next`](super::LinkBuffer::next), [`peek`](super::LinkBuffer::peek) and
/// [`until`](super::LinkBuffer::until).
///
/// When the bytes lie within one node the slice borrows them in place: no copy
/// ([`is_borrowed`](Slice::is_borrowed) is `true`). When they span nodes they are copied into
/// a temporary owned buffer, freed with the slice. Either way the slice borrows the
/// [`LinkBuffer`](super::LinkBuffer) it came from, so it cannot outlive the buffer, and the
/// buffer cannot be released, written or sliced while it is held.
pub struct Slice<'a>(Repr<'a>);

enum Repr<'a> {
    Borrowed(&'a [u8]),
    Copied(Box<[u8]>),
}

impl<'a> Slice<'a> {
    pub(super) fn borrowed(bytes: &'a [u8]) -> Slice<'a> {
        Slice(Repr::Borrowed(bytes))
    }

    pub(super) fn copied(bytes: Vec<u8>) -> Slice<'a> {
        Slice(Repr::Copied(bytes.into_boxed_slice()))
    }

    /// `true` if the bytes are read in place (they lay in one node); `false` if they were
    /// copied because they spanned nodes.
    pub fn is_borrowed(&self) -> bool {
        matches!(self.0, Repr::Borrowed(_))
    }
}

impl Deref for Slice<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.0 {
            Repr::Borrowed(b) => b,
            Repr::Copied(b) => b,
        }
    }
}

impl AsRef<[u8]> for Slice<'_> {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl PartialEq<[u8]> for Slice<'_> {
    fn eq(&self, other: &[u8]) -> bool {
        **self == *other
    }
}

impl<const N: usize> PartialEq<[u8; N]> for Slice<'_> {
    fn eq(&self, other: &[u8; N]) -> bool {
        **self == other[..]
    }
}

impl<const N: usize> PartialEq<&[u8; N]> for Slice<'_> {
    fn eq(&self, other: &&[u8; N]) -> bool {
        **self == other[..]
    }
}

impl PartialEq<&[u8]> for Slice<'_> {
    fn eq(&self, other: &&[u8]) -> bool {
        **self == **other
    }
}

impl fmt::Debug for Slice<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Slice")
            .field("len", &self.len())
            .field("borrowed", &self.is_borrowed())
            .field(
                "head",
                &self[..self.len().min(64)].escape_ascii().to_string(),
            )
            .finish()
    }
}
