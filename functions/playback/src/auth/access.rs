//! Deny by default: which groups may play and list which recordings.
//!
//! `PLAYBACK_ACCESS` maps a group (a value of the token's groups claims) to
//! grants: a recording type (`"calls"`), or a type and an id prefix, a
//! folder ending in `/` (`"calls/emea/"`: the recordings of `calls` whose id
//! starts `emea/`).
//! `{"qa": ["calls"], "supervisors": ["calls", "screens"]}`. A person with
//! no group in it plays nothing.

use std::collections::{BTreeMap, BTreeSet};

use vault::config::ConfigError;
use vault::recording::RecordingId;

/// One grant: a type, and the id prefix within it (empty: every id).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Grant {
    pub recording_type: String,
    pub prefix: String,
}

/// The access policy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccessPolicy {
    grants: BTreeMap<String, Vec<Grant>>,
}

/// What one person may reach.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Access {
    /// (group, grant) for each of the person's groups that grants anything.
    grants: Vec<(String, Grant)>,
}

impl AccessPolicy {
    /// Parses the JSON object; `name` is the setting's name for the error.
    pub fn parse(name: &'static str, text: &str) -> Result<Self, ConfigError> {
        let bad = |problem: String| ConfigError { name, problem };
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| bad(format!("not JSON ({e}): use {{\"qa\": [\"calls\"]}}")))?;
        let object = value.as_object().ok_or_else(|| bad("not a JSON object of group -> [grants]".into()))?;
        let mut grants = BTreeMap::new();
        for (group, list) in object {
            if group.is_empty() {
                return Err(bad("a group name is empty".into()));
            }
            let list = list.as_array().ok_or_else(|| bad(format!("group {group}: not a list of grants")))?;
            let mut parsed = Vec::new();
            for grant in list {
                let grant = grant.as_str().ok_or_else(|| bad(format!("group {group}: a grant is not a string")))?;
                let (recording_type, prefix) = grant.split_once('/').unwrap_or((grant, ""));
                let valid_type = !recording_type.is_empty()
                    && recording_type.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
                if !valid_type {
                    return Err(bad(format!(
                        "group {group}: {grant:?} is not a recording type or <type>/<id prefix>/"
                    )));
                }
                // A prefix is a folder: "calls/emea" would also grant
                // "emea-archive/..." and "emeax/...".
                if !prefix.is_empty() && !prefix.ends_with('/') {
                    return Err(bad(format!(
                        "group {group}: the id prefix of {grant:?} must end with / (a folder: \"{grant}/\")"
                    )));
                }
                parsed.push(Grant { recording_type: recording_type.into(), prefix: prefix.into() });
            }
            grants.insert(group.clone(), parsed);
        }
        Ok(Self { grants })
    }

    /// Whether `group` grants anything.
    pub fn names(&self, group: &str) -> bool {
        self.grants.get(group).is_some_and(|g| !g.is_empty())
    }

    /// What a person in `groups` may reach.
    pub fn access(&self, groups: &[String]) -> Access {
        let mut grants = Vec::new();
        for group in groups {
            for grant in self.grants.get(group).into_iter().flatten() {
                grants.push((group.clone(), grant.clone()));
            }
        }
        Access { grants }
    }
}

impl Access {
    /// The groups that grant `id` (empty: not permitted).
    pub fn granting(&self, id: &RecordingId) -> Vec<String> {
        let mut groups: Vec<String> = self
            .grants
            .iter()
            .filter(|(_, g)| g.recording_type == id.recording_type && id.recording_id.starts_with(&g.prefix))
            .map(|(group, _)| group.clone())
            .collect();
        groups.dedup();
        groups
    }

    /// The types any grant reaches, sorted.
    pub fn types(&self) -> BTreeSet<String> {
        self.grants.iter().map(|(_, g)| g.recording_type.clone()).collect()
    }

    /// The id prefixes granted within `recording_type` (`[""]` for all of
    /// it; empty when the type is not granted), and the groups granting it.
    pub fn prefixes(&self, recording_type: &str) -> (Vec<String>, Vec<String>) {
        let of_type: Vec<&(String, Grant)> =
            self.grants.iter().filter(|(_, g)| g.recording_type == recording_type).collect();
        let mut prefixes: Vec<String> = of_type.iter().map(|(_, g)| g.prefix.clone()).collect();
        let mut groups: Vec<String> = of_type.iter().map(|(group, _)| group.clone()).collect();
        prefixes.sort();
        prefixes.dedup();
        groups.sort();
        groups.dedup();
        if prefixes.iter().any(String::is_empty) {
            prefixes = vec![String::new()];
        }
        (prefixes, groups)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(t: &str, i: &str) -> RecordingId {
        RecordingId { recording_type: t.into(), recording_id: i.into() }
    }

    #[test]
    fn groups_reach_exactly_their_types_and_prefixes_and_nobody_else_reaches_anything() {
        let policy = AccessPolicy::parse(
            "PLAYBACK_ACCESS",
            r#"{"qa": ["calls"], "supervisors": ["calls", "screens"], "emea": ["chats/emea/"], "empty": []}"#,
        )
        .unwrap();
        let qa = policy.access(&["qa".into(), "staff".into()]);
        assert_eq!(qa.granting(&id("calls", "x.wav")), ["qa"]);
        assert!(qa.granting(&id("screens", "x.webm")).is_empty());
        assert_eq!(qa.types().into_iter().collect::<Vec<_>>(), ["calls"]);
        let emea = policy.access(&["emea".into()]);
        assert_eq!(emea.granting(&id("chats", "emea/1")), ["emea"]);
        assert!(emea.granting(&id("chats", "apac/1")).is_empty());
        assert_eq!(emea.prefixes("chats"), (vec!["emea/".to_string()], vec!["emea".to_string()]));
        let both = policy.access(&["qa".into(), "supervisors".into()]);
        assert_eq!(both.granting(&id("calls", "x")), ["qa", "supervisors"]);
        for nobody in [vec![], vec!["staff".to_string()], vec!["empty".to_string()]] {
            let access = policy.access(&nobody);
            assert!(access.granting(&id("calls", "x")).is_empty() && access.types().is_empty());
        }
        assert!(policy.names("qa") && !policy.names("empty") && !policy.names("staff"));
    }

    #[test]
    fn a_malformed_policy_is_refused_with_its_name() {
        for bad in [
            "",
            "[]",
            r#"{"qa": "calls"}"#,
            r#"{"qa": [1]}"#,
            r#"{"qa": ["/x"]}"#,
            r#"{"": ["calls"]}"#,
            r#"{"qa": ["a b"]}"#,
            r#"{"qa": ["calls/emea"]}"#,
        ] {
            let e = AccessPolicy::parse("PLAYBACK_ACCESS", bad).unwrap_err();
            assert_eq!((e.name, e.code()), ("PLAYBACK_ACCESS", "config_invalid"), "{bad}");
        }
    }
}
