//! Talking to the Kubernetes API for the engines: discovery of served types, retries of
//! transient API errors, credentials Secrets, and opening the storage a run names.

pub mod credentials;
pub mod discovery;
pub mod impersonate;
pub mod locations;
pub mod rate_limit;
pub mod retry;
