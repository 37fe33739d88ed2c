//! The sans-IO core of dataservice-sync.
//!
//! `no_std`, no `alloc`, no I/O and no clock: the runner reads the clock and
//! the sockets, passes time and bytes in through `handle_*` methods and
//! sends what `poll_*` methods hand out. Every capacity is a constant in
//! [`config`]; overflow is counted and reported, never silent.
//!
//! ```
//! use dataservice_sync_core::{ArrayStorage, Engine, EngineConfig, Action, Duration, Instant};
//!
//! let mut engine = Engine::new(
//!     EngineConfig::new(Duration::from_secs(1)),
//!     ArrayStorage::<16, 32>::new(),
//! );
//! let now = Instant::from_millis(0);
//! engine.handle_tick(now);
//! assert_eq!(engine.poll_action(now), Some(Action::FetchSource));
//! engine.handle_source_body(now, br#"{"Boiler-1": {"t": {"value": 3, "status": "ok"}}}"#);
//! let mut buf = [0u8; 512];
//! let tx = engine.poll_transmit(now, &mut buf).unwrap();
//! assert_eq!(&buf[..tx.len], b"{\"action\":\"write\",\"key\":\"Boiler-1.t\",\"value\":3}\n");
//! engine.handle_sink_response(now, tx.request, br#"{"ok": true}"#);
//! assert_eq!(engine.stats().writes_ok_total, 1);
//! assert_eq!(engine.stats().sync_cycles_total, 1);
//! ```
#![no_std]
#![deny(unsafe_code)]
#![deny(missing_docs)]

#[cfg(test)]
extern crate std;

pub mod config;
pub mod engine;
pub mod event;
pub mod key;
pub mod peer;
pub mod reading;
pub mod stats;
pub mod table;
pub mod time;
pub mod value;
pub mod wire;

pub use engine::{Action, Engine, EngineConfig, RequestId, Transmit, min_transmit_buffer};
pub use event::{Event, Level};
pub use key::{COLON_KEY_TEMPLATE, DEFAULT_KEY_TEMPLATE, Key, KeyTemplate, TemplateError};
pub use peer::{Health, SinkError, SourceError, SourceProblem};
pub use reading::{KeyPreview, RejectReason};
pub use stats::{ErrorRecord, Stats};
pub use table::{ArrayStorage, TableStorage, TagSlot, TagTable, index_len};
pub use time::{Duration, Instant};
pub use value::Value;
