//! Reconcile loops and what they share.

pub mod backup;
pub mod conditions;
pub mod crds;
pub mod report;
pub mod restore;
pub mod runs;
pub mod watch;
