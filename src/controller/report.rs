//! How both reconcilers report: status by server-side apply, and Kubernetes Events.

use std::fmt::Debug;

use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::crds::FIELD_MANAGER;
use super::runs::Runs;

/// Shared by the reconciles and runs of one controller.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    /// The pool this controller's runs execute in.
    pub runs: Runs,
    /// How often a run the operator was interrupted in is run again before it is given up.
    pub run_retries: u32,
    pub tenancy: super::Tenancy,
    /// Where the Secrets and ConfigMaps of admin-owned storage locations live.
    pub operator_namespace: String,
    /// Whether stamps can be trusted right now (multi-tenant mode).
    pub policy: super::admission::PolicyGuard,
    /// The process's metrics (one registry for every controller).
    pub metrics: std::sync::Arc<super::metrics::Metrics>,
    /// Objects one restore creates at the same time.
    pub restore_objects_in_flight: usize,
    /// Lists one backup has in flight.
    pub backup_lists_in_flight: usize,
}

impl Context {
    /// Events name this operator as reporter, and the pod (`POD_NAME`) as instance.
    pub fn new(
        client: Client,
        runs: Runs,
        settings: &super::Settings,
        metrics: std::sync::Arc<super::metrics::Metrics>,
    ) -> Context {
        let reporter = Reporter {
            controller: FIELD_MANAGER.to_string(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Context {
            recorder: Recorder::new(client.clone(), reporter),
            policy: super::admission::PolicyGuard::new(client.clone()),
            client,
            runs,
            run_retries: settings.run_retries,
            tenancy: settings.tenancy,
            operator_namespace: settings.operator_namespace.clone(),
            metrics,
            restore_objects_in_flight: settings.restore_objects_in_flight,
            backup_lists_in_flight: settings.backup_lists_in_flight,
        }
    }
}

/// Longest Event note we send (the API server caps notes at 1 KiB).
const EVENT_NOTE_LIMIT: usize = 1000;

/// Writes the whole `status` of `object` with server-side apply under our field manager.
pub async fn apply_status<K>(
    client: &Client,
    object: &K,
    status: &impl Serialize,
) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + Debug
        + DeserializeOwned,
{
    let api: Api<K> = Api::namespaced(client.clone(), &object.namespace().unwrap_or_default());
    let patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    api.patch_status(
        &object.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(())
}

/// Publishes an Event on `object`; a failure is only logged (Events are best effort).
pub async fn publish<K>(
    recorder: &Recorder,
    object: &K,
    type_: EventType,
    reason: &str,
    action: &str,
    note: &str,
) where
    K: Resource<DynamicType = ()>,
{
    let event = Event {
        type_,
        reason: reason.to_string(),
        note: Some(truncate(note, EVENT_NOTE_LIMIT)),
        action: action.to_string(),
        secondary: None,
    };
    if let Err(err) = recorder.publish(&event, &object.object_ref(&())).await {
        tracing::warn!(error = %err, reason, "cannot publish event");
    }
}

/// Cuts `text` to at most `max` bytes on a character boundary, marking the cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_keeps_char_boundaries() {
        assert_eq!(truncate("abc", 10), "abc");
        assert_eq!(truncate("aé", 2), "a…");
    }
}
