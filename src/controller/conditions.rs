//! Standard `metav1.Condition` bookkeeping shared by the Backup and Restore reconcilers.

use chrono::Utc;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

use crate::api::to_time;

/// Sets condition `type_`, keeping `lastTransitionTime` when the status did not flip.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: bool,
    reason: &str,
    message: &str,
    observed_generation: Option<i64>,
) {
    let status = if status { "True" } else { "False" }.to_string();
    let reason = sanitize_reason(reason);
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(existing) => {
            if existing.status != status {
                existing.last_transition_time = to_time(Utc::now());
            }
            existing.status = status;
            existing.reason = reason;
            existing.message = message.to_string();
            existing.observed_generation = observed_generation;
        }
        None => conditions.push(Condition {
            type_: type_.to_string(),
            status,
            reason,
            message: message.to_string(),
            observed_generation,
            last_transition_time: to_time(Utc::now()),
        }),
    }
}

/// Condition reasons must match `^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$`.
fn sanitize_reason(reason: &str) -> String {
    let cleaned: String = reason
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    if cleaned.starts_with(|c: char| c.is_ascii_alphabetic()) {
        cleaned
    } else {
        format!("R{cleaned}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_time_moves_only_on_flip() {
        let mut conditions = Vec::new();
        set_condition(&mut conditions, "Ready", true, "Completed", "ok", Some(1));
        let first = conditions[0].last_transition_time.clone();
        set_condition(
            &mut conditions,
            "Ready",
            true,
            "Completed",
            "still ok",
            Some(2),
        );
        assert_eq!(conditions[0].last_transition_time, first);
        assert_eq!(conditions[0].message, "still ok");
        assert_eq!(conditions.len(), 1);
    }

    #[test]
    fn reasons_are_valid() {
        assert_eq!(sanitize_reason("Partially-Failed"), "PartiallyFailed");
        assert_eq!(sanitize_reason("404"), "R404");
    }
}
