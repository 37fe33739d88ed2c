//! Spool files as a restart reads them: frames decoded one after the
//! other, damage skipped. Every valid change encodes back to the same bytes.
#![no_main]

use dataservice_sync_core::wire::spool::{
    Frame, FrameError, MAX_FRAME_LEN, decode, encode_acked, encode_change,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut at = 0usize;
    let mut out = [0u8; MAX_FRAME_LEN];
    while at < data.len() {
        match decode(&data[at..]) {
            Ok((frame, len)) => {
                assert!(len > 0 && at + len <= data.len());
                let again = match &frame {
                    Frame::Change(change) => encode_change(change, &mut out),
                    Frame::Acked(seq) => encode_acked(*seq, &mut out),
                };
                assert_eq!(again.map(|n| &out[..n]), Some(&data[at..at + len]));
                at += len;
            }
            Err(FrameError::Corrupt { skip }) => {
                assert!(skip > 0);
                at += skip;
            }
            Err(FrameError::Incomplete) => break,
        }
    }
});
