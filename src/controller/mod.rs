//! Reconcile loops and what they share.

pub mod crds;
