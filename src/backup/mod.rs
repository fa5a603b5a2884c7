//! The backup side: plan what to back up (pure), lay out keys (pure), discover, list and
//! stream objects to storage (I/O), and expire old runs.

pub mod catalogue;
pub mod discovery;
pub mod engine;
pub mod layout;
pub mod plan;
pub mod retention;
