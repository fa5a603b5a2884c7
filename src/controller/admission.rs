//! The requester stamp: a MutatingAdmissionPolicy (admissionregistration.k8s.io/v1, GA and on
//! by default since Kubernetes 1.36) that records who created a Backup or Restore, or last
//! changed its spec or its run-now trigger, as JSON in [`REQUESTER_ANNOTATION`], so the
//! operator acts with that identity's rights (`core::requester` reads it).
//!
//! - A create, or an update that changes `spec` or the `backup.cnd.dk/run-now` annotation, is
//!   stamped with `request.userInfo`, overwriting whatever the user sent.
//! - Any other update (labels, finalizers, a garbage collector, an admin adding an annotation)
//!   keeps the previous stamp, whatever the request carries: otherwise an administrator
//!   touching a tenant's Backup would hand the tenant's spec the administrator's rights, and a
//!   user could rewrite the stamp of an object whose spec someone else wrote.
//! - Status writes go to the `status` subresource, which the policy does not match (and the
//!   API server drops metadata sent there). The operator never writes the objects themselves,
//!   so there is no identity to exempt: every write goes through the policy.
//!
//! `config/admission/requester-stamp.yaml` is this module's output; a unit test fails when the
//! two drift.

use k8s_openapi::api::admissionregistration::v1::{
    JSONPatch, MatchResources, MutatingAdmissionPolicy, MutatingAdmissionPolicyBinding,
    MutatingAdmissionPolicyBindingSpec, MutatingAdmissionPolicySpec, Mutation,
    NamedRuleWithOperations, Variable,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::time::Duration;

use kube::api::{ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};

use super::crds::FIELD_MANAGER;
use crate::api::{GROUP, REQUESTER_ANNOTATION, RUN_NOW_ANNOTATION};

/// Name of the policy and of its binding.
pub const REQUESTER_POLICY_NAME: &str = "backup.cnd.dk-requester-stamp";

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
    #[error("cannot apply {kind} {REQUESTER_POLICY_NAME}: {source}")]
    Apply {
        kind: &'static str,
        source: kube::Error,
    },
    #[error("cannot write the admission policy as YAML: {source}")]
    Yaml { source: yaml_serde::Error },
    #[error(
        "the requester-stamp policy is installed but the API server did not enforce it within \
         {seconds} s (last probe: {last})"
    )]
    NotEnforced { seconds: u64, last: String },
}

/// `annotation` of the object before this update, or `''`.
fn old_annotation(annotation: &str) -> String {
    format!("oldObject == null ? '' : oldObject.metadata.?annotations[?'{annotation}'].orValue('')")
}

/// The policy and its binding.
pub fn requester_policy() -> (MutatingAdmissionPolicy, MutatingAdmissionPolicyBinding) {
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
            match_conditions: None,
            variables: Some(vec![
                variable("groups", "request.userInfo.?groups.orValue([])"),
                variable("extra", "request.userInfo.?extra.orValue({})"),
                variable("requester", REQUESTER_JSON),
                variable(
                    "changed",
                    &format!(
                        "oldObject == null || object.spec != oldObject.spec || \
                         object.metadata.?annotations[?'{RUN_NOW_ANNOTATION}'].orValue('') != \
                         ({})",
                        old_annotation(RUN_NOW_ANNOTATION)
                    ),
                ),
                variable(
                    "stamp",
                    &format!(
                        "variables.changed ? variables.requester : ({})",
                        old_annotation(REQUESTER_ANNOTATION)
                    ),
                ),
            ]),
            mutations: Some(vec![Mutation {
                // A JSON patch, not an ApplyConfiguration: an apply configuration converts the
                // object to its schema type first, so a create the CRD schema rejects (422,
                // naming the bad field) would fail in the policy instead, with a 403 about a
                // conversion. "add" replaces an existing key, so a forged value is overwritten.
                patch_type: "JSONPatch".to_string(),
                apply_configuration: None,
                // An object that had no stamp keeps none (a value the user sent is removed).
                json_patch: Some(JSONPatch {
                    expression: Some(format!(
                        "variables.stamp == '' ? \
                         (object.metadata.?annotations[?'{REQUESTER_ANNOTATION}'].hasValue() ? \
                         [JSONPatch{{op: \"remove\", path: \"/metadata/annotations/{escaped}\"}}] : \
                         []) : \
                         has(object.metadata.annotations) ? \
                         [JSONPatch{{op: \"add\", path: \"/metadata/annotations/{escaped}\", \
                         value: variables.stamp}}] : \
                         [JSONPatch{{op: \"add\", path: \"/metadata/annotations\", \
                         value: {{\"{REQUESTER_ANNOTATION}\": variables.stamp}}}}]",
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
    (policy, binding)
}

/// The policy and binding as one multi-document YAML stream, as checked in under
/// `config/admission/`.
pub fn requester_policy_yaml() -> Result<String, AdmissionError> {
    let (policy, binding) = requester_policy();
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
pub async fn install_admission_policy(client: &Client) -> Result<(), AdmissionError> {
    let (policy, binding) = requester_policy();
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

/// Why the stamps in the cluster cannot be trusted right now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyProblem {
    #[error("the MutatingAdmissionPolicy {REQUESTER_POLICY_NAME} is not installed")]
    PolicyMissing,
    #[error("the MutatingAdmissionPolicyBinding {REQUESTER_POLICY_NAME} is not installed")]
    BindingMissing,
    #[error(
        "the installed MutatingAdmissionPolicy {REQUESTER_POLICY_NAME} is not this version's \
         (it differs in {what})"
    )]
    PolicyChanged { what: &'static str },
    #[error(
        "the installed MutatingAdmissionPolicyBinding {REQUESTER_POLICY_NAME} does not apply \
         the policy to every Backup and Restore (it differs in {what})"
    )]
    BindingChanged { what: &'static str },
    #[error("cannot read the requester-stamp policy: {0}")]
    Unreadable(String),
}

/// What is wrong with the installed policy and binding, compared with this version's: every
/// field that decides which writes are stamped and how (the fields the API server defaults are
/// accepted at their defaults). `None`: the stamps can be trusted.
pub fn policy_problem(
    policy: Option<&MutatingAdmissionPolicy>,
    binding: Option<&MutatingAdmissionPolicyBinding>,
) -> Option<PolicyProblem> {
    let (wanted, _) = requester_policy();
    let (Some(policy), Some(wanted)) = (policy.and_then(|p| p.spec.as_ref()), wanted.spec) else {
        return Some(PolicyProblem::PolicyMissing);
    };
    let changed = |what| Some(PolicyProblem::PolicyChanged { what });
    if policy.variables != wanted.variables {
        return changed("variables");
    }
    if policy.mutations != wanted.mutations {
        return changed("mutations");
    }
    if policy.failure_policy != wanted.failure_policy {
        return changed("failurePolicy");
    }
    if policy.reinvocation_policy != wanted.reinvocation_policy {
        return changed("reinvocationPolicy");
    }
    if policy.param_kind.is_some() {
        return changed("paramKind");
    }
    if policy
        .match_conditions
        .as_ref()
        .is_some_and(|c| !c.is_empty())
    {
        return changed("matchConditions");
    }
    let constraints = policy.match_constraints.clone().unwrap_or_default();
    let rules = |c: &MatchResources| {
        c.resource_rules
            .iter()
            .flatten()
            .map(|r| {
                (
                    r.api_groups.clone(),
                    r.api_versions.clone(),
                    r.operations.clone(),
                    r.resources.clone(),
                )
            })
            .collect::<Vec<_>>()
    };
    if rules(&constraints) != rules(&wanted.match_constraints.unwrap_or_default())
        || !selects_everything(&constraints)
    {
        return changed("matchConstraints");
    }
    let Some(binding) = binding.and_then(|b| b.spec.as_ref()) else {
        return Some(PolicyProblem::BindingMissing);
    };
    let binding_changed = |what| Some(PolicyProblem::BindingChanged { what });
    if binding.policy_name.as_deref() != Some(REQUESTER_POLICY_NAME) {
        return binding_changed("policyName");
    }
    if binding.param_ref.is_some() {
        return binding_changed("paramRef");
    }
    if binding
        .match_resources
        .as_ref()
        .is_some_and(|m| !selects_everything(m) || m.resource_rules.is_some())
    {
        return binding_changed("matchResources");
    }
    None
}

/// No namespace or object selector and no exclusions: nothing slips past.
fn selects_everything(resources: &MatchResources) -> bool {
    let empty =
        |selector: &Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>| {
            selector.as_ref().is_none_or(|s| {
                s.match_labels.as_ref().is_none_or(|l| l.is_empty())
                    && s.match_expressions.as_ref().is_none_or(|e| e.is_empty())
            })
        };
    empty(&resources.namespace_selector)
        && empty(&resources.object_selector)
        && resources
            .exclude_resource_rules
            .as_ref()
            .is_none_or(|rules| rules.is_empty())
}

/// Reads the installed policy and binding and says what is wrong with them, if anything.
pub async fn check_policy(client: &Client) -> Option<PolicyProblem> {
    let policies: Api<MutatingAdmissionPolicy> = Api::all(client.clone());
    let bindings: Api<MutatingAdmissionPolicyBinding> = Api::all(client.clone());
    let read = futures::try_join!(
        policies.get_opt(REQUESTER_POLICY_NAME),
        bindings.get_opt(REQUESTER_POLICY_NAME)
    );
    match read {
        Ok((policy, binding)) => policy_problem(policy.as_ref(), binding.as_ref()),
        Err(err) => Some(PolicyProblem::Unreadable(err.to_string())),
    }
}

/// How long a good answer of [`check_policy`] is trusted before runs check again.
pub const POLICY_CHECK_TTL: Duration = Duration::from_secs(10);

/// Checks, before a run acts as a stamped requester, that the policy that makes stamps
/// trustworthy is in force: while it is missing or altered, anyone who may write a Backup could
/// write any stamp. A good answer is kept for [`POLICY_CHECK_TTL`].
pub struct PolicyGuard {
    client: Client,
    checked_at: std::sync::Mutex<Option<tokio::time::Instant>>,
}

impl PolicyGuard {
    pub fn new(client: Client) -> PolicyGuard {
        PolicyGuard {
            client,
            checked_at: std::sync::Mutex::new(None),
        }
    }

    pub async fn ensure(&self) -> Result<(), PolicyProblem> {
        let fresh = |at: &Option<tokio::time::Instant>| {
            at.is_some_and(|at| at.elapsed() < POLICY_CHECK_TTL)
        };
        if self.checked_at.lock().is_ok_and(|at| fresh(&at)) {
            return Ok(());
        }
        match check_policy(&self.client).await {
            None => {
                if let Ok(mut at) = self.checked_at.lock() {
                    *at = Some(tokio::time::Instant::now());
                }
                Ok(())
            }
            Some(problem) => Err(problem),
        }
    }
}

/// Waits until the API server stamps writes (a fresh or changed policy is picked up by an
/// informer, so it takes a moment): a dry-run create of a Backup in `default` (nothing is
/// stored) comes back stamped.
pub async fn wait_until_enforced(client: &Client, timeout: Duration) -> Result<(), AdmissionError> {
    let probe = serde_json::json!({
        "apiVersion": format!("{GROUP}/{}", crate::api::VERSION),
        "kind": "Backup",
        "metadata": {"generateName": "requester-stamp-probe-", "namespace": "default"},
        "spec": {"source": {"namespaces": ["default"]},
                 "storageLocation": {"provider": "minio", "bucket": "probe"}},
    });
    let api: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "default",
        &ApiResource::erase::<crate::api::Backup>(&()),
    );
    let params = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let last = match serde_json::from_value::<DynamicObject>(probe.clone()) {
            Ok(object) => match api.create(&params, &object).await {
                Ok(created) if created.annotations().contains_key(REQUESTER_ANNOTATION) => {
                    return Ok(());
                }
                Ok(_) => "created without a stamp".to_string(),
                Err(err) => err.to_string(),
            },
            Err(err) => err.to_string(),
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(AdmissionError::NotEnforced {
                seconds: timeout.as_secs(),
                last,
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_in_yaml_is_the_generated_one() {
        let generated = requester_policy_yaml().unwrap();
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

    use k8s_openapi::api::admissionregistration::v1::MatchCondition;

    /// The policy and binding as the API server returns them: with its defaults filled in.
    fn as_served() -> (MutatingAdmissionPolicy, MutatingAdmissionPolicyBinding) {
        let (mut policy, mut binding) = requester_policy();
        let spec = policy.spec.as_mut().unwrap();
        let constraints = spec.match_constraints.as_mut().unwrap();
        constraints.match_policy = Some("Equivalent".into());
        constraints.namespace_selector = Some(Default::default());
        constraints.object_selector = Some(Default::default());
        binding.spec.as_mut().unwrap().match_resources = Some(MatchResources {
            namespace_selector: Some(Default::default()),
            object_selector: Some(Default::default()),
            match_policy: Some("Equivalent".into()),
            ..MatchResources::default()
        });
        (policy, binding)
    }

    #[test]
    fn the_served_policy_is_trusted() {
        let (policy, binding) = as_served();
        assert_eq!(policy_problem(Some(&policy), Some(&binding)), None);
    }

    #[test]
    fn a_missing_or_altered_policy_is_not_trusted() {
        let (policy, binding) = as_served();
        assert_eq!(
            policy_problem(None, Some(&binding)),
            Some(PolicyProblem::PolicyMissing)
        );
        assert_eq!(
            policy_problem(Some(&policy), None),
            Some(PolicyProblem::BindingMissing)
        );
        let label = |key: &str| k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector {
            match_labels: Some([(key.to_string(), "x".to_string())].into()),
            ..Default::default()
        };
        let mut altered: Vec<(MutatingAdmissionPolicy, MutatingAdmissionPolicyBinding)> =
            Vec::new();
        for change in 0..7 {
            let (mut policy, mut binding) = as_served();
            let spec = policy.spec.as_mut().unwrap();
            match change {
                0 => spec.failure_policy = Some("Ignore".into()),
                1 => spec.variables.as_mut().unwrap()[2].expression = "'{}'".into(),
                2 => {
                    spec.match_conditions = Some(vec![MatchCondition {
                        name: "skip-me".into(),
                        expression: "request.userInfo.username != 'me'".into(),
                    }])
                }
                3 => {
                    spec.match_constraints.as_mut().unwrap().object_selector = Some(label("stamp"))
                }
                4 => {
                    spec.match_constraints
                        .as_mut()
                        .unwrap()
                        .resource_rules
                        .as_mut()
                        .unwrap()[0]
                        .operations = Some(vec!["CREATE".into()])
                }
                5 => {
                    binding
                        .spec
                        .as_mut()
                        .unwrap()
                        .match_resources
                        .as_mut()
                        .unwrap()
                        .namespace_selector = Some(label("team"))
                }
                _ => binding.spec.as_mut().unwrap().policy_name = Some("other".into()),
            }
            altered.push((policy, binding));
        }
        for (i, (policy, binding)) in altered.iter().enumerate() {
            assert!(
                policy_problem(Some(policy), Some(binding)).is_some(),
                "change {i} went unnoticed"
            );
        }
    }

    #[test]
    fn stamps_every_write_and_matches_no_subresource() {
        let (policy, _) = requester_policy();
        let spec = policy.spec.unwrap();
        assert!(spec.match_conditions.is_none(), "nobody is exempt");
        assert_eq!(spec.failure_policy.as_deref(), Some("Fail"));
        let rules = spec.match_constraints.unwrap().resource_rules.unwrap();
        let resources = rules[0].resources.clone().unwrap();
        assert!(resources.iter().all(|r| !r.contains('/')), "{resources:?}");
    }
}
