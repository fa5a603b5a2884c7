//! The `backup.cnd.dk/v1` API: `Backup` and `Restore` custom resources, and the admin-owned
//! `ClusterStorageLocation` they may name.
//!
//! Field names and shapes are those of the example YAMLs in `config/samples/`, which apply
//! unchanged. Additions are optional fields only.

mod backup;
mod restore;
mod storage_location;

pub use backup::*;
pub use restore::*;
pub use storage_location::*;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// API group of every kind this operator serves.
pub const GROUP: &str = "backup.cnd.dk";
/// The only served and stored version.
pub const VERSION: &str = "v1";

/// Every CRD this operator ships, in installation order.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![Backup::crd(), Restore::crd(), ClusterStorageLocation::crd()]
}

/// All CRDs as one multi-document YAML stream, exactly as checked in under `config/crd/`.
pub fn crds_yaml() -> Result<String, yaml_serde::Error> {
    let mut out = String::new();
    for crd in crds() {
        out.push_str("---\n");
        out.push_str(&yaml_serde::to_string(&crd)?);
    }
    Ok(out)
}

/// `metav1.Time` (jiff inside k8s-openapi) from the chrono time the rest of the crate uses.
pub fn to_time(
    at: chrono::DateTime<chrono::Utc>,
) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Time {
    let nanos = i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0);
    let ts = k8s_openapi::jiff::Timestamp::new(at.timestamp(), nanos)
        .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH);
    k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(ts)
}

/// chrono time from a `metav1.Time`.
pub fn from_time(
    time: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
) -> chrono::DateTime<chrono::Utc> {
    let nanos = u32::try_from(time.0.subsec_nanosecond()).unwrap_or(0);
    chrono::DateTime::from_timestamp(time.0.as_second(), nanos).unwrap_or_default()
}
