//! Byte searches eight bytes at a time (SWAR), without `unsafe` or SIMD
//! intrinsics: the hot loops of reading a 1 MB document every cycle.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// A word whose byte is 0x80 where `word`'s byte is zero (exact for the
/// lowest such byte, which is all the callers use).
#[inline(always)]
fn zero_bytes(word: u64) -> u64 {
    word.wrapping_sub(ONES) & !word & HIGHS
}

/// What a search looks for: a word whose byte has its high bit set where
/// the searched word's byte is one sought (exact for the lowest such byte).
/// A trait, not a closure, so that the size-optimised build inlines it.
trait Flags {
    fn flags(&self, word: u64) -> u64;
}

/// The byte of a hit in a word of `flags`, if there is one.
#[inline(always)]
fn first_hit(flags: u64) -> Option<usize> {
    (flags != 0).then_some((flags.trailing_zeros() / 8) as usize)
}

/// The first position in `bytes` for which `sought` flags its byte. The
/// tail shorter than a word is padded with `filler`, a byte that must not
/// match.
#[inline(always)]
fn find_by(bytes: &[u8], filler: u8, sought: &impl Flags) -> Option<usize> {
    let mut chunks = bytes.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        if let Some(at) = first_hit(sought.flags(u64::from_le_bytes(word))) {
            return Some(offset + at);
        }
        offset += 8;
    }
    let rest = chunks.remainder();
    let mut word = [filler; 8];
    word[..rest.len()].copy_from_slice(rest);
    first_hit(sought.flags(u64::from_le_bytes(word))).map(|at| offset + at)
}

/// One byte value.
struct Byte(u64);

impl Flags for Byte {
    #[inline(always)]
    fn flags(&self, word: u64) -> u64 {
        zero_bytes(word ^ self.0)
    }
}

/// The first `needle` in `bytes`.
#[inline]
pub(crate) fn find_byte(bytes: &[u8], needle: u8) -> Option<usize> {
    find_by(bytes, !needle, &Byte(ONES * u64::from(needle)))
}

/// Whether `a` and `b` hold the same bytes: compared a word at a time in
/// place, where slice equality is a call in the size-optimised build (the
/// bytes compared are short: names, separators, literals).
#[inline(always)]
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut at = 0;
    while let (Some(x), Some(y)) = (a.get(at..at + 8), b.get(at..at + 8)) {
        let (Ok(x), Ok(y)) = (<[u8; 8]>::try_from(x), <[u8; 8]>::try_from(y)) else {
            return false;
        };
        if u64::from_ne_bytes(x) != u64::from_ne_bytes(y) {
            return false;
        }
        at += 8;
    }
    while let (Some(x), Some(y)) = (a.get(at), b.get(at)) {
        if x != y {
            return false;
        }
        at += 1;
    }
    true
}

/// How many ASCII digits `bytes` starts with.
#[inline(always)]
pub(crate) fn count_digits(bytes: &[u8]) -> usize {
    const NIBBLES: u64 = ONES * 0xF0;
    const THREES: u64 = ONES * 0x30;
    let mut chunks = bytes.chunks_exact(8);
    let mut count = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_le_bytes(word);
        // A digit is 0x3_ and stays 0x3_ with 6 added; a carry out of a
        // byte that is not a digit only reaches the bytes above it.
        let off = ((word & NIBBLES) ^ THREES) | ((word.wrapping_add(ONES * 6) & NIBBLES) ^ THREES);
        if off != 0 {
            return count + (off.trailing_zeros() / 8) as usize;
        }
        count += 8;
    }
    count
        + chunks
            .remainder()
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count()
}

/// The first byte that ends the plain run of a JSON string: `"`, `\` or a
/// control character (below 0x20).
#[inline(always)]
pub(crate) fn find_string_special(bytes: &[u8]) -> Option<usize> {
    find_by(bytes, b'a', &StringSpecial)
}

struct StringSpecial;

impl Flags for StringSpecial {
    #[inline(always)]
    fn flags(&self, word: u64) -> u64 {
        const QUOTES: u64 = ONES * b'"' as u64;
        const BACKSLASHES: u64 = ONES * b'\\' as u64;
        // A byte below 0x20 is one that `word - 0x20` borrows from without
        // its high bit set; the high-bit guard keeps bytes >= 0x80 out.
        zero_bytes(word ^ QUOTES)
            | zero_bytes(word ^ BACKSLASHES)
            | (word.wrapping_sub(ONES * 0x20) & !word & HIGHS)
    }
}

/// The first byte that structures JSON outside strings: `"`, `,`, or a
/// bracket or brace.
#[inline]
pub(crate) fn find_structural(bytes: &[u8]) -> Option<usize> {
    find_by(bytes, b'a', &Structural)
}

struct Structural;

impl Flags for Structural {
    #[inline(always)]
    fn flags(&self, word: u64) -> u64 {
        const QUOTES: u64 = ONES * b'"' as u64;
        const COMMAS: u64 = ONES * b',' as u64;
        const OPENS: u64 = ONES * b'{' as u64;
        const CLOSES: u64 = ONES * b'}' as u64;
        // `[` and `]` are `{` and `}` less 0x20, and only they become
        // those with 0x20 set.
        let folded = word | (ONES * 0x20);
        zero_bytes(word ^ QUOTES)
            | zero_bytes(word ^ COMMAS)
            | zero_bytes(folded ^ OPENS)
            | zero_bytes(folded ^ CLOSES)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_bytes_as_slice_equality_does() {
        let text = b"\"value\":,\"last_successful_timestamp\":true";
        for start in 0..text.len() {
            for end in start..=text.len() {
                let a = &text[start..end];
                let mut changed = a.to_vec();
                if let Some(last) = changed.last_mut() {
                    *last ^= 1;
                }
                let longer = [a, b"x"].concat();
                for other in [a, &changed, &longer] {
                    assert_eq!(same_bytes(a, other), a == other, "{a:?} {other:?}");
                }
            }
        }
    }

    #[test]
    fn counts_digits_as_a_plain_count_does() {
        let text = b"0123456789/:0\xff9\xfa99999999 9012345678901234567a";
        for start in 0..text.len() {
            for end in start..=text.len() {
                let bytes = &text[start..end];
                let plain = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
                assert_eq!(count_digits(bytes), plain, "{bytes:?}");
            }
        }
        for byte in 0..=255u8 {
            let mut word = *b"12345678";
            for at in 0..8 {
                word[at] = byte;
                let plain = word.iter().take_while(|b| b.is_ascii_digit()).count();
                assert_eq!(count_digits(&word), plain, "{word:?}");
                word[at] = b'1';
            }
        }
    }

    #[test]
    fn agrees_with_a_plain_search_at_every_position() {
        let specials = [
            b'\n',
            b'"',
            b'\\',
            0x00,
            0x1f,
            0x20,
            0x7f,
            0x80,
            0xff,
            0xa2,
            0xdc,
            b',',
            b'{',
            b'}',
            b'[',
            b']',
            b';',
            b'=',
            b'{' - 0x20 + 1,
        ];
        // Up to three whole words: a hit in each word and every tail length.
        for len in 0..=24 {
            for at in 0..len {
                for first in specials {
                    for second in specials {
                        let mut bytes = [b'a'; 24];
                        bytes[at] = first;
                        bytes[(at + 3) % len] = second;
                        let hay = &bytes[..len];
                        assert_eq!(find_byte(hay, b'\n'), hay.iter().position(|&b| b == b'\n'));
                        assert_eq!(
                            find_structural(hay),
                            hay.iter().position(|b| b"\",{}[]".contains(b)),
                            "{hay:?}"
                        );
                        assert_eq!(
                            find_string_special(hay),
                            hay.iter()
                                .position(|&b| b == b'"' || b == b'\\' || b < 0x20),
                            "{hay:?}"
                        );
                    }
                }
            }
        }
    }
}
