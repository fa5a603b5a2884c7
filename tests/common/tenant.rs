//! Tenants: ServiceAccounts with real RBAC bindings that authenticate with their own tokens
//! (TokenRequest API), as a team member's kubectl would: the API server sees them, not the
//! admin certificate and not an impersonation.

use std::time::Duration;

use cluster_backup::api::{Backup, Restore};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{DynamicObject, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};

use std::path::PathBuf;

use super::{Scene, TestEnv, poll_until, repo_root, yaml_documents};

/// A ServiceAccount of the scene's namespace acting with its own token.
pub struct Tenant {
    pub username: String,
    pub client: Client,
    pub backups: Api<Backup>,
    pub restores: Api<Restore>,
}

impl Tenant {
    /// Creates `doc` (a Backup or Restore) as the tenant.
    pub async fn create(&self, doc: Value) {
        let object: DynamicObject = serde_json::from_value(doc.clone()).unwrap();
        let api = super::objects::api_resource_of(&self.client, &doc).await;
        let ns = doc["metadata"]["namespace"].as_str().unwrap();
        Api::<DynamicObject>::namespaced_with(self.client.clone(), ns, &api)
            .create(&PostParams::default(), &object)
            .await
            .unwrap_or_else(|e| panic!("{} creates {doc}: {e}", self.username));
    }
}

/// A fresh token (TokenRequest API, one hour) of ServiceAccount `namespace`/`name`.
pub async fn service_account_token(client: &Client, namespace: &str, name: &str) -> String {
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            expiration_seconds: Some(3600),
            ..TokenRequestSpec::default()
        }),
        ..TokenRequest::default()
    };
    accounts
        .create_token_request(name, &PostParams::default(), &request)
        .await
        .unwrap_or_else(|e| panic!("token for ServiceAccount {namespace}/{name}: {e}"))
        .status
        .and_then(|status| status.token)
        .expect("a token")
}

/// The ground's kubeconfig (server, CA) with `token` instead of the admin certificate, as a
/// file `target/<dir>/<name>.kubeconfig` (for an operator process; JSON is YAML).
pub fn kubeconfig_file_with_token(env: &TestEnv, token: &str, dir: &str, name: &str) -> PathBuf {
    let text = std::fs::read_to_string(&env.kubeconfig).unwrap();
    let mut config: Value = yaml_serde::from_str(&text).unwrap();
    for user in config["users"].as_array_mut().unwrap() {
        user["user"] = json!({ "token": token });
    }
    let dir = repo_root().join("target").join(dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.kubeconfig"));
    std::fs::write(&path, serde_json::to_string_pretty(&config).unwrap()).unwrap();
    path
}

/// Server-side applies every document of `config/<path>` as the admin.
pub async fn apply_config(client: &Client, path: &str) {
    let text = std::fs::read_to_string(repo_root().join("config").join(path)).unwrap();
    for doc in yaml_documents(&text) {
        let api = super::objects::api_resource_of(client, &doc).await;
        let name = doc["metadata"]["name"].as_str().unwrap().to_string();
        let dynamic: Api<DynamicObject> = match doc["metadata"]["namespace"].as_str() {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &api),
            None => Api::all_with(client.clone(), &api),
        };
        dynamic
            .patch(
                &name,
                &PatchParams::apply("cluster-backup-tests").force(),
                &Patch::Apply(&doc),
            )
            .await
            .unwrap_or_else(|e| panic!("apply {path} {name}: {e}"));
    }
}

impl Scene {
    /// ServiceAccount `name` in the scene's namespace with Kubernetes' own `admin` role there
    /// (and nothing else), Backups and Restores granted through the shipped aggregated roles
    /// (`config/rbac-tenants/tenant_roles.yaml`); waits until the aggregation grants them.
    pub async fn namespace_admin(&self, name: &str) -> Tenant {
        apply_config(&self.client, "rbac-tenants/tenant_roles.yaml").await;
        let ns = self.namespace().to_string();
        self.create(json!({"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": name, "namespace": ns}}))
            .await;
        self.create(
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": format!("{name}-admin"), "namespace": ns},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                "name": "admin"},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}]}),
        )
        .await;
        let token = service_account_token(&self.client, &ns, name).await;
        let client = self.env.client_with_token(&token).await;
        let reviews: Api<SelfSubjectAccessReview> = Api::all(client.clone());
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    group: Some("backup.cnd.dk".into()),
                    resource: Some("restores".into()),
                    verb: Some("create".into()),
                    namespace: Some(ns.clone()),
                    ..ResourceAttributes::default()
                }),
                ..SelfSubjectAccessReviewSpec::default()
            },
            ..SelfSubjectAccessReview::default()
        };
        poll_until(
            "the admin role aggregates Backups and Restores",
            Duration::from_secs(60),
            || async {
                let answer = reviews
                    .create(&PostParams::default(), &review)
                    .await
                    .unwrap();
                match answer.status.is_some_and(|s| s.allowed) {
                    true => Ok(()),
                    false => Err("not yet".to_string()),
                }
            },
        )
        .await;
        Tenant {
            username: format!("system:serviceaccount:{ns}:{name}"),
            backups: Api::namespaced(client.clone(), &ns),
            restores: Api::namespaced(client.clone(), &ns),
            client,
        }
    }
}
