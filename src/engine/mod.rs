//! One run, start to end: a backup run ([`backup`]), a restore run ([`restore`]) and the expiry
//! of old runs ([`retention`]). The controller decides when a run happens; the engine does it.

pub mod backup;
pub mod faults;
pub mod packed;
pub mod restore;
pub mod restore_spec;
pub mod retention;
