//! The Data-Service's answer lines: the framer over caller storage, fed in
//! two pieces, and the response decoder with its per-update results.
#![no_main]

use dataservice_sync_core::wire::ipc::{LineFramer, Response};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut storage = [0u8; 4096];
    let mut framer = LineFramer::new();
    let cut = data.len() / 2;
    for piece in [&data[..cut], &data[cut..]] {
        // As the sink reads: straight into the room left.
        let room = framer.unfilled(&mut storage);
        let n = room.len().min(piece.len());
        room[..n].copy_from_slice(&piece[..n]);
        if let Ok(true) = framer.filled(&storage, n) {
            let line = framer.line(&storage);
            assert!(line.len() <= storage.len());
            break;
        }
    }
    let whole = Response::decode(data);
    if let Ok(response) = Response::decode_bulk(data) {
        let mut count = 0usize;
        let read = response.for_each_result(|_| count += 1);
        assert!(count <= data.len());
        // Read to the end without error, a bulk answer is whole.
        if read.is_ok() {
            assert!(whole.is_ok());
        }
    }
});
