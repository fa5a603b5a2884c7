//! Pure logic shared by the engines: no Kubernetes client, no object storage, no I/O, so all
//! of it unit-tests without a cluster or a bucket.

pub mod diff;
pub mod json_limits;
pub mod layout;
pub mod manifest;
pub mod names;
pub mod packed;
pub mod plan;
pub mod requester;
pub mod restore;
pub mod schedule;
pub mod selector;
pub mod types;
