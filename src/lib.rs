//! cluster-backup-operator: back up Kubernetes objects to object storage and restore them.
//!
//! Layers only look down: `cli` → `controller` → `backup`/`restore` → `storage` →
//! `api`, `schedule`, `manifest`, `selector`.

pub mod api;
pub mod cli;
pub mod controller;
pub mod schedule;
