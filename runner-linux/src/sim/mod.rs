//! Simulated peers that reproduce PROTOCOLS.md, odd behaviour included:
//! the polling service (§1) and the Data-Service's IPC (§2) and HTTP API
//! (§3). `demo` runs against them, and so do the end-to-end tests.

pub mod dataservice;
pub mod http_server;
pub mod polling;
pub mod pyjson;

pub use dataservice::{DataServiceDouble, SinkBehaviour};
pub use polling::{PollingDouble, PollingMode, generated_value};
