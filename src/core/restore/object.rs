//! Small, total accessors for stored objects as `serde_json::Value`.
//!
//! Stored objects are untrusted input: every accessor tolerates missing fields and fields of
//! the wrong JSON type (it then behaves as if the field were absent) and never panics.

use serde_json::{Map, Value};

/// The API group of `apiVersion` (`""` for the core group `v1`), or `None` when the object
/// has no string `apiVersion`.
pub(crate) fn api_group(obj: &Value) -> Option<&str> {
    let api_version = obj.get("apiVersion")?.as_str()?;
    Some(match api_version.split_once('/') {
        Some((group, _version)) => group,
        None => "",
    })
}

/// `kind`, when it is a string.
pub(crate) fn kind(obj: &Value) -> Option<&str> {
    obj.get("kind")?.as_str()
}

/// Whether the object is `kind` of `group` (`""` for core).
pub(crate) fn is_kind(obj: &Value, group: &str, kind_name: &str) -> bool {
    api_group(obj) == Some(group) && kind(obj) == Some(kind_name)
}

/// The value at `path`, when every step is an object field.
pub(crate) fn get<'a>(obj: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(obj, |v, key| v.as_object()?.get(*key))
}

/// The string at `path`.
pub(crate) fn get_str<'a>(obj: &'a Value, path: &[&str]) -> Option<&'a str> {
    get(obj, path)?.as_str()
}

/// The object at `path`, mutably.
pub(crate) fn get_object_mut<'a>(
    obj: &'a mut Value,
    path: &[&str],
) -> Option<&'a mut Map<String, Value>> {
    path.iter()
        .try_fold(obj, |v, key| v.as_object_mut()?.get_mut(*key))?
        .as_object_mut()
}

/// Removes the field at `path` (the last step) if its parents are objects.
pub(crate) fn remove(obj: &mut Value, path: &[&str]) -> Option<Value> {
    let (last, parents) = path.split_last()?;
    get_object_mut(obj, parents)?.remove(*last)
}

/// `metadata.annotations[key]` when it is a string.
pub(crate) fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    get(obj, &["metadata", "annotations", key])?.as_str()
}

/// `metadata.labels[key]` when it is a string.
pub(crate) fn label<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    get(obj, &["metadata", "labels", key])?.as_str()
}

/// Removes `keys` from the string map at `path` (labels or annotations) and drops the map when
/// that leaves it empty, so an object that only carried server-set entries looks like one that
/// never had any.
pub(crate) fn remove_map_keys(obj: &mut Value, path: &[&str], keys: &[&str]) {
    let Some(map) = get_object_mut(obj, path) else {
        return;
    };
    let mut removed = false;
    for key in keys {
        removed |= map.remove(*key).is_some();
    }
    if removed && map.is_empty() {
        remove(obj, path);
    }
}

/// The `ownerReference` with `controller: true`, as `(apiVersion group, kind, name)`.
pub(crate) fn controller_owner(obj: &Value) -> Option<(&str, &str, &str)> {
    get(obj, &["metadata", "ownerReferences"])?
        .as_array()?
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        .and_then(|r| {
            let group = api_group(r)?;
            Some((group, kind(r)?, r.get("name")?.as_str()?))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn groups_and_kinds() {
        let o = json!({"apiVersion": "apps/v1", "kind": "Deployment"});
        assert_eq!(api_group(&o), Some("apps"));
        assert_eq!(kind(&o), Some("Deployment"));
        assert!(is_kind(&o, "apps", "Deployment"));
        assert!(!is_kind(&o, "", "Deployment"));
        let core = json!({"apiVersion": "v1", "kind": "Service"});
        assert_eq!(api_group(&core), Some(""));
        assert_eq!(api_group(&json!({"apiVersion": 1})), None);
        assert_eq!(api_group(&json!([])), None);
        assert_eq!(kind(&json!({"kind": ["x"]})), None);
    }

    #[test]
    fn paths_tolerate_wrong_types() {
        let mut o = json!({"spec": {"a": {"b": "c"}, "list": [1]}, "metadata": "oops"});
        assert_eq!(get_str(&o, &["spec", "a", "b"]), Some("c"));
        assert_eq!(get_str(&o, &["spec", "list", "0"]), None);
        assert_eq!(annotation(&o, "x"), None);
        assert_eq!(remove(&mut o, &["metadata", "name"]), None);
        assert_eq!(remove(&mut o, &[]), None);
        assert_eq!(remove(&mut o, &["spec", "a", "b"]), Some(json!("c")));
        assert_eq!(o["spec"]["a"], json!({}));
    }

    #[test]
    fn emptied_maps_are_dropped() {
        let mut o = json!({"metadata": {"labels": {"a": "1", "b": "2"}}});
        remove_map_keys(&mut o, &["metadata", "labels"], &["a"]);
        assert_eq!(o["metadata"]["labels"], json!({"b": "2"}));
        remove_map_keys(&mut o, &["metadata", "labels"], &["b", "c"]);
        assert_eq!(o["metadata"], json!({}));
        // An empty map that nothing was removed from stays as it was.
        let mut o = json!({"metadata": {"labels": {}}});
        remove_map_keys(&mut o, &["metadata", "labels"], &["a"]);
        assert_eq!(o["metadata"]["labels"], json!({}));
    }

    #[test]
    fn controller_owner_is_the_one_with_controller_true() {
        let o = json!({"metadata": {"ownerReferences": [
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "c"},
            {"apiVersion": "batch/v1", "kind": "Job", "name": "j", "controller": true},
        ]}});
        assert_eq!(controller_owner(&o), Some(("batch", "Job", "j")));
        assert_eq!(
            controller_owner(&json!({"metadata": {"ownerReferences": "x"}})),
            None
        );
    }
}
