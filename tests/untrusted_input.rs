//! Everything a restore parses from a bucket is untrusted: property tests (proptest, run in
//! the suite) feed the parsers arbitrary and mutated input — manifests, manifest entries,
//! stored objects, packed index documents, encrypted items — and require an answer (a value or
//! an error), never a panic. No cluster is needed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;

use cluster_backup::api::RestoreTarget;
use cluster_backup::core::manifest::{Manifest, ManifestEntry, Sha256Digest};
use cluster_backup::core::packed::{DeltaDoc, IndexEntry, IndexState, SegmentChange, SegmentDoc};
use cluster_backup::core::restore::{clean, guard, mapping, order, owners};
use cluster_backup::storage::sealed::Keyring;
use proptest::prelude::*;
use serde_json::{Value, json};

/// Keys that mean something to the restore code, and some that do not.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("metadata".to_string()),
        Just("name".to_string()),
        Just("namespace".to_string()),
        Just("kind".to_string()),
        Just("apiVersion".to_string()),
        Just("ownerReferences".to_string()),
        Just("uid".to_string()),
        Just("controller".to_string()),
        Just("labels".to_string()),
        Just("annotations".to_string()),
        Just("spec".to_string()),
        Just("status".to_string()),
        Just("data".to_string()),
        Just("type".to_string()),
        Just("finalizers".to_string()),
        Just("managedFields".to_string()),
        Just("resourceVersion".to_string()),
        Just("clusterIP".to_string()),
        Just("volumeName".to_string()),
        "[a-zA-Z./-]{0,12}",
    ]
}

/// Any JSON, shaped often enough like a Kubernetes object to reach deep code.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        "\\PC{0,16}".prop_map(Value::String),
        Just(json!("v1")),
        Just(json!("apps/v1")),
        Just(json!("kube-system")),
        Just(json!("../..")),
    ];
    leaf.prop_recursive(5, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn entry() -> impl Strategy<Value = ManifestEntry> {
    (
        "\\PC{0,40}",
        "[a-z0-9/.]{0,12}",
        "[A-Za-z]{0,10}",
        "[a-z0-9.-]{0,20}",
        proptest::option::of("[a-z0-9./-]{0,12}"),
        "\\PC{0,20}",
        any::<u64>(),
    )
        .prop_map(
            |(key, api_version, kind, resource, namespace, name, size)| ManifestEntry {
                key,
                api_version: Arc::from(api_version),
                kind: Arc::from(kind),
                resource: Arc::from(resource),
                namespace: namespace.map(Arc::from),
                name,
                size,
                sha256: Sha256Digest::default(),
                location: None,
            },
        )
}

fn a_manifest() -> Value {
    json!({
        "formatVersion": 1,
        "tool": "cluster-backup-operator test",
        "backup": {"namespace": "team-a", "name": "nightly"},
        "spec": {},
        "cluster": {"serverVersion": "v1.36.0"},
        "backupPath": "backups/team-a/nightly/2030-01-01T00-00-00Z",
        "startedAt": "2030-01-01T00:00:00Z",
        "completedAt": "2030-01-01T00:00:01Z",
        "result": "Completed",
        "namespaces": ["team-a"],
        "resourceTypes": ["configmaps"],
        "counts": {"team-a/configmaps": 1},
        "totalObjects": 1,
        "totalBytes": 2,
        "objects": [{
            "key": "namespaces/team-a/configmaps/a.json",
            "apiVersion": "v1", "kind": "ConfigMap", "resource": "configmaps",
            "namespace": "team-a", "name": "a", "size": 2,
            "sha256": Sha256Digest::of(b"{}").to_string(),
        }],
        "errors": [],
    })
}

/// Replaces the value at a path chosen by `choices` with `replacement`.
fn mutate(value: &mut Value, choices: &[usize], replacement: Value) {
    let Some((choice, rest)) = choices.split_first() else {
        *value = replacement;
        return;
    };
    let descend = match value {
        Value::Object(map) => !map.is_empty(),
        Value::Array(items) => !items.is_empty(),
        _ => false,
    };
    if !descend {
        *value = replacement;
        return;
    }
    let next = match value {
        Value::Object(map) => {
            let key = map
                .keys()
                .nth(choice % map.len())
                .cloned()
                .unwrap_or_default();
            map.get_mut(&key)
        }
        Value::Array(items) => {
            let len = items.len();
            items.get_mut(choice % len)
        }
        _ => None,
    };
    if let Some(next) = next {
        mutate(next, rest, replacement);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn manifests_from_any_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = Manifest::from_bytes(&bytes);
    }

    /// A valid manifest with one value replaced anywhere: parsed or refused, and whatever
    /// parses goes through the checks a restore applies to every entry.
    #[test]
    fn mutated_manifests_are_parsed_or_refused(
        choices in prop::collection::vec(any::<usize>(), 0..6),
        replacement in json_value(),
    ) {
        let mut manifest = a_manifest();
        mutate(&mut manifest, &choices, replacement);
        let bytes = serde_json::to_vec(&manifest).unwrap();
        if let Ok(parsed) = Manifest::from_bytes(&bytes) {
            for entry in &parsed.objects {
                let _ = guard::check_entry(entry);
                let _ = order::entry_sort_key(entry);
                let _ = entry.verify(b"{}");
            }
        }
    }

    /// Stored objects of any shape against any entry: checked, cleaned, mapped into another
    /// namespace and their owner references read, without a panic.
    #[test]
    fn stored_objects_of_any_shape_never_panic(mut object in json_value(), entry in entry()) {
        let _ = clean::check_stored_object(&object, &entry);
        let _ = clean::clean_for_restore(&mut object);
        let target: RestoreTarget = serde_json::from_value(json!({
            "namespaceMapping": {"team-a": "team-b", "kube-system": "copy"}
        })).unwrap();
        let map = mapping::NamespaceMap::new(&target, &["team-a", "kube-system"]).unwrap();
        mapping::apply_mapping(&mut object, &map);
        let _ = owners::owner_references(&object);
    }

    /// Index documents with any numbers and names: applied or refused.
    #[test]
    fn index_documents_with_any_content_are_applied_or_refused(
        packs in prop::collection::vec(prop_oneof![Just("2030-01-01T00-00-00Z-0".to_string()), "\\PC{0,70}"], 0..4),
        objects in prop::collection::vec(("\\PC{0,20}", any::<u64>(), any::<u32>(), any::<u64>(), any::<u64>()), 0..8),
        removed in prop::collection::vec("\\PC{0,20}", 0..4),
        dropped in any::<bool>(),
    ) {
        let entries: Vec<IndexEntry> = objects
            .into_iter()
            .map(|(name, size, pack, offset, length)| IndexEntry {
                name, size, sha256: Sha256Digest::default(), pack, offset, length, listed: None,
            })
            .collect();
        let mut state = IndexState::default();
        let _ = state.apply_segment(Sha256Digest::default(), SegmentDoc {
            namespace: Some("team-a".into()),
            resource: "configmaps".into(),
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            packs: packs.clone(),
            objects: entries.clone(),
        });
        let _ = state.apply_delta(Sha256Digest::default(), DeltaDoc {
            changes: vec![SegmentChange {
                namespace: Some("team-a".into()),
                resource: "configmaps".into(),
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                dropped,
                removed,
                packs,
                put: entries,
            }],
        });
        let _ = state.objects();
    }

    /// Encrypted items: any bytes, and a sealed item with any byte changed, open or are
    /// refused — never garbage: what opens is exactly what was sealed.
    #[test]
    fn encrypted_items_open_exactly_or_are_refused(
        noise in prop::collection::vec(any::<u8>(), 0..256),
        plain in prop::collection::vec(any::<u8>(), 0..256),
        flip in any::<usize>(),
        bit in 0u8..8,
    ) {
        let data: BTreeMap<String, Vec<u8>> = [("k.key".to_string(), vec![5u8; 32])].into();
        let keyring = Keyring::from_secret_data("test", &data).unwrap();
        let _ = keyring.open(b"ctx", &noise);
        let mut with_magic = b"CBOE".to_vec();
        with_magic.extend_from_slice(&noise);
        let _ = keyring.open(b"ctx", &with_magic);
        let sealed = keyring.seal(b"ctx", &plain).unwrap();
        prop_assert_eq!(keyring.open(b"ctx", &sealed).unwrap(), plain.clone());
        let mut damaged = sealed.clone();
        let i = flip % damaged.len();
        damaged[i] ^= 1 << bit;
        prop_assert!(keyring.open(b"ctx", &damaged).is_err());
    }
}
