//! Simulated peers of dataservice-sync that behave as the deployed ones do
//! (docs/protocols.md), odd parts included: the polling service's HTTP API
//! and the Data-Service's IPC socket and HTTP API. The end-to-end tests, the
//! benchmarks and `dataservice-sync demo` run against them; the gateway
//! build of the sync carries none of this. [`SimulatedSync`] runs the engine
//! against in-process peers on a simulated clock, for tests that must be
//! deterministic and fast.

pub mod dataservice;
pub mod http_server;
pub mod polling;
pub mod pyjson;
pub mod simulated;

pub use dataservice::{DataServiceDouble, SinkBehaviour};
pub use polling::{PollingDouble, PollingMode, generated_value};
pub use simulated::{SimulatedSync, polled_document};
