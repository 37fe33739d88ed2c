//! The sans-IO core of dataservice-sync.
//!
//! `no_std`, no `alloc`, no I/O and no clock: the runner reads the clock and
//! the sockets, passes time and bytes in through `handle_*` methods and
//! sends what `poll_*` methods hand out. Every capacity is a constant in
//! [`config`]; overflow is counted and reported, never silent.
//!
//! A cycle, as a transcript (the runner does the I/O in between):
//!
//! ```
//! use dataservice_sync_core::{ArrayStorage, Engine, EngineConfig, Action, Duration, Instant};
//!
//! let mut engine = Engine::new(
//!     EngineConfig::new(Duration::from_secs(1)),
//!     ArrayStorage::<16, 32, 1024>::new(),
//! );
//! let now = Instant::from_millis(0);
//! let mut buf = [0u8; 2048];
//! engine.handle_tick(now);
//! assert_eq!(engine.poll_action(now), Some(Action::FetchSource));
//! // The body, as it arrives (here whole): its readings apply once it ends.
//! let body = br#"{"Boiler-1": {"t": {"value": 3, "status": "ok"}}}"#;
//! let used = engine.handle_source_body_part(body);
//! engine.handle_source_body(now, &body[used..]);
//! // A new tag waits for a registry check: this cycle sends nothing, and
//! // its end is due now; the check starts then, beside the cycles to come.
//! assert_eq!(engine.poll_transmit(now, &mut buf), None);
//! assert_eq!(engine.poll_timeout(), Some(now));
//! assert!(engine.handle_timeout(now));
//! assert_eq!(engine.stats().sync_cycles_total, 1);
//! // Which keys does the Data-Service have?
//! let get = engine.poll_api_request(now, &mut buf).unwrap();
//! assert_eq!((get.method, get.path), ("GET", "/detailed"));
//! let mut detailed = *br#"{"Boiler-1.t": {"key": "Boiler-1.t", "value": 0,
//!     "default": 0, "address": 41001, "data_type": "int", "units": ""}}"#;
//! engine.handle_api_response(now, 200, &mut detailed);
//! // Its id, by re-registering it exactly as it is (no side effects).
//! let post = engine.poll_api_request(now, &mut buf).unwrap();
//! assert_eq!(
//!     &buf[..post.body_len],
//!     br#"{"points":[{"key":"Boiler-1.t","address":41001,"default":0,"data_type":"int","units":""}],"allow_address_conflict":false}"#
//! );
//! let mut registered = *br#"{"ok": true, "results": [{"index": 0,
//!     "key": "Boiler-1.t", "id": "0123456789abcdef0123456789abcdef", "ok": true}]}"#;
//! engine.handle_api_response(now, 200, &mut registered);
//! // Nothing more to register: the check's end is due.
//! assert_eq!(engine.poll_api_request(now, &mut buf), None);
//! assert!(engine.handle_timeout(now));
//! // With its id, a catch-up pass (no cycle) sends it at once.
//! let tx = engine.poll_transmit(now, &mut buf).unwrap();
//! assert_eq!(
//!     &buf[..tx.len],
//!     b"{\"action\":\"bulk_write_by_id\",\"updates\":[{\"id\":\"0123456789abcdef0123456789abcdef\",\"value\":3}]}\n"
//! );
//! engine.handle_sink_response(now, tx.request, br#"{"ok": true, "results": [{"id": "0123456789abcdef0123456789abcdef", "ok": true, "key": "Boiler-1.t"}]}"#);
//! // Outputs are drained after every input; nothing is left, the pass ends.
//! assert_eq!(engine.poll_transmit(now, &mut buf), None);
//! assert!(engine.handle_timeout(now));
//! assert!(engine.is_idle());
//! assert_eq!(engine.stats().writes_ok_total, 1);
//! assert_eq!(engine.stats().sync_cycles_total, 1);
//! ```
#![no_std]
#![deny(unsafe_code)]
#![deny(missing_docs)]

#[cfg(test)]
extern crate std;

/// How many cases each proptest runs: 2,000, or `PROPTEST_CASES` when set.
/// The ARM run sets fewer: under qemu the debug build runs tens of times slower,
/// and the full count is run natively on every CI run.
#[cfg(test)]
fn proptest_cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(2_000)
}

pub mod backlog;
pub mod config;
pub mod engine;
pub mod event;
mod event_queue;
pub mod key;
pub mod peer;
pub mod reading;
pub mod reject;
pub mod rejections;
pub mod report;
pub mod rules;
mod staging;
pub mod stats;
pub mod table;
mod text;
pub mod time;
pub mod value;
pub mod wire;

pub use engine::{
    Action, ApiRequest, BacklogPolicy, DeliveryMode, Engine, EngineConfig, RegisterMode, RequestId,
    Transmit, min_transmit_buffer,
};
pub use event::{Decision, Event, Level, TagReport};
pub use key::{COLON_KEY_TEMPLATE, DEFAULT_KEY_TEMPLATE, Key, KeyTemplate, TemplateError};
pub use peer::{ApiError, Health, SinkError, SourceError, SourceProblem};
pub use reject::{KeyPreview, RejectReason};
pub use stats::{ErrorRecord, Stats};
pub use table::{ArrayStorage, TableStorage, TagSlot, TagTable, index_len};
pub use time::{Duration, Instant};
pub use value::Value;
