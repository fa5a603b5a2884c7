//! Checking a `metav1.LabelSelector` before it is used.
//!
//! The selector itself is kube's [`Selector`] (from k8s-openapi's `LabelSelector`): its
//! `to_string()` is the API server's `labelSelector` query, which the backup lists with, and
//! [`kube::core::SelectorExt::matches`] matches labels with Kubernetes semantics, which the
//! restore filters stored objects with. What is ours is the validation: the rules Kubernetes
//! applies (`ValidateLabelSelector`), so a bad selector fails before a run starts, with a
//! message naming the bad part, instead of as an opaque 400 from the first list call (or, on
//! restore, as objects silently not selected).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::core::Selector;

/// A selector Kubernetes would refuse. Every problem found is listed, not just the first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid labelSelector: {}", .problems.join("; "))]
pub struct SelectorError {
    /// Each entry names the bad part, e.g. `matchExpressions[1]: operator "Equals" is not …`.
    pub problems: Vec<String>,
}

/// Label-name part of a key and label values: at most this many characters.
const MAX_NAME_LEN: usize = 63;
/// DNS-1123 subdomain prefix of a key (`example.com/` in `example.com/tier`).
const MAX_PREFIX_LEN: usize = 253;

/// Validates `sel` as the API server would, then converts it to kube's [`Selector`].
pub fn parse(sel: &LabelSelector) -> Result<Selector, SelectorError> {
    let problems = problems(sel);
    if !problems.is_empty() {
        return Err(SelectorError { problems });
    }
    Selector::try_from(sel.clone()).map_err(|err| SelectorError {
        problems: vec![err.to_string()],
    })
}

/// The API server's `labelSelector` query for `sel`; `Ok(None)` when it selects everything
/// (empty `matchLabels` and `matchExpressions`), so no query parameter is needed.
pub fn label_selector_to_query(sel: &LabelSelector) -> Result<Option<String>, SelectorError> {
    let selector = parse(sel)?;
    Ok((!selector.selects_all()).then(|| selector.to_string()))
}

/// Every problem Kubernetes' `ValidateLabelSelector` would find in `sel`.
fn problems(sel: &LabelSelector) -> Vec<String> {
    let mut problems = Vec::new();
    for (key, value) in sel.match_labels.iter().flatten() {
        let at = format!("matchLabels[{key:?}]");
        check_key(&at, key, &mut problems);
        check_value(&at, value, &mut problems);
    }
    for (i, expr) in sel.match_expressions.iter().flatten().enumerate() {
        let at = format!("matchExpressions[{i}]");
        check_key(&format!("{at}.key"), &expr.key, &mut problems);
        let values = expr.values.as_deref().unwrap_or_default();
        let needs_values = match expr.operator.as_str() {
            "In" | "NotIn" => true,
            "Exists" | "DoesNotExist" => false,
            other => {
                problems.push(format!(
                    "{at}: operator {other:?} is not one of In, NotIn, Exists, DoesNotExist"
                ));
                continue;
            }
        };
        if needs_values && values.is_empty() {
            problems.push(format!(
                "{at}: operator {} needs at least one value",
                expr.operator
            ));
        }
        if !needs_values && !values.is_empty() {
            problems.push(format!(
                "{at}: operator {} takes no values, got {}",
                expr.operator,
                values.len()
            ));
        }
        for (j, v) in values.iter().enumerate() {
            check_value(&format!("{at}.values[{j}]"), v, &mut problems);
        }
    }
    problems
}

/// `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?` — label names and (non-empty) label values.
fn is_label_name_syntax(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// DNS-1123 subdomain, as a label-key prefix.
fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= MAX_PREFIX_LEN && crate::core::names::is_dns1123_subdomain(s)
}

const NAME_RULE: &str = "must be 63 characters or less, consist of alphanumeric characters, \
                         '-', '_' or '.', and start and end with an alphanumeric character";

/// Kubernetes' `IsQualifiedName`: `[prefix/]name`.
fn check_key(at: &str, key: &str, problems: &mut Vec<String>) {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        if name.contains('/') {
            problems.push(format!(
                "{at}: key {key:?} must be a name with an optional DNS subdomain prefix and '/'"
            ));
            return;
        }
        if !is_dns1123_subdomain(prefix) {
            problems.push(format!(
                "{at}: key {key:?}: prefix {prefix:?} must be a lowercase DNS subdomain of at \
                 most {MAX_PREFIX_LEN} characters (e.g. example.com)"
            ));
        }
    }
    if name.is_empty() {
        problems.push(format!("{at}: key {key:?}: name part must not be empty"));
    } else if name.len() > MAX_NAME_LEN || !is_label_name_syntax(name) {
        problems.push(format!("{at}: key {key:?}: name part {NAME_RULE}"));
    }
}

/// Kubernetes' `IsValidLabelValue`: empty, or a label name.
fn check_value(at: &str, value: &str, problems: &mut Vec<String>) {
    if !value.is_empty() && (value.len() > MAX_NAME_LEN || !is_label_name_syntax(value)) {
        problems.push(format!("{at}: value {value:?} {NAME_RULE}, or be empty"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;
    use kube::core::SelectorExt;
    use std::collections::BTreeMap;

    /// Whether `labels` satisfy a valid `sel`.
    fn matches(sel: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
        parse(sel).unwrap().matches(labels)
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn expr(key: &str, op: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: if values.is_empty() {
                None
            } else {
                Some(values.iter().map(|v| v.to_string()).collect())
            },
        }
    }

    fn sel(ml: &[(&str, &str)], exprs: Vec<LabelSelectorRequirement>) -> LabelSelector {
        LabelSelector {
            match_labels: if ml.is_empty() {
                None
            } else {
                Some(labels(ml))
            },
            match_expressions: if exprs.is_empty() { None } else { Some(exprs) },
        }
    }

    #[test]
    fn empty_selector_selects_everything() {
        assert_eq!(label_selector_to_query(&LabelSelector::default()), Ok(None));
        let empty_lists = LabelSelector {
            match_labels: Some(BTreeMap::new()),
            match_expressions: Some(vec![]),
        };
        assert_eq!(label_selector_to_query(&empty_lists), Ok(None));
        assert!(matches(&empty_lists, &BTreeMap::new()));
        assert!(matches(&empty_lists, &labels(&[("a", "b")])));
    }

    #[test]
    fn all_operators_render_with_sorted_values() {
        let s = sel(
            &[("tier", "web"), ("app", "shop")],
            vec![
                expr("env", "In", &["prod", "dev", "prod"]),
                expr("track", "NotIn", &["canary"]),
                expr("example.com/owner", "Exists", &[]),
                expr("legacy", "DoesNotExist", &[]),
            ],
        );
        assert_eq!(
            label_selector_to_query(&s).unwrap().unwrap(),
            "app=shop,tier=web,env in (dev,prod),track notin (canary),example.com/owner,!legacy"
        );
    }

    #[test]
    fn empty_values_are_valid_and_rendered() {
        let s = sel(&[("a", "")], vec![expr("b", "In", &["", "x"])]);
        assert_eq!(
            label_selector_to_query(&s).unwrap().unwrap(),
            "a=,b in (,x)"
        );
        assert!(matches(&s, &labels(&[("a", ""), ("b", "")])));
        assert!(!matches(&s, &labels(&[("b", "")])));
    }

    #[test]
    fn unknown_operator_is_named() {
        let s = sel(
            &[],
            vec![expr("app", "In", &["a"]), expr("tier", "Equals", &["web"])],
        );
        let err = label_selector_to_query(&s).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid labelSelector: matchExpressions[1]: operator \"Equals\" is not one of In, \
             NotIn, Exists, DoesNotExist"
        );
    }

    #[test]
    fn operator_arity_is_checked() {
        let err = label_selector_to_query(&sel(
            &[],
            vec![expr("a", "In", &[]), expr("b", "Exists", &["x"])],
        ))
        .unwrap_err();
        assert_eq!(
            err.problems,
            vec![
                "matchExpressions[0]: operator In needs at least one value".to_string(),
                "matchExpressions[1]: operator Exists takes no values, got 1".to_string(),
            ]
        );
        let not_in = sel(&[], vec![expr("a", "NotIn", &[])]);
        assert!(label_selector_to_query(&not_in).is_err());
        let dne = sel(&[], vec![expr("a", "DoesNotExist", &["x"])]);
        assert!(label_selector_to_query(&dne).is_err());
        // Operators are case-sensitive in Kubernetes.
        assert!(label_selector_to_query(&sel(&[], vec![expr("a", "in", &["x"])])).is_err());
    }

    #[test]
    fn keys_are_validated_like_kubernetes() {
        let ok = [
            "app",
            "a",
            "A.b-c_d",
            "app.kubernetes.io/name",
            "example.com/X",
            "1abc",
            &"x".repeat(63),
        ];
        for k in ok {
            let s = sel(&[(k, "v")], vec![]);
            assert!(label_selector_to_query(&s).is_ok(), "{k} should be valid");
        }
        let prefix_253 = format!("{}.{}", "a".repeat(63), "b".repeat(189));
        assert_eq!(prefix_253.len(), 253);
        assert!(
            label_selector_to_query(&sel(&[(&format!("{prefix_253}/n"), "v")], vec![])).is_ok()
        );

        let bad = [
            "",
            "-app",
            "app-",
            "has space",
            "a/b/c",
            "/name",
            "Example.com/name",
            "example.com/",
            "a_b.com/name",
            &"x".repeat(64),
            &format!("{}/n", "a".repeat(254)),
        ];
        for k in bad {
            let s = sel(&[], vec![expr(k, "Exists", &[])]);
            let err = label_selector_to_query(&s).unwrap_err();
            assert!(
                err.to_string().contains("matchExpressions[0].key"),
                "{k}: {err}"
            );
        }
    }

    #[test]
    fn values_are_validated_and_named() {
        let s = sel(
            &[("app", "bad value")],
            vec![expr("tier", "In", &["ok", "-bad"])],
        );
        let err = label_selector_to_query(&s).unwrap_err();
        assert_eq!(err.problems.len(), 2);
        assert!(err.problems[0].starts_with("matchLabels[\"app\"]: value \"bad value\""));
        assert!(err.problems[1].starts_with("matchExpressions[0].values[1]: value \"-bad\""));
        let long = "v".repeat(64);
        assert!(label_selector_to_query(&sel(&[("a", &long)], vec![])).is_err());
        assert!(label_selector_to_query(&sel(&[("a", &long[..63])], vec![])).is_ok());
    }

    #[test]
    fn matches_has_kubernetes_semantics() {
        let s = sel(
            &[("app", "shop")],
            vec![
                expr("env", "In", &["prod", "staging"]),
                expr("track", "NotIn", &["canary"]),
                expr("legacy", "DoesNotExist", &[]),
            ],
        );
        assert!(matches(&s, &labels(&[("app", "shop"), ("env", "prod")])));
        assert!(matches(
            &s,
            &labels(&[("app", "shop"), ("env", "staging"), ("track", "stable")])
        ));
        assert!(
            !matches(&s, &labels(&[("app", "shop")])),
            "In needs the key"
        );
        assert!(!matches(&s, &labels(&[("app", "other"), ("env", "prod")])));
        assert!(!matches(
            &s,
            &labels(&[("app", "shop"), ("env", "prod"), ("track", "canary")])
        ));
        assert!(!matches(
            &s,
            &labels(&[("app", "shop"), ("env", "prod"), ("legacy", "")])
        ));

        let exists = sel(&[], vec![expr("x", "Exists", &[])]);
        assert!(matches(&exists, &labels(&[("x", "")])));
        assert!(!matches(&exists, &labels(&[("y", "1")])));
    }

    #[test]
    fn parsed_selector_is_reusable() {
        let s = parse(&sel(&[("a", "1")], vec![])).unwrap();
        assert!(!s.selects_all());
        assert!(s.matches(&labels(&[("a", "1"), ("b", "2")])));
        assert!(!s.matches(&labels(&[("a", "2")])));
        assert_eq!(s.to_string(), "a=1");
        assert!(parse(&LabelSelector::default()).unwrap().selects_all());
    }
}
