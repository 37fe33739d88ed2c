//! The Data-Service's point ids: 32 hex digits on the wire, 16 bytes in the table.

/// A 32-hex-digit id as 16 bytes.
pub(crate) fn parse_id(text: &str) -> Option<[u8; 16]> {
    let bytes = text.as_bytes();
    if bytes.len() != 32 {
        return None;
    }
    let mut id = [0u8; 16];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        id[i] = (hi * 16 + lo) as u8;
    }
    Some(id)
}

/// 16 bytes as 32 lower-case hex digits, in `out`.
pub(crate) fn id_hex<'o>(id: &[u8; 16], out: &'o mut [u8; 32]) -> &'o str {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, byte) in id.iter().enumerate() {
        out[2 * i] = DIGITS[usize::from(byte >> 4)];
        out[2 * i + 1] = DIGITS[usize::from(byte & 15)];
    }
    // Only ASCII hex digits were written.
    core::str::from_utf8(out).unwrap_or("")
}
