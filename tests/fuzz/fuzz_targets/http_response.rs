//! HTTP/1.1 responses as the source and API clients read them: head,
//! Content-Length, chunked and until-close bodies, under a body cap, fed in
//! three pieces.
#![no_main]

use dataservice_sync::http::ResponseReader;
use libfuzzer_sys::fuzz_target;

const MAX_BODY: usize = 64 * 1024;

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
            Err(_) => return,
        }
    }
    if done || reader.finish().is_ok() {
        assert!(reader.body().len() <= MAX_BODY);
        let _ = reader.status();
    }
});
