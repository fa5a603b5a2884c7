//! Talking to the Kubernetes API for the engines: discovery of served types, retries of
//! transient API errors, and reading credentials Secrets.

pub mod credentials;
pub mod discovery;
pub mod impersonate;
pub mod retry;
