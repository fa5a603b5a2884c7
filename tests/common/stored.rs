//! What a backup run put in storage: every object, checked against the run's manifest and the
//! Backup's status ([`Scene::verify_run`]), and the key names tests expect.

use std::collections::{BTreeMap, BTreeSet};

use cluster_backup::api::{Backup, RunResult};
use cluster_backup::core::layout;
use cluster_backup::core::manifest::Manifest;
use futures::{StreamExt, TryStreamExt};
use serde_json::Value;

use super::Scene;

/// `namespaces/<ns>/<type>/<name>.json`, relative to the run path.
pub fn ns_key(ns: &str, type_dir: &str, name: &str) -> String {
    format!("namespaces/{ns}/{type_dir}/{name}.json")
}

/// `cluster/<type>/<name>.json`, relative to the run path.
pub fn cluster_key(type_dir: &str, name: &str) -> String {
    format!("cluster/{type_dir}/{name}.json")
}

pub fn keys<S: Into<String>>(items: impl IntoIterator<Item = S>) -> BTreeSet<String> {
    items.into_iter().map(Into::into).collect()
}

/// One verified run: its manifest and every stored object, keyed relative to the run path.
pub struct StoredRun {
    pub path: String,
    pub manifest: Manifest,
    pub objects: BTreeMap<String, Value>,
}

impl StoredRun {
    /// Every object key of the run (without `manifest.json`).
    pub fn keys(&self) -> BTreeSet<String> {
        self.objects.keys().cloned().collect()
    }

    /// Object keys under `namespaces/<ns>/`.
    pub fn keys_in(&self, ns: &str) -> BTreeSet<String> {
        let prefix = format!("namespaces/{ns}/");
        self.objects
            .keys()
            .filter(|k| k.starts_with(&prefix))
            .cloned()
            .collect()
    }

    /// Object keys under `cluster/`.
    pub fn cluster_keys(&self) -> BTreeSet<String> {
        self.objects
            .keys()
            .filter(|k| k.starts_with("cluster/"))
            .cloned()
            .collect()
    }

    /// The second path segment of every key: the namespaces (`namespaces/<ns>/…`) or the
    /// cluster types (`cluster/<type>/…`).
    pub fn second_segments(&self, top: &str) -> BTreeSet<String> {
        self.objects
            .keys()
            .filter_map(|k| k.strip_prefix(top)?.strip_prefix('/')?.split('/').next())
            .map(str::to_string)
            .collect()
    }

    pub fn object(&self, key: &str) -> &Value {
        self.objects
            .get(key)
            .unwrap_or_else(|| panic!("{key} not stored in {}", self.path))
    }
}

impl Scene {
    /// Checks the newest restorable run of `backup` in storage and returns what it holds:
    /// - `backupPath` is `backups/<ns>/<name>/<YYYY-MM-DDTHH-MM-SSZ>` and is `lastRun`'s path;
    /// - `manifest.json` exists and lists exactly the stored objects, once each;
    /// - every stored object matches its manifest entry (size, sha256), is JSON with `apiVersion`,
    ///   `kind` and the metadata.name/namespace its key and entry say;
    /// - `status.resourceCounts`, the manifest counts and `lastRun.objects` equal what is stored;
    /// - the manifest does not contain the storage secret key.
    pub async fn verify_run(&self, backup: &Backup) -> StoredRun {
        let name = backup.metadata.name.as_deref().unwrap();
        let status = backup.status.as_ref().expect("status");
        let path = status.backup_path.clone().expect("status.backupPath");
        let last = status.last_run.as_ref().expect("status.lastRun");
        assert_eq!(last.backup_path, path, "lastRun is not the newest backup");
        assert_ne!(last.result, Some(RunResult::Failed), "{status:#?}");

        let parent = format!("backups/{}/{name}/", self.namespace());
        let stamp = path
            .strip_prefix(&parent)
            .unwrap_or_else(|| panic!("backupPath {path} is not under {parent}"));
        chrono::NaiveDateTime::parse_from_str(stamp, "%Y-%m-%dT%H-%M-%SZ")
            .unwrap_or_else(|e| panic!("run folder {stamp} is no timestamp: {e}"));

        let storage = self.storage();
        let listed: BTreeMap<String, u64> = storage
            .list(&path)
            .map_ok(|o| (o.key, o.size))
            .try_collect::<Vec<_>>()
            .await
            .unwrap_or_else(|e| panic!("list {path}: {e}"))
            .into_iter()
            .map(|(key, size)| {
                let rel = key
                    .strip_prefix(&format!("{path}/"))
                    .unwrap_or_else(|| panic!("listed key {key} outside {path}"))
                    .to_string();
                (rel, size)
            })
            .collect();
        assert!(
            listed.contains_key(layout::MANIFEST_FILE),
            "no manifest.json under {path}: {listed:?}"
        );
        let manifest_bytes = storage
            .get(&format!("{path}/{}", layout::MANIFEST_FILE))
            .await
            .unwrap();
        assert!(
            !String::from_utf8_lossy(&manifest_bytes).contains(&self.env.s3_secret_key),
            "the manifest contains the storage secret key"
        );
        let manifest = Manifest::from_bytes(&manifest_bytes).expect("valid manifest");
        assert_eq!(manifest.backup_path, path);
        assert_eq!(manifest.backup.namespace, self.namespace());
        assert_eq!(manifest.backup.name, name);

        let stored: BTreeSet<String> = listed
            .keys()
            .filter(|k| *k != layout::MANIFEST_FILE)
            .cloned()
            .collect();
        let in_manifest: BTreeSet<String> =
            manifest.objects.iter().map(|e| e.key.clone()).collect();
        assert_eq!(
            in_manifest.len(),
            manifest.objects.len(),
            "duplicate manifest entries"
        );
        assert_eq!(
            stored, in_manifest,
            "stored objects differ from the manifest"
        );
        assert_eq!(manifest.total_objects, stored.len() as u64);

        let fetched: Vec<(usize, bytes::Bytes)> = futures::stream::iter(0..manifest.objects.len())
            .map(|i| {
                let storage = storage.clone();
                let key = format!("{path}/{}", manifest.objects[i].key);
                async move {
                    let bytes = storage
                        .get(&key)
                        .await
                        .unwrap_or_else(|e| panic!("read {key}: {e}"));
                    (i, bytes)
                }
            })
            .buffer_unordered(16)
            .collect()
            .await;
        let mut objects = BTreeMap::new();
        for (i, bytes) in fetched {
            let entry = &manifest.objects[i];
            assert_eq!(listed[&entry.key], bytes.len() as u64, "{}", entry.key);
            entry
                .verify(&bytes)
                .unwrap_or_else(|e| panic!("{}: {e}", entry.key));
            let object: Value = serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("{} is not JSON: {e}", entry.key));
            let api_version = object["apiVersion"].as_str().unwrap_or_default();
            let kind = object["kind"].as_str().unwrap_or_default();
            assert!(
                !api_version.is_empty() && !kind.is_empty(),
                "{} lacks apiVersion/kind",
                entry.key
            );
            assert_eq!(api_version, &*entry.api_version, "{}", entry.key);
            assert_eq!(kind, &*entry.kind, "{}", entry.key);
            assert_eq!(object["metadata"]["name"], entry.name, "{}", entry.key);
            assert_eq!(
                object["metadata"]["namespace"].as_str(),
                entry.namespace.as_deref(),
                "{}",
                entry.key
            );
            let parts = layout::parse_object_key("", &entry.key)
                .unwrap_or_else(|| panic!("{} is not an object key", entry.key));
            assert_eq!(parts.name, entry.name, "{}", entry.key);
            assert_eq!(parts.namespace.as_deref(), entry.namespace.as_deref());
            assert_eq!(parts.type_dir, &*entry.resource, "{}", entry.key);
            objects.insert(entry.key.clone(), object);
        }

        let mut counts: BTreeMap<String, i64> = BTreeMap::new();
        for key in &stored {
            let segments: Vec<&str> = key.split('/').collect();
            let count_key = match segments.as_slice() {
                ["namespaces", ns, type_dir, _] => format!("{ns}/{type_dir}"),
                ["cluster", type_dir, _] => format!("cluster/{type_dir}"),
                _ => panic!("unexpected key shape {key}"),
            };
            *counts.entry(count_key).or_default() += 1;
        }
        assert_eq!(
            status.resource_counts, counts,
            "status.resourceCounts differ from the stored objects"
        );
        let manifest_counts: BTreeMap<String, i64> = manifest
            .counts
            .iter()
            .map(|(k, v)| (k.clone(), *v as i64))
            .collect();
        assert_eq!(manifest_counts, counts, "manifest counts");
        assert_eq!(last.objects, stored.len() as i64, "lastRun.objects");
        assert_eq!(last.failed, manifest.errors.len() as i64, "lastRun.failed");

        StoredRun {
            path,
            manifest,
            objects,
        }
    }

    /// Whether a manifest exists for `path` (a failed run must not leave one).
    pub async fn has_manifest(&self, path: &str) -> bool {
        self.storage()
            .get(&format!("{path}/{}", layout::MANIFEST_FILE))
            .await
            .is_ok()
    }
}
