//! cluster-backup-operator: back up Kubernetes objects to object storage and restore them.
//!
//! Layers only look down (ARCHITECTURE.md; `tests/layers.rs` fails when one looks up):
//!
//! ```text
//! cli, controller      the operator's reconcilers and run pool, the user commands
//!   engine             one backup run, one restore run, retention
//!     k8s              discovery, API retries, credentials Secrets
//!       storage        object_store: the bucket, its errors, its catalogue
//!         core         pure logic: type catalogue, plan, layout, manifest, schedule, selector,
//!                      restore steps
//!           api        the custom resource types
//! ```

pub mod api;
pub mod cli;
pub mod controller;
pub mod core;
pub mod engine;
pub mod k8s;
pub mod storage;
