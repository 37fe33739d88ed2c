//! Bounded text: keeping the start of something that may not fit, and
//! taking part of a text in place.

use core::fmt;

/// `text` from `start` to `end`, when both are character boundaries (as
/// `str::get` gives it): split off in place, where `str::get` is a call in
/// the size-optimised build.
#[inline(always)]
pub(crate) fn between(text: &str, start: usize, end: usize) -> Option<&str> {
    let (head, _) = text.split_at_checked(end)?;
    head.split_at_checked(start).map(|(_, part)| part)
}

/// Writes what fits into a bounded string and drops the rest, cutting once
/// (nothing is appended after the first character that did not fit) and
/// counting the full length.
pub(crate) struct Truncating<'s, const N: usize> {
    out: &'s mut heapless::String<N>,
    full_len: usize,
    cut: bool,
}

impl<'s, const N: usize> Truncating<'s, N> {
    pub(crate) fn new(out: &'s mut heapless::String<N>) -> Self {
        let full_len = out.len();
        Truncating {
            out,
            full_len,
            cut: false,
        }
    }

    /// Bytes written in all, kept or not.
    pub(crate) fn full_len(&self) -> usize {
        self.full_len
    }
}

impl<const N: usize> fmt::Write for Truncating<'_, N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.full_len += s.len();
        if !self.cut {
            for c in s.chars() {
                if self.out.push(c).is_err() {
                    self.cut = true;
                    break;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::fmt::Write;

    #[test]
    fn cuts_once_on_a_char_boundary_and_counts_everything() {
        let mut out: heapless::String<4> = heapless::String::new();
        let mut w = Truncating::new(&mut out);
        w.write_str("ab").unwrap();
        w.write_str("é").unwrap();
        // "é" fit (4 bytes used); "ü" does not, and "x" after it is not appended.
        w.write_str("ü").unwrap();
        w.write_str("x").unwrap();
        assert_eq!(w.full_len(), 7);
        assert_eq!(out.as_str(), "abé");
    }
}
