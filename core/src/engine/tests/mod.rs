//! The engine's tests, driven like a runner drives it.

mod cycle;
mod history;
mod registry;
mod rules;
pub(crate) mod transcript;
