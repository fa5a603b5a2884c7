//! The steps of a restore that need no client and no I/O; the restore engine
//! ([`crate::engine::restore`]) runs them.
//!
//! Per stored object, the engine runs these steps in this order:
//!
//! 1. verify the bytes against the manifest entry ([`crate::core::manifest::ManifestEntry::verify`])
//!    and parse them;
//! 2. [`clean::check_stored_object`]: the object is the one the manifest describes;
//! 3. [`select::RestoreSelection::decide_object`]: `labelSelector` and per-object rules, on
//!    the object as stored (including the sensitive-content rules of [`guard`]);
//! 4. [`clean::clean_for_restore`]: strip what the API server refuses or would misread, or
//!    skip the object with a reason;
//! 5. [`mapping::apply_mapping`]: move it, and its namespace references, to the target
//!    namespace;
//! 6. [`owners`]: point its owner references at the owners' UIDs in the target cluster, and
//!    leave out (to put back after the last object) those whose owners are restored later;
//! 7. create it, recording the outcome in [`status::StatusLists`].
//!
//! After the last object, the references left out are put back ([`owners::reattachment`]).
//!
//! Which objects and in which order come from [`select::select`] (using [`mapping`] and
//! [`order`]) before anything is downloaded; [`guard`] refuses there what the bucket could
//! otherwise widen the restore with (names unfit for a request path, cluster-scoped objects
//! whose type is not named, `kube-*` namespaces not named, sensitive objects without the
//! opt-in), and the engine reports those without downloading them.

pub mod clean;
pub mod guard;
pub mod mapping;
pub mod object;
pub mod order;
pub mod owners;
pub mod select;
pub mod status;
