//! Object keys relative to a location's prefix ↔ full object_store paths.
//!
//! Keys are '/'-separated; empty segments are dropped, so `a//b/` and `/a/b` are the same key.
//! object_store percent-encodes characters S3 advises against (`%`, `~`, `[`, ...) in each
//! segment; keys coming back from a listing are decoded again so they round-trip through
//! [`super::Storage::path`].

use object_store::path::{Path, PathPart};

use super::StorageError;

/// Prefix segments from `storageLocation.prefix`: `"a/b/"`, `"/a/b"` and `"a//b"` all give
/// `["a", "b"]`. `.`/`..` segments and control characters are refused.
pub(crate) fn prefix_segments(prefix: Option<&str>) -> Result<Vec<String>, StorageError> {
    let segments = split(prefix.unwrap_or_default());
    for segment in &segments {
        if *segment == "." || *segment == ".." || segment.chars().any(char::is_control) {
            return Err(StorageError::InvalidLocation {
                reason: format!(
                    "prefix {:?} must not contain \".\" or \"..\" segments or control characters",
                    prefix.unwrap_or_default()
                ),
            });
        }
    }
    Ok(segments.into_iter().map(str::to_string).collect())
}

/// The full path of `key` under `prefix`.
pub(crate) fn full_path(prefix: &[String], key: &str) -> Path {
    prefix
        .iter()
        .map(String::as_str)
        .chain(split(key))
        .map(PathPart::from)
        .collect()
}

/// `location` relative to `prefix`, decoded; `None` if it is not under the prefix.
pub(crate) fn relative_key(prefix: &Path, location: &Path) -> Option<String> {
    let parts = location.prefix_match(prefix)?;
    Some(
        parts
            .map(|p| decode(p.as_ref()))
            .collect::<Vec<_>>()
            .join("/"),
    )
}

fn split(key: &str) -> Vec<&str> {
    key.split('/').filter(|s| !s.is_empty()).collect()
}

/// Reverses object_store's per-segment percent-encoding. A segment that does not decode to
/// UTF-8 (written by another tool) is returned as stored.
fn decode(segment: &str) -> String {
    if !segment.contains('%') {
        return segment.to_string();
    }
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| segment.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_normalised() {
        for raw in ["a/b/", "/a/b", "a//b", " a/b".trim()] {
            assert_eq!(prefix_segments(Some(raw)).unwrap(), ["a", "b"], "{raw}");
        }
        assert!(prefix_segments(None).unwrap().is_empty());
        assert!(prefix_segments(Some("/")).unwrap().is_empty());
        assert!(prefix_segments(Some("a/../b")).is_err());
        assert!(prefix_segments(Some("./b")).is_err());
    }

    #[test]
    fn paths_join_prefix_and_key() {
        let prefix = prefix_segments(Some("/clusters/prod/")).unwrap();
        assert_eq!(
            full_path(&prefix, "backups/x.json").as_ref(),
            "clusters/prod/backups/x.json"
        );
        assert_eq!(
            full_path(&prefix, "/backups//x.json").as_ref(),
            "clusters/prod/backups/x.json"
        );
        assert_eq!(full_path(&[], "x").as_ref(), "x");
        assert_eq!(full_path(&prefix, "").as_ref(), "clusters/prod");
    }

    #[test]
    fn odd_characters_round_trip() {
        let prefix = prefix_segments(Some("p")).unwrap();
        for key in [
            "rbac/system:aggregate-to-edit",
            "a/we~ird[1]%25",
            "a/..",
            "ünïcode/ø",
        ] {
            let path = full_path(&prefix, key);
            let back = relative_key(&full_path(&prefix, ""), &path).unwrap();
            assert_eq!(back, key);
        }
    }

    #[test]
    fn keys_outside_the_prefix_are_not_relative() {
        let prefix = full_path(&prefix_segments(Some("a/b")).unwrap(), "");
        assert_eq!(relative_key(&prefix, &Path::from("a/bc/x")), None);
        assert_eq!(
            relative_key(&prefix, &Path::from("a/b/x")).as_deref(),
            Some("x")
        );
        assert_eq!(
            relative_key(&Path::from(""), &Path::from("a/b")).as_deref(),
            Some("a/b")
        );
    }
}
