//! The checked-in CRD YAML must be exactly what the Rust types generate.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[test]
fn checked_in_crds_match_the_rust_types() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/crd/crds.yaml");
    let checked_in = std::fs::read_to_string(path).expect("config/crd/crds.yaml exists");
    let generated = cluster_backup::api::crds_yaml().expect("CRDs serialize");
    assert!(
        checked_in == generated,
        "config/crd/crds.yaml is out of date with src/api; regenerate it with\n    \
         cargo run -- crd > config/crd/crds.yaml"
    );
}
