//! HTTP/1.1 responses as the source and API clients read them: head,
//! Content-Length, chunked and until-close bodies, under a body cap, fed in
//! three pieces; and a body taken as it arrives, where it was read
//! (`push_taking`) against held first (`push`, `take_part`): the same taken,
//! the same left.
#![no_main]

use dataservice_sync::http::{BodyLimit, HttpError, ResponseReader};
use libfuzzer_sys::fuzz_target;

const MAX_BODY: usize = 64 * 1024;

/// Takes the whole `|`-ended entries at the start of a part.
fn take_entries(taken: &mut Vec<u8>, part: &[u8]) -> usize {
    let whole = part.iter().rposition(|&b| b == b'|').map_or(0, |i| i + 1);
    taken.extend_from_slice(&part[..whole]);
    whole
}

/// `data` read in pieces of `piece` bytes, taken as it arrives.
fn taken(data: &[u8], piece: usize, taking: bool) -> (Result<bool, HttpError>, Vec<u8>, Vec<u8>) {
    let mut reader = ResponseReader::with_limit(BodyLimit::Streamed(MAX_BODY));
    let mut taken = Vec::new();
    let mut outcome = Ok(false);
    for read in data.chunks(piece) {
        let mut read = read.to_vec();
        let take = |_: u16, part: &mut [u8]| take_entries(&mut taken, part);
        outcome = if taking {
            reader.push_taking(&mut read, take)
        } else {
            reader.push(&read).inspect(|&done| {
                if !done {
                    reader.take_part(take);
                }
            })
        };
        if !matches!(outcome, Ok(false)) {
            break;
        }
    }
    (outcome, taken, reader.body().to_vec())
}

fuzz_target!(|data: &[u8]| {
    let mut reader = ResponseReader::new(MAX_BODY);
    let (a, b) = (data.len() / 3, 2 * data.len() / 3);
    let mut done = false;
    for piece in [&data[..a], &data[a..b], &data[b..]] {
        match reader.push(piece) {
            Ok(true) => {
                done = true;
                break;
            }
            Ok(false) => {}
            Err(_) => break,
        }
    }
    if done || reader.finish().is_ok() {
        assert!(reader.body().len() <= MAX_BODY);
        let _ = reader.status();
    }
    let piece = 1 + usize::from(data.first().copied().unwrap_or(0)) * 40;
    assert_eq!(taken(data, piece, true), taken(data, piece, false));
});
