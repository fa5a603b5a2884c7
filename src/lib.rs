//! cluster-backup-operator: back up Kubernetes objects to object storage and restore them.
//!
//! Layers only look down: `cli` → `controller` → `backup`/`restore` → `storage` →
//! `api`, `schedule`, `manifest`, `selector`.

pub mod api;
pub mod backup;
pub mod cli;
pub mod controller;
pub mod faults;
pub mod manifest;
pub mod restore;
pub mod retry;
pub mod schedule;
pub mod selector;
pub mod storage;
