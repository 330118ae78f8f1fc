//! Docker's events as both front ends give them: the filter of `docker
//! events --filter` / `GET /events?filters=` and the wire message
//! (`events.Message`), decided once here.

use crate::containers::Event;
use crate::error::{EngineError, Result};
use std::collections::BTreeMap;

/// A parsed events filter: keys AND, values of one key OR.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    by: BTreeMap<String, Vec<String>>,
    fuzzy: bool,
}

impl EventFilter {
    /// From (key, value) pairs; dockerd's words for an unknown key.
    pub fn new(pairs: &[(String, String)]) -> Result<EventFilter> {
        let mut by: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (k, v) in pairs {
            if !matches!(
                k.as_str(),
                "event"
                    | "container"
                    | "image"
                    | "type"
                    | "label"
                    | "volume"
                    | "network"
                    | "scope"
                    | "daemon"
                    | "plugin"
                    | "node"
                    | "service"
                    | "secret"
                    | "config"
            ) {
                return Err(EngineError::Invalid(format!("invalid filter '{k}'")));
            }
            by.entry(k.clone()).or_default().push(v.clone());
        }
        // Docker (#25798): `event=health_status`, `exec_create` or
        // `exec_start` (actions that carry a suffix) make the event filter
        // a prefix match.
        let fuzzy = by.get("event").is_some_and(|vals| {
            vals.iter()
                .any(|v| matches!(v.as_str(), "health_status" | "exec_create" | "exec_start"))
        });
        Ok(EventFilter { by, fuzzy })
    }

    /// From the command line's `--filter k=v` words.
    pub fn from_flags(flags: &[String]) -> Result<EventFilter> {
        let pairs = flags
            .iter()
            .map(|f| {
                f.split_once('=')
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .ok_or_else(|| {
                        EngineError::Invalid(format!(
                            "bad format of filter (expected name=value): {f}"
                        ))
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        EventFilter::new(&pairs)
    }

    pub fn matches(&self, e: &Event) -> bool {
        self.by.iter().all(|(k, vals)| {
            vals.iter().any(|v| match k.as_str() {
                "event" if self.fuzzy => e.action.starts_with(v.as_str()),
                "event" => e.action == *v,
                "volume" => e.typ == "volume" && e.actor == *v,
                "network" => {
                    e.typ == "network"
                        && (e.actor.starts_with(v.as_str()) || e.attributes.get("name") == Some(v))
                }
                "type" => e.typ == *v,
                "scope" => v == "local",
                "container" => {
                    e.actor.starts_with(v.as_str()) || e.attributes.get("name") == Some(v)
                }
                "image" => e.attributes.get("image") == Some(v),
                "label" => match v.split_once('=') {
                    Some((lk, lv)) => e.attributes.get(lk) == Some(&lv.to_owned()),
                    None => e.attributes.contains_key(v.as_str()),
                },
                _ => false,
            })
        })
    }
}

impl Event {
    /// Docker's `events.Message` on the wire: JSON's names; the legacy
    /// status/id/from only for container events (image events: status and
    /// id), as Docker fills them.
    pub fn message(&self) -> serde_json::Value {
        let attrs: serde_json::Map<String, serde_json::Value> = self
            .attributes
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().into()))
            .collect();
        let actor = serde_json::json!({"ID": self.actor, "Attributes": attrs});
        let mut wire = serde_json::json!({
            "Type": self.typ, "Action": self.action, "Actor": actor, "scope": "local",
            "time": self.time_nano / 1_000_000_000, "timeNano": self.time_nano,
        });
        if self.typ == "container" || self.typ == "image" {
            wire["status"] = self.action.clone().into();
            wire["id"] = self.actor.clone().into();
        }
        if self.typ == "container" {
            wire["from"] = self
                .attributes
                .get("image")
                .cloned()
                .unwrap_or_default()
                .into();
        }
        wire
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(action: &str, attrs: &[(&str, &str)]) -> Event {
        Event {
            seq: 1,
            time_nano: 1_700_000_000_123_456_789,
            typ: "container".into(),
            action: action.into(),
            actor: "abc123".into(),
            attributes: attrs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn filters_and_keys_or_values() {
        let f = EventFilter::from_flags(&[
            "event=die".into(),
            "event=start".into(),
            "label=a=b".into(),
        ])
        .expect("parses");
        assert!(f.matches(&ev("die", &[("a", "b")])));
        assert!(!f.matches(&ev("die", &[("a", "c")])));
        assert!(!f.matches(&ev("stop", &[("a", "b")])));
        assert!(EventFilter::from_flags(&["bogus=1".into()]).is_err());
        assert!(EventFilter::from_flags(&["nokey".into()]).is_err());
        let f = EventFilter::from_flags(&["event=health_status".into()]).expect("parses");
        assert!(f.matches(&ev("health_status: healthy", &[])));
    }

    #[test]
    fn message_has_dockers_names() {
        let m = ev("die", &[("exitCode", "3"), ("image", "busybox")]).message();
        assert_eq!(m["Actor"]["Attributes"]["exitCode"], "3");
        assert_eq!(m["status"], "die");
        assert_eq!(m["from"], "busybox");
        assert_eq!(m["time"], 1_700_000_000);
        assert_eq!(m["scope"], "local");
    }
}
