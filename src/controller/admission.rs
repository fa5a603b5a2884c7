//! The requester stamp: a MutatingAdmissionPolicy (admissionregistration.k8s.io/v1, GA and on
//! by default since Kubernetes 1.36) that writes the identity of every create and update of a
//! Backup or Restore into [`REQUESTER_ANNOTATION`] as JSON, overwriting whatever the user sent,
//! so the operator can later act with the rights of whoever asked (`core::requester` reads it).
//!
//! Status writes go to the `status` subresource, which the policy does not match (and the API
//! server drops metadata changes sent there), so the operator's status updates never restamp.
//! Writes by the operator's own ServiceAccount are skipped by a match condition, so its writes
//! to the object itself never stamp it with the operator's identity either.
//!
//! `config/admission/requester-stamp.yaml` is this module's output for the default operator
//! identity; a unit test fails when the two drift.

use k8s_openapi::api::admissionregistration::v1::{
    JSONPatch, MatchCondition, MatchResources, MutatingAdmissionPolicy,
    MutatingAdmissionPolicyBinding, MutatingAdmissionPolicyBindingSpec,
    MutatingAdmissionPolicySpec, Mutation, NamedRuleWithOperations, Variable,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};

use super::crds::FIELD_MANAGER;
use crate::api::{GROUP, REQUESTER_ANNOTATION};

/// Name of the policy and of its binding.
pub const REQUESTER_POLICY_NAME: &str = "backup.cnd.dk-requester-stamp";

/// The operator's identity as shipped (`config/rbac/service_account.yaml`).
pub const DEFAULT_OPERATOR_USERNAME: &str =
    "system:serviceaccount:cluster-backup-system:cluster-backup-operator";

/// `request.userInfo` as one JSON object. CEL has no JSON encoder; `strings.quote` escapes `"`,
/// `\` and the common control characters as JSON does (a name with another control character
/// yields a value `core::requester` refuses, never a different identity). `extra` keys are
/// sorted so the same identity always gives the same text (reinvocation settles).
const REQUESTER_JSON: &str = "'{\"username\":' + strings.quote(request.userInfo.?username.orValue('')) + \
     ',\"uid\":' + strings.quote(request.userInfo.?uid.orValue('')) + \
     ',\"groups\":[' + variables.groups.map(g, strings.quote(g)).join(',') + ']' + \
     ',\"extra\":{' + variables.extra.map(k, k).sort().map(k, strings.quote(k) + ':[' + \
     variables.extra[k].map(v, strings.quote(v)).join(',') + ']').join(',') + '}}'";

#[derive(Debug, thiserror::Error)]
pub enum AdmissionError {
    #[error(
        "operator identity {username:?} is not a Kubernetes user name the policy can hold \
         (letters, digits, `.`, `-`, `:` and `@` only)"
    )]
    OperatorName { username: String },
    #[error("cannot apply {kind} {REQUESTER_POLICY_NAME}: {source}")]
    Apply {
        kind: &'static str,
        source: kube::Error,
    },
    #[error("cannot write the admission policy as YAML: {source}")]
    Yaml { source: yaml_serde::Error },
}

/// The policy and its binding; writes by `operator_username` are not stamped.
pub fn requester_policy(
    operator_username: &str,
) -> Result<(MutatingAdmissionPolicy, MutatingAdmissionPolicyBinding), AdmissionError> {
    // It goes into a CEL string literal: only characters that cannot end or escape it.
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '@');
    if operator_username.is_empty() || !operator_username.chars().all(plain) {
        return Err(AdmissionError::OperatorName {
            username: operator_username.to_string(),
        });
    }
    let metadata = || ObjectMeta {
        name: Some(REQUESTER_POLICY_NAME.to_string()),
        labels: Some(
            [(
                "app.kubernetes.io/name".to_string(),
                "cluster-backup-operator".to_string(),
            )]
            .into(),
        ),
        ..ObjectMeta::default()
    };
    let strings = |items: &[&str]| Some(items.iter().map(|s| s.to_string()).collect());
    let variable = |name: &str, expression: &str| Variable {
        name: name.to_string(),
        expression: expression.to_string(),
    };
    let policy = MutatingAdmissionPolicy {
        metadata: metadata(),
        spec: Some(MutatingAdmissionPolicySpec {
            // A policy that cannot run must refuse the write: letting it through would keep a
            // forged stamp.
            failure_policy: Some("Fail".to_string()),
            // Again after any later mutation, so nothing after us changes the stamp.
            reinvocation_policy: Some("IfNeeded".to_string()),
            match_constraints: Some(MatchResources {
                // `backups`, not `backups/*`: status writes are not stamped.
                resource_rules: Some(vec![NamedRuleWithOperations {
                    api_groups: strings(&[GROUP]),
                    api_versions: strings(&["*"]),
                    operations: strings(&["CREATE", "UPDATE"]),
                    resources: strings(&["backups", "restores"]),
                    ..NamedRuleWithOperations::default()
                }]),
                ..MatchResources::default()
            }),
            match_conditions: Some(vec![MatchCondition {
                name: "not-the-operator".to_string(),
                expression: format!("request.userInfo.username != '{operator_username}'"),
            }]),
            variables: Some(vec![
                variable("groups", "request.userInfo.?groups.orValue([])"),
                variable("extra", "request.userInfo.?extra.orValue({})"),
                variable("requester", REQUESTER_JSON),
            ]),
            mutations: Some(vec![Mutation {
                // A JSON patch, not an ApplyConfiguration: an apply configuration converts the
                // object to its schema type first, so a create the CRD schema rejects (422,
                // naming the bad field) would fail in the policy instead, with a 403 about a
                // conversion. "add" replaces an existing key, so a forged value is overwritten.
                patch_type: "JSONPatch".to_string(),
                apply_configuration: None,
                json_patch: Some(JSONPatch {
                    expression: Some(format!(
                        "has(object.metadata.annotations) ? \
                         [JSONPatch{{op: \"add\", path: \"/metadata/annotations/{escaped}\", \
                         value: variables.requester}}] : \
                         [JSONPatch{{op: \"add\", path: \"/metadata/annotations\", \
                         value: {{\"{REQUESTER_ANNOTATION}\": variables.requester}}}}]",
                        escaped = REQUESTER_ANNOTATION.replace('~', "~0").replace('/', "~1"),
                    )),
                }),
            }]),
            param_kind: None,
        }),
    };
    let binding = MutatingAdmissionPolicyBinding {
        metadata: metadata(),
        spec: Some(MutatingAdmissionPolicyBindingSpec {
            policy_name: Some(REQUESTER_POLICY_NAME.to_string()),
            match_resources: None,
            param_ref: None,
        }),
    };
    Ok((policy, binding))
}

/// The policy and binding as one multi-document YAML stream, as checked in under
/// `config/admission/`.
pub fn requester_policy_yaml(operator_username: &str) -> Result<String, AdmissionError> {
    let (policy, binding) = requester_policy(operator_username)?;
    let mut out = String::new();
    for document in [
        yaml_serde::to_string(&policy),
        yaml_serde::to_string(&binding),
    ] {
        out.push_str("---\n");
        out.push_str(&document.map_err(|source| AdmissionError::Yaml { source })?);
    }
    Ok(out)
}

/// Server-side applies the policy and its binding (idempotent; cluster-scoped, one per
/// cluster). The API server enforces a new or changed policy within about a second, not at
/// once.
pub async fn install_admission_policy(
    client: &Client,
    operator_username: &str,
) -> Result<(), AdmissionError> {
    let (policy, binding) = requester_policy(operator_username)?;
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let policies: Api<MutatingAdmissionPolicy> = Api::all(client.clone());
    policies
        .patch(REQUESTER_POLICY_NAME, &params, &Patch::Apply(&policy))
        .await
        .map_err(|source| AdmissionError::Apply {
            kind: "MutatingAdmissionPolicy",
            source,
        })?;
    let bindings: Api<MutatingAdmissionPolicyBinding> = Api::all(client.clone());
    bindings
        .patch(REQUESTER_POLICY_NAME, &params, &Patch::Apply(&binding))
        .await
        .map_err(|source| AdmissionError::Apply {
            kind: "MutatingAdmissionPolicyBinding",
            source,
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_in_yaml_is_the_generated_one() {
        let generated = requester_policy_yaml(DEFAULT_OPERATOR_USERNAME).unwrap();
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/config/admission/requester-stamp.yaml"
        );
        if std::env::var_os("REGENERATE").is_some() {
            std::fs::write(path, &generated).unwrap();
        }
        let checked_in = std::fs::read_to_string(path).unwrap_or_default();
        assert_eq!(
            checked_in, generated,
            "{path} drifted from the code: REGENERATE=1 cargo test --lib admission"
        );
    }

    #[test]
    fn operator_name_cannot_break_out_of_the_cel_string() {
        for bad in ["", "a'b", "a\\b", "a b", "x' || true || '"] {
            assert!(requester_policy(bad).is_err(), "{bad:?}");
        }
        assert!(requester_policy("system:serviceaccount:ops:backup-operator").is_ok());
    }

    #[test]
    fn excludes_the_operator_and_matches_no_subresource() {
        let (policy, _) = requester_policy(DEFAULT_OPERATOR_USERNAME).unwrap();
        let spec = policy.spec.unwrap();
        let conditions = spec.match_conditions.unwrap();
        assert!(conditions[0].expression.contains(DEFAULT_OPERATOR_USERNAME));
        let rules = spec.match_constraints.unwrap().resource_rules.unwrap();
        let resources = rules[0].resources.clone().unwrap();
        assert!(resources.iter().all(|r| !r.contains('/')), "{resources:?}");
    }
}
