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

/// The first position in `bytes` for which `flagged` sets the high bit of
/// its byte. The tail shorter than a word is padded with `filler`, a byte
/// that must not match.
#[inline(always)]
fn find_by(bytes: &[u8], filler: u8, flagged: impl Fn(u64) -> u64) -> Option<usize> {
    let first_hit = |word: [u8; 8]| {
        let hits = flagged(u64::from_le_bytes(word));
        (hits != 0).then(|| (hits.trailing_zeros() / 8) as usize)
    };
    let mut chunks = bytes.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        if let Some(at) = first_hit(word) {
            return Some(offset + at);
        }
        offset += 8;
    }
    let rest = chunks.remainder();
    let mut word = [filler; 8];
    word[..rest.len()].copy_from_slice(rest);
    first_hit(word).map(|at| offset + at)
}

/// The first `needle` in `bytes`.
#[inline]
pub(crate) fn find_byte(bytes: &[u8], needle: u8) -> Option<usize> {
    let pattern = ONES * u64::from(needle);
    find_by(bytes, !needle, |word| zero_bytes(word ^ pattern))
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
#[inline]
pub(crate) fn find_string_special(bytes: &[u8]) -> Option<usize> {
    const QUOTES: u64 = ONES * b'"' as u64;
    const BACKSLASHES: u64 = ONES * b'\\' as u64;
    // A byte below 0x20 is one that `word - 0x20` borrows from without its
    // high bit set; the high-bit guard keeps bytes >= 0x80 out.
    find_by(bytes, b'a', |word| {
        zero_bytes(word ^ QUOTES)
            | zero_bytes(word ^ BACKSLASHES)
            | (word.wrapping_sub(ONES * 0x20) & !word & HIGHS)
    })
}

/// The first byte that structures JSON outside strings: `"`, `,`, or a
/// bracket or brace.
#[inline]
pub(crate) fn find_structural(bytes: &[u8]) -> Option<usize> {
    const QUOTES: u64 = ONES * b'"' as u64;
    const COMMAS: u64 = ONES * b',' as u64;
    const OPENS: u64 = ONES * b'{' as u64;
    const CLOSES: u64 = ONES * b'}' as u64;
    // `[` and `]` are `{` and `}` less 0x20, and only they become those
    // with 0x20 set.
    find_by(bytes, b'a', |word| {
        let folded = word | (ONES * 0x20);
        zero_bytes(word ^ QUOTES)
            | zero_bytes(word ^ COMMAS)
            | zero_bytes(folded ^ OPENS)
            | zero_bytes(folded ^ CLOSES)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
