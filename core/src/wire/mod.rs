//! Bytes on the wire: JSON tokens, the polling service's document, the
//! Data-Service IPC.

#[cfg(test)]
mod encode_proptests;
pub(crate) mod id;
pub mod ipc;
pub mod json;
mod list;
pub mod members;
pub mod polled;
pub mod registry;
mod scan;
pub mod spool;
