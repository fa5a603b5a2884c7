//! Bounded per-object status lists with exact counts.
//!
//! A Restore's status must stay far below the API server's object size limit however many
//! objects it restores (a list of every object would pass the 1.5 MiB limit at a few thousand
//! objects). [`StatusLists`] therefore keeps:
//!
//! * **exact counts** in `resourceCounts`: the totals `created`, `overwritten`, `skipped`,
//!   `failed` (always present, also when 0) and `<action>/<type>` for every type with at least
//!   one object (e.g. `created/deployments`, `failed/certificates.cert-manager.io`);
//! * **the first [`RESTORE_STATUS_LIST_LIMIT`] objects of each list**, in the order they were
//!   recorded: `restoredResources` (created and overwritten), `skippedResources` (with the
//!   reason) and `failedResources` (with the API server's message). Each list has its own
//!   cap, so failures are never crowded out by successes: the first N failures are always
//!   shown, whatever was restored before them.
//!
//! * `ownerReferencesDropped`: owner references removed because their owner exists neither in
//!   the backup's selection nor in the target cluster, or was selected but not restored (only
//!   when not 0; see [`super::owners`]), also named in the summary line;
//! * `ownerReferencesRestored`: references removed on create because their owner was restored
//!   later, and in place again at the end (put back by the restore, or by the owner's
//!   controller adopting the object); only when not 0.
//!
//! * notes: parts of the Restore's target that selected nothing in this backup (a type it
//!   does not contain, a mapping of a namespace it does not have), appended to the summary
//!   line so they show in the Restore's message and Event.
//!
//! Messages, reasons and names longer than [`MAX_MESSAGE_LEN`] bytes are cut (an admission
//! webhook can return pages of text; a bucket can hold anything). In a dry run every `action` reads e.g. `created (dry run)`; the
//! count keys stay the same (the phase message says it was a dry run).

use std::collections::BTreeMap;

use crate::api::{RESTORE_STATUS_LIST_LIMIT, RestoreStatus, RestoredResource};

/// `resourceCounts` key of the owner references dropped.
pub const OWNER_REFERENCES_DROPPED: &str = "ownerReferencesDropped";
/// `resourceCounts` key of the owner references put back after their owners were restored.
pub const OWNER_REFERENCES_RESTORED: &str = "ownerReferencesRestored";

/// Longest `error`/`reason` kept in a status entry, in bytes.
pub const MAX_MESSAGE_LEN: usize = 1024;

/// What happened to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    Created,
    Overwritten,
    Skipped,
    Failed,
}

impl Action {
    pub const ALL: [Action; 4] = [
        Action::Created,
        Action::Overwritten,
        Action::Skipped,
        Action::Failed,
    ];

    /// The `resourceCounts` total key and the `action` of list entries.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Created => "created",
            Action::Overwritten => "overwritten",
            Action::Skipped => "skipped",
            Action::Failed => "failed",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The object a status entry is about (as restored: target namespace and name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectRef<'a> {
    pub api_version: &'a str,
    pub kind: &'a str,
    /// The type folder (`type_dir`), used in the per-type count keys.
    pub type_dir: &'a str,
    pub namespace: Option<&'a str>,
    pub name: &'a str,
}

/// Accumulates a Restore's outcome; see the module docs.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusLists {
    limit: usize,
    dry_run: bool,
    totals: [i64; 4],
    /// type_dir → count per [`Action`].
    per_type: BTreeMap<String, [i64; 4]>,
    owner_references_dropped: i64,
    owner_references_restored: i64,
    notes: Vec<String>,
    restored: Vec<RestoredResource>,
    skipped: Vec<RestoredResource>,
    failed: Vec<RestoredResource>,
}

impl Default for StatusLists {
    fn default() -> Self {
        Self::new()
    }
}

impl StatusLists {
    /// Lists capped at [`RESTORE_STATUS_LIST_LIMIT`].
    pub fn new() -> StatusLists {
        Self::with_limit(RESTORE_STATUS_LIST_LIMIT)
    }

    pub fn with_limit(limit: usize) -> StatusLists {
        StatusLists {
            limit,
            dry_run: false,
            totals: [0; 4],
            per_type: BTreeMap::new(),
            owner_references_dropped: 0,
            owner_references_restored: 0,
            notes: Vec::new(),
            restored: Vec::new(),
            skipped: Vec::new(),
            failed: Vec::new(),
        }
    }

    /// Marks list entries as what a dry run would do.
    pub fn dry_run(mut self, dry_run: bool) -> StatusLists {
        self.dry_run = dry_run;
        self
    }

    pub fn created(&mut self, obj: &ObjectRef<'_>) {
        self.record(obj, Action::Created, None);
    }

    pub fn overwritten(&mut self, obj: &ObjectRef<'_>) {
        self.record(obj, Action::Overwritten, None);
    }

    pub fn skipped(&mut self, obj: &ObjectRef<'_>, reason: &str) {
        self.record(obj, Action::Skipped, Some(reason));
    }

    pub fn failed(&mut self, obj: &ObjectRef<'_>, error: &str) {
        self.record(obj, Action::Failed, Some(error));
    }

    /// Counts owner references removed from restored objects.
    pub fn owner_references_dropped(&mut self, count: u64) {
        let count = i64::try_from(count).unwrap_or(i64::MAX);
        self.owner_references_dropped = self.owner_references_dropped.saturating_add(count);
    }

    /// Counts owner references put back once their owners were restored.
    pub fn owner_references_restored(&mut self, count: u64) {
        let count = i64::try_from(count).unwrap_or(i64::MAX);
        self.owner_references_restored = self.owner_references_restored.saturating_add(count);
    }

    /// Adds a sentence to the summary line (see the module docs).
    pub fn note(&mut self, note: String) {
        self.notes.push(note);
    }

    /// Counts the object and lists it if its list has room. `message` is the reason of a skip
    /// or the error of a failure (ignored for the other actions).
    pub fn record(&mut self, obj: &ObjectRef<'_>, action: Action, message: Option<&str>) {
        self.totals[action.index()] += 1;
        match self.per_type.get_mut(obj.type_dir) {
            Some(counts) => counts[action.index()] += 1,
            None => {
                let mut counts = [0; 4];
                counts[action.index()] = 1;
                self.per_type.insert(obj.type_dir.to_string(), counts);
            }
        }
        let limit = self.limit;
        let list = match action {
            Action::Created | Action::Overwritten => &mut self.restored,
            Action::Skipped => &mut self.skipped,
            Action::Failed => &mut self.failed,
        };
        if list.len() >= limit {
            return;
        }
        let mut action_text = action.as_str().to_string();
        if self.dry_run {
            action_text.push_str(" (dry run)");
        }
        let message = message.map(truncate);
        // Names come from the bucket and are not all valid (a refused entry is listed too).
        list.push(RestoredResource {
            api_version: truncate(obj.api_version),
            kind: truncate(obj.kind),
            name: truncate(obj.name),
            namespace: obj.namespace.map(truncate),
            action: Some(action_text),
            error: message.clone().filter(|_| action == Action::Failed),
            reason: message.filter(|_| action == Action::Skipped),
        });
    }

    /// Exact number of objects with this outcome.
    pub fn total(&self, action: Action) -> i64 {
        self.totals[action.index()]
    }

    /// Exact number of objects of one type with this outcome.
    pub fn count(&self, action: Action, type_dir: &str) -> i64 {
        self.per_type.get(type_dir).map_or(0, |c| c[action.index()])
    }

    /// `status.resourceCounts`: totals (always) and `<action>/<type>` (when not 0).
    pub fn resource_counts(&self) -> BTreeMap<String, i64> {
        let mut counts: BTreeMap<String, i64> = Action::ALL
            .iter()
            .map(|a| (a.as_str().to_string(), self.total(*a)))
            .collect();
        for (type_dir, per_action) in &self.per_type {
            for action in Action::ALL {
                let n = per_action[action.index()];
                if n > 0 {
                    counts.insert(format!("{}/{type_dir}", action.as_str()), n);
                }
            }
        }
        for (key, n) in [
            (OWNER_REFERENCES_DROPPED, self.owner_references_dropped),
            (OWNER_REFERENCES_RESTORED, self.owner_references_restored),
        ] {
            if n > 0 {
                counts.insert(key.to_string(), n);
            }
        }
        counts
    }

    pub fn restored_resources(&self) -> &[RestoredResource] {
        &self.restored
    }

    pub fn skipped_resources(&self) -> &[RestoredResource] {
        &self.skipped
    }

    pub fn failed_resources(&self) -> &[RestoredResource] {
        &self.failed
    }

    /// Sets `resourceCounts`, `restoredResources`, `failedResources` and `skippedResources`.
    pub fn write_to(&self, status: &mut RestoreStatus) {
        status.resource_counts = self.resource_counts();
        status.restored_resources = self.restored.clone();
        status.failed_resources = self.failed.clone();
        status.skipped_resources = self.skipped.clone();
    }

    /// One line for the phase message, e.g. `12 created, 0 overwritten, 3 skipped, 1 failed`,
    /// then `; 2 owner references dropped` when some were, then `; <note>` for each note.
    pub fn summary(&self) -> String {
        let mut line = Action::ALL
            .iter()
            .map(|a| format!("{} {}", self.total(*a), a.as_str()))
            .collect::<Vec<_>>()
            .join(", ");
        match self.owner_references_dropped {
            0 => {}
            1 => line.push_str("; 1 owner reference dropped"),
            n => line.push_str(&format!("; {n} owner references dropped")),
        }
        for note in &self.notes {
            line.push_str("; ");
            line.push_str(note);
        }
        line
    }
}

/// At most [`MAX_MESSAGE_LEN`] bytes, cut at a character boundary, marked with `…`.
fn truncate(message: &str) -> String {
    if message.len() <= MAX_MESSAGE_LEN {
        return message.to_string();
    }
    let mut end = MAX_MESSAGE_LEN - '…'.len_utf8();
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &message[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj<'a>(type_dir: &'a str, ns: Option<&'a str>, name: &'a str) -> ObjectRef<'a> {
        ObjectRef {
            api_version: "v1",
            kind: "ConfigMap",
            type_dir,
            namespace: ns,
            name,
        }
    }

    #[test]
    fn ten_thousand_objects_keep_lists_capped_and_counts_exact() {
        let mut lists = StatusLists::new();
        let names: Vec<String> = (0..10_000).map(|i| format!("obj-{i:05}")).collect();
        for (i, name) in names.iter().enumerate() {
            let o = obj(
                if i % 2 == 0 { "configmaps" } else { "secrets" },
                Some("shop"),
                name,
            );
            match i % 10 {
                0..=5 => lists.created(&o),
                6 => lists.overwritten(&o),
                7 | 8 => lists.skipped(&o, "already exists"),
                _ => lists.failed(&o, "admission webhook denied the request"),
            }
        }
        assert_eq!(lists.total(Action::Created), 6_000);
        assert_eq!(lists.total(Action::Overwritten), 1_000);
        assert_eq!(lists.total(Action::Skipped), 2_000);
        assert_eq!(lists.total(Action::Failed), 1_000);
        // i % 10 in 0..=5 and even: 0, 2, 4 → 3 of every 10 are created configmaps.
        assert_eq!(lists.count(Action::Created, "configmaps"), 3_000);
        assert_eq!(lists.count(Action::Created, "secrets"), 3_000);
        assert_eq!(lists.count(Action::Failed, "secrets"), 1_000);
        assert_eq!(lists.count(Action::Failed, "configmaps"), 0);
        assert_eq!(lists.count(Action::Created, "pods"), 0);

        let limit = RESTORE_STATUS_LIST_LIMIT;
        assert_eq!(lists.restored_resources().len(), limit);
        assert_eq!(lists.skipped_resources().len(), limit);
        assert_eq!(lists.failed_resources().len(), limit);
        // The first ones are kept, in order.
        assert_eq!(lists.restored_resources()[0].name, "obj-00000");
        assert_eq!(lists.failed_resources()[0].name, "obj-00009");
        assert_eq!(lists.failed_resources()[1].name, "obj-00019");

        let counts = lists.resource_counts();
        assert_eq!(counts["created"], 6_000);
        assert_eq!(counts["overwritten"], 1_000);
        assert_eq!(counts["skipped"], 2_000);
        assert_eq!(counts["failed"], 1_000);
        assert_eq!(counts["created/configmaps"], 3_000);
        // i % 10 == 6 is even: every overwritten object is a configmap.
        assert_eq!(counts["overwritten/configmaps"], 1_000);
        assert_eq!(counts["skipped/configmaps"], 1_000);
        assert_eq!(counts["skipped/secrets"], 1_000);
        assert_eq!(counts["failed/secrets"], 1_000);
        assert!(!counts.contains_key("overwritten/secrets"));
        assert!(!counts.contains_key("failed/configmaps"));
        assert_eq!(counts.len(), 4 + 6);

        let mut status = RestoreStatus::default();
        lists.write_to(&mut status);
        assert_eq!(status.resource_counts, counts);
        assert_eq!(status.failed_resources.len(), RESTORE_STATUS_LIST_LIMIT);
        let size = serde_json::to_vec(&status).unwrap().len();
        assert!(size < 64 * 1024, "status is {size} bytes");
        assert_eq!(
            lists.summary(),
            "6000 created, 1000 overwritten, 2000 skipped, 1000 failed"
        );
    }

    #[test]
    fn failures_are_listed_even_after_many_successes() {
        let mut lists = StatusLists::with_limit(3);
        for i in 0..100 {
            lists.created(&obj("configmaps", Some("a"), &format!("c{i}")));
        }
        lists.failed(&obj("configmaps", Some("a"), "bad"), "forbidden");
        assert_eq!(lists.restored_resources().len(), 3);
        assert_eq!(lists.failed_resources().len(), 1);
        let f = &lists.failed_resources()[0];
        assert_eq!(f.name, "bad");
        assert_eq!(f.error.as_deref(), Some("forbidden"));
        assert_eq!(f.reason, None);
        assert_eq!(f.action.as_deref(), Some("failed"));
        assert_eq!(lists.total(Action::Failed), 1);
    }

    #[test]
    fn entries_carry_what_the_user_needs() {
        let mut lists = StatusLists::new();
        let ns_obj = ObjectRef {
            api_version: "apps/v1",
            kind: "Deployment",
            type_dir: "deployments",
            namespace: Some("shop-copy"),
            name: "web",
        };
        lists.created(&ns_obj);
        lists.skipped(
            &obj("clusterroles", None, "view"),
            "already exists (conflictResolution: skip)",
        );
        assert_eq!(
            lists.restored_resources()[0],
            RestoredResource {
                api_version: "apps/v1".into(),
                kind: "Deployment".into(),
                name: "web".into(),
                namespace: Some("shop-copy".into()),
                action: Some("created".into()),
                error: None,
                reason: None,
            }
        );
        let s = &lists.skipped_resources()[0];
        assert_eq!(s.namespace, None);
        assert_eq!(
            s.reason.as_deref(),
            Some("already exists (conflictResolution: skip)")
        );
        assert_eq!(s.action.as_deref(), Some("skipped"));
        assert_eq!(s.error, None);
    }

    #[test]
    fn empty_lists_still_report_totals() {
        let lists = StatusLists::default();
        let counts = lists.resource_counts();
        assert_eq!(
            counts,
            [
                ("created", 0),
                ("failed", 0),
                ("overwritten", 0),
                ("skipped", 0)
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect()
        );
        assert_eq!(lists.total(Action::Failed), 0);
        let mut status = RestoreStatus::default();
        lists.write_to(&mut status);
        assert!(status.restored_resources.is_empty());
    }

    #[test]
    fn dropped_owner_references_are_counted_and_summarised() {
        let mut lists = StatusLists::new();
        lists.created(&obj("configmaps", Some("a"), "c"));
        assert_eq!(
            lists.summary(),
            "1 created, 0 overwritten, 0 skipped, 0 failed"
        );
        lists.owner_references_dropped(0);
        assert!(
            !lists
                .resource_counts()
                .contains_key(OWNER_REFERENCES_DROPPED)
        );
        lists.owner_references_dropped(1);
        assert_eq!(lists.resource_counts()[OWNER_REFERENCES_DROPPED], 1);
        assert_eq!(
            lists.summary(),
            "1 created, 0 overwritten, 0 skipped, 0 failed; 1 owner reference dropped"
        );
        lists.owner_references_dropped(2);
        assert_eq!(lists.resource_counts()[OWNER_REFERENCES_DROPPED], 3);
        assert!(lists.summary().ends_with("; 3 owner references dropped"));
        assert!(
            !lists
                .resource_counts()
                .contains_key(OWNER_REFERENCES_RESTORED)
        );
        lists.owner_references_restored(4);
        assert_eq!(lists.resource_counts()[OWNER_REFERENCES_RESTORED], 4);
    }

    #[test]
    fn notes_end_the_summary() {
        let mut lists = StatusLists::new();
        lists.owner_references_dropped(2);
        lists.note("nothing to restore for resourceTypes \"statefulsets\"".into());
        assert_eq!(
            lists.summary(),
            "0 created, 0 overwritten, 0 skipped, 0 failed; 2 owner references dropped; \
             nothing to restore for resourceTypes \"statefulsets\""
        );
        assert_eq!(lists.resource_counts().len(), 5, "notes are no counts");
    }

    #[test]
    fn dry_runs_say_so() {
        let mut lists = StatusLists::new().dry_run(true);
        lists.created(&obj("configmaps", Some("a"), "c"));
        lists.overwritten(&obj("configmaps", Some("a"), "d"));
        lists.skipped(&obj("configmaps", Some("a"), "e"), "exists");
        let actions: Vec<_> = lists
            .restored_resources()
            .iter()
            .chain(lists.skipped_resources())
            .map(|r| r.action.clone().unwrap())
            .collect();
        assert_eq!(
            actions,
            vec![
                "created (dry run)",
                "overwritten (dry run)",
                "skipped (dry run)"
            ]
        );
        assert_eq!(lists.resource_counts()["created/configmaps"], 1);
    }

    #[test]
    fn long_messages_are_cut_at_a_character_boundary() {
        let mut lists = StatusLists::new();
        let long = "é".repeat(2_000);
        lists.failed(&obj("configmaps", Some("a"), "c"), &long);
        let error = lists.failed_resources()[0].error.clone().unwrap();
        assert!(error.len() <= MAX_MESSAGE_LEN, "{}", error.len());
        assert!(error.ends_with('…'));
        assert!(error.starts_with("éé"));
        assert_eq!(truncate("short"), "short");
        let exact = "x".repeat(MAX_MESSAGE_LEN);
        assert_eq!(truncate(&exact), exact);
    }

    #[test]
    fn a_zero_limit_lists_nothing_but_counts() {
        let mut lists = StatusLists::with_limit(0);
        lists.failed(&obj("configmaps", Some("a"), "c"), "x");
        assert!(lists.failed_resources().is_empty());
        assert_eq!(lists.total(Action::Failed), 1);
    }
}
