//! Bytes on the wire: JSON tokens, the polling service's document, the
//! Data-Service IPC.

pub mod ipc;
pub mod json;
mod list;
pub mod polled;
pub mod registry;
pub mod spool;
