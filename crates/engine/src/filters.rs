//! Docker's list filters (`filters.Args`): each key with its values; the
//! values of one key OR, different keys AND. The lists of images, volumes
//! and networks take them as Docker's daemon does, with its error words.

use crate::error::{EngineError, Result};
use crate::images::ImageSummary;
use crate::summary::{ContainerState, ContainerSummary, ListOptions};
use crate::volume_store::VolumeInfo;
use crate::Engine;
use std::collections::BTreeMap;
use std::time::SystemTime;

/// A set of filters: key → values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters(BTreeMap<String, Vec<String>>);

impl Filters {
    pub fn new() -> Filters {
        Filters::default()
    }

    /// Adds `key=value`.
    pub fn add(&mut self, key: &str, value: &str) {
        self.0
            .entry(key.to_owned())
            .or_default()
            .push(value.to_owned());
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The API's `filters=` query value, as moby's `filters.FromJSON`:
    /// `{"key":{"value":true}}`, or the older `{"key":["value"]}`; empty
    /// is no filter. Anything else: Docker's "invalid filter" (400).
    pub fn from_json(text: &str) -> Result<Filters> {
        let mut f = Filters::new();
        // Go's clients send `null` for no map.
        if text.is_empty() || text == "null" {
            return Ok(f);
        }
        if let Ok(m) = serde_json::from_str::<BTreeMap<String, BTreeMap<String, bool>>>(text) {
            for (k, values) in m {
                for v in values.keys() {
                    f.add(&k, v);
                }
            }
            return Ok(f);
        }
        match serde_json::from_str::<BTreeMap<String, Vec<String>>>(text) {
            Ok(m) => {
                for (k, values) in m {
                    for v in values {
                        f.add(&k, &v);
                    }
                }
                Ok(f)
            }
            Err(_) => Err(EngineError::Invalid("invalid filter".into())),
        }
    }

    /// The values of `key` (none when it is not given).
    pub fn get(&self, key: &str) -> &[String] {
        self.0.get(key).map_or(&[], Vec::as_slice)
    }

    /// Refuses a key outside `accepted`: Docker's "invalid filter 'KEY'".
    pub fn validate(&self, accepted: &[&str]) -> Result<()> {
        match self.0.keys().find(|k| !accepted.contains(&k.as_str())) {
            Some(k) => Err(EngineError::Invalid(format!("invalid filter '{k}'"))),
            None => Ok(()),
        }
    }

    /// Whether every value of `key` matches (true when `key` is absent).
    fn all_of(&self, key: &str, f: impl Fn(&str) -> bool) -> bool {
        self.get(key).iter().all(|v| f(v))
    }

    /// Whether some value of `key` matches (true when `key` is absent).
    fn any_of(&self, key: &str, f: impl Fn(&str) -> bool) -> bool {
        let v = self.get(key);
        v.is_empty() || v.iter().any(|v| f(v))
    }

    /// Docker's `label` filter: every `KEY` or `KEY=VALUE` given holds.
    pub fn labels_match(&self, labels: &BTreeMap<String, String>) -> bool {
        self.all_of("label", |l| match l.split_once('=') {
            Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
            None => labels.contains_key(l),
        })
    }

    /// Docker's regular-expression match (`name=`, `id=` of volumes and
    /// networks): some value, as an unanchored regex, matches `s` (a value
    /// that is no regex matches nothing).
    fn regex_any(&self, key: &str, s: &str) -> bool {
        self.any_of(key, |pattern| {
            regex::Regex::new(pattern).is_ok_and(|r| r.is_match(s))
        })
    }

    /// A boolean filter of volumes and networks: true/1 or false/0.
    fn bool_of(&self, key: &str, invalid: impl Fn(&str) -> String) -> Result<Option<bool>> {
        let mut out = None;
        for v in self.get(key) {
            let b = match v.as_str() {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => return Err(EngineError::Invalid(invalid(v))),
            };
            out = Some(b);
        }
        Ok(out)
    }
}

/// Go's path.Match on a whole string: `*` (not across `/`), `?`, and
/// `[...]` classes with ranges and `^` negation.
pub fn glob_match(pattern: &str, s: &str) -> bool {
    fn class(p: &[char], c: char) -> Option<(bool, usize)> {
        // p starts after '['; returns (matched, length of the class with ']').
        let mut i = 0;
        let negate = p.first() == Some(&'^');
        if negate {
            i += 1;
        }
        let mut matched = false;
        let mut first = true;
        while i < p.len() {
            if p[i] == ']' && !first {
                return Some((matched != negate, i + 1));
            }
            first = false;
            let lo = p[i];
            if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
                if lo <= c && c <= p[i + 2] {
                    matched = true;
                }
                i += 3;
            } else {
                if lo == c {
                    matched = true;
                }
                i += 1;
            }
        }
        None
    }
    fn go(p: &[char], s: &[char]) -> bool {
        match p.first() {
            None => s.is_empty(),
            Some('*') => (0..=s.len())
                .take_while(|&n| n == 0 || s[n - 1] != '/')
                .any(|n| go(&p[1..], &s[n..])),
            Some('?') => s.first().is_some_and(|&c| c != '/') && go(&p[1..], &s[1..]),
            Some('[') => match s.first() {
                Some(&c) if c != '/' => match class(&p[1..], c) {
                    Some((true, len)) => go(&p[1 + len..], &s[1..]),
                    _ => false,
                },
                _ => false,
            },
            Some('\\') if p.len() > 1 => s.first() == Some(&p[1]) && go(&p[2..], &s[1..]),
            Some(&c) => s.first() == Some(&c) && go(&p[1..], &s[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = s.chars().collect();
    go(&p, &s)
}

/// A network as `network ls` lists it.
#[derive(Debug, Clone)]
pub struct NetworkSummary {
    pub id: String,
    pub name: String,
    pub driver: String,
    pub labels: BTreeMap<String, String>,
}

/// The networks Docker predefines (`type=builtin`).
const BUILTIN_NETWORKS: [&str; 3] = ["bridge", "host", "none"];

impl Engine {
    /// `images` with Docker's filters: dangling=true|false, reference=
    /// (path.Match on name and name:tag), before=/since= an image (created
    /// earlier / later), label=KEY[=VALUE].
    pub fn images_filtered(
        &self,
        reference: Option<&str>,
        all: bool,
        filters: &Filters,
    ) -> Result<Vec<ImageSummary>> {
        filters.validate(&["dangling", "reference", "before", "since", "label"])?;
        let mut dangling = None;
        for v in filters.get("dangling") {
            dangling = Some(match v.as_str() {
                "true" => true,
                "false" => false,
                _ => {
                    return Err(EngineError::Invalid(format!(
                        "invalid filter 'dangling=[{v}]'"
                    )))
                }
            });
        }
        // To the nanosecond, as Docker compares them.
        let created_of = |name: &str| -> Result<SystemTime> {
            let img = self.images.resolve(name)?;
            let text = img.created.as_deref().unwrap_or_default();
            Ok(humantime::parse_rfc3339_weak(text)
                .unwrap_or_else(|_| crate::images::parse_time(img.created.as_deref())))
        };
        let before: Vec<SystemTime> = filters
            .get("before")
            .iter()
            .map(|v| created_of(v))
            .collect::<Result<_>>()?;
        let since: Vec<SystemTime> = filters
            .get("since")
            .iter()
            .map(|v| created_of(v))
            .collect::<Result<_>>()?;
        let mut label_cache: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        let mut out = Vec::new();
        for i in self.images(reference, all)? {
            // Docker 20.10: untagged, even with a digest reference (`repo <none>`).
            let is_dangling = i.tag.is_none();
            if dangling.is_some_and(|d| d != is_dangling) {
                continue;
            }
            if !filters.get("reference").is_empty() {
                let (Some(repo), Some(tag)) = (&i.repository, &i.tag) else {
                    continue;
                };
                let full = format!("{repo}:{tag}");
                if !filters
                    .get("reference")
                    .iter()
                    .any(|p| glob_match(p, repo) || glob_match(p, &full))
                {
                    continue;
                }
            }
            if !before.is_empty() || !since.is_empty() {
                let created = created_of(&i.id)?;
                if before.iter().any(|t| created >= *t) || since.iter().any(|t| created <= *t) {
                    continue;
                }
            }
            if !filters.get("label").is_empty() {
                if !label_cache.contains_key(&i.id) {
                    let labels = self
                        .images
                        .resolve(&i.id)
                        .ok()
                        .and_then(|img| img.config().ok())
                        .and_then(|c| c.config().as_ref()?.labels().clone())
                        .map(|l| l.into_iter().collect())
                        .unwrap_or_default();
                    label_cache.insert(i.id.clone(), labels);
                }
                if !label_cache
                    .get(&i.id)
                    .is_some_and(|l| filters.labels_match(l))
                {
                    continue;
                }
            }
            out.push(i);
        }
        Ok(out)
    }

    /// `volume ls` with Docker's filters: dangling (no container uses it),
    /// name (a regex), driver, label.
    pub fn volume_list_filtered(&self, filters: &Filters) -> Result<Vec<VolumeInfo>> {
        filters.validate(&["dangling", "name", "driver", "label"])?;
        let dangling =
            filters.bool_of("dangling", |v| format!("invalid filter 'dangling=[{v}]'"))?;
        Ok(self
            .volume_list()?
            .into_iter()
            .filter(|v| dangling.is_none_or(|d| d == v.in_use_by.is_empty()))
            .filter(|v| filters.regex_any("name", &v.name))
            .filter(|_| filters.any_of("driver", |d| d == "local"))
            .filter(|v| filters.labels_match(&v.labels))
            .collect())
    }

    /// `network ls` with Docker's filters: name and id (regexes), driver,
    /// label, type=custom|builtin, dangling (a custom network no container
    /// is on). The pseudo networks host and none are listed too.
    pub fn network_list(&self, filters: &Filters) -> Result<Vec<NetworkSummary>> {
        filters.validate(&["name", "id", "driver", "label", "type", "dangling"])?;
        for t in filters.get("type") {
            if t != "custom" && t != "builtin" {
                return Err(EngineError::Invalid(format!(
                    "invalid filter: 'type'='{t}'"
                )));
            }
        }
        let dangling = filters.bool_of("dangling", |_| {
            "invalid value for filter 'dangling', must be \"true\" (or \"1\"), or \"false\" (or \"0\")"
                .to_owned()
        })?;
        let mut rows: Vec<(NetworkSummary, bool)> = Vec::new();
        let records = self.networks()?;
        let used: Vec<bool> = if dangling.is_some() {
            self.with_net(|m| {
                records
                    .iter()
                    .map(|n| {
                        m.db()
                            .endpoints_of_network(&n.id)
                            .map(|e| !e.is_empty())
                            .map_err(Into::into)
                    })
                    .collect::<Result<Vec<bool>>>()
            })?
        } else {
            vec![false; records.len()]
        };
        for (n, used) in records.into_iter().zip(used) {
            rows.push((
                NetworkSummary {
                    id: n.id,
                    name: n.name,
                    driver: n.driver,
                    labels: n.labels,
                },
                used,
            ));
        }
        for (name, driver) in crate::PSEUDO_NETWORKS {
            rows.push((
                NetworkSummary {
                    id: crate::pseudo_network_id(name),
                    name: name.into(),
                    driver: driver.into(),
                    labels: BTreeMap::new(),
                },
                false,
            ));
        }
        Ok(rows
            .into_iter()
            .filter(|(n, used)| {
                let builtin = BUILTIN_NETWORKS.contains(&n.name.as_str());
                filters.regex_any("name", &n.name)
                    && filters.regex_any("id", &n.id)
                    && filters.any_of("driver", |d| d == n.driver)
                    && filters.labels_match(&n.labels)
                    && filters.any_of("type", |t| (t == "builtin") == builtin)
                    && dangling.is_none_or(|d| d == (!builtin && !used))
            })
            .map(|(n, _)| n)
            .collect())
    }
}

/// The keys of the container list's filters (dockerd's acceptedPsFilterTags).
const CONTAINER_FILTERS: [&str; 15] = [
    "ancestor",
    "before",
    "expose",
    "exited",
    "health",
    "id",
    "isolation",
    "is-task",
    "label",
    "name",
    "network",
    "publish",
    "since",
    "status",
    "volume",
];

impl Engine {
    /// The container list (`ps`, `GET /containers/json`) as dockerd gives
    /// it: newest first; running and paused containers only, unless `all`,
    /// a limit, or a `status=`/`exited=` filter asks for the others; then
    /// Docker's filters: status, exited (an exit code), name (a regex on
    /// "/NAME"), id (a prefix), label (every one given holds), ancestor
    /// (the image by name, name:tag or ID), before/since (a container:
    /// those created before or after it), network (a name or an ID prefix),
    /// volume (a volume's name, a bind's source or a mount's destination),
    /// health (starting, healthy, unhealthy, none), publish/expose (a port
    /// or range with an optional /proto), is-task (berth runs no tasks),
    /// isolation (Linux containers have none).
    pub fn container_list(&self, opts: &ListOptions) -> Result<Vec<ContainerSummary>> {
        let f = &opts.filters;
        f.validate(&CONTAINER_FILTERS)?;
        let exited: Vec<i32> = f
            .get("exited")
            .iter()
            .map(|v| {
                v.parse().map_err(|_| {
                    EngineError::Invalid(format!("strconv.Atoi: parsing {v:?}: invalid syntax"))
                })
            })
            .collect::<Result<_>>()?;
        let states: Vec<ContainerState> = f
            .get("status")
            .iter()
            .map(|v| {
                ContainerState::parse(v)
                    .ok_or_else(|| EngineError::Invalid(format!("invalid filter 'status={v}'")))
            })
            .collect::<Result<_>>()?;
        for v in f.get("health") {
            if !matches!(v.as_str(), "starting" | "healthy" | "unhealthy" | "none") {
                return Err(EngineError::Invalid(format!(
                    "Unrecognised filter value for health: {v}"
                )));
            }
        }
        let is_task = f.bool_of("is-task", |_| {
            format!("invalid filter 'is-task=[{}]'", f.get("is-task").join(" "))
        })?;
        let ports = |key: &str| -> Result<Vec<(u16, berth_network::Proto)>> {
            let mut out = Vec::new();
            for v in f.get(key) {
                out.extend(
                    berth_network::parse_exposed(v)
                        .map_err(|e| EngineError::Invalid(e.to_string()))?,
                );
            }
            Ok(out)
        };
        let (publish, expose) = (ports("publish")?, ports("expose")?);
        // The image each `ancestor=` names, when it is one of the store's.
        let ancestors: Vec<(String, Option<String>)> = f
            .get("ancestor")
            .iter()
            .map(|v| {
                let id = self.images.resolve(v).ok().map(|i| i.id.to_string());
                (v.clone(), id)
            })
            .collect();
        let container_id = |v: &str| -> Result<crate::ContainerId> {
            self.containers.resolve(v).map(|c| c.id).map_err(|_| {
                EngineError::not_found(crate::Object::Container, format!("no such container {v}"))
            })
        };
        let before: Vec<_> = f
            .get("before")
            .iter()
            .map(|v| container_id(v))
            .collect::<Result<_>>()?;
        let since: Vec<_> = f
            .get("since")
            .iter()
            .map(|v| container_id(v))
            .collect::<Result<_>>()?;
        let all = opts.all || opts.limit.is_some() || !states.is_empty() || !exited.is_empty();
        let mut list = self.containers(opts.size)?;
        // before=/since= by place in the newest-first list, as dockerd.
        if !before.is_empty() || !since.is_empty() {
            let place = |id: &crate::ContainerId| list.iter().position(|c| c.id == *id);
            let after_all_before = before.iter().filter_map(place).max();
            let until_since = since.iter().filter_map(place).min();
            list = list
                .into_iter()
                .enumerate()
                .filter(|(i, _)| after_all_before.is_none_or(|b| *i > b))
                .filter(|(i, _)| until_since.is_none_or(|s| *i < s))
                .map(|(_, c)| c)
                .collect();
        }
        let mut out: Vec<ContainerSummary> = list
            .into_iter()
            .filter(|c| all || matches!(c.state, ContainerState::Running | ContainerState::Paused))
            .filter(|c| states.is_empty() || states.contains(&c.state))
            .filter(|c| {
                exited.is_empty()
                    || (c.state == ContainerState::Exited
                        && c.exit_code.is_some_and(|e| exited.contains(&e)))
            })
            .filter(|c| f.regex_any("name", &format!("/{}", c.name())))
            .filter(|c| f.any_of("id", |v| c.id.as_str().starts_with(v)))
            .filter(|c| f.labels_match(&c.labels))
            .filter(|c| {
                ancestors.is_empty()
                    || ancestors.iter().any(|(v, id)| {
                        id.as_deref() == Some(c.image_id.as_str())
                            || c.image == *v
                            || c.image.split(':').next() == Some(v.as_str())
                            || c.image_id
                                .trim_start_matches("sha256:")
                                .starts_with(v.trim_start_matches("sha256:"))
                    })
            })
            .filter(|c| {
                f.any_of("network", |v| {
                    c.network_settings.networks.0.iter().any(|(name, ep)| {
                        name == v || (!v.is_empty() && ep.network_id.starts_with(v))
                    })
                })
            })
            .filter(|c| {
                f.any_of("volume", |v| {
                    c.mounts.iter().any(|m| {
                        m.destination == v
                            || if m.name.is_empty() {
                                m.source == v
                            } else {
                                m.name == v
                            }
                    })
                })
            })
            .filter(|c| {
                f.any_of("health", |v| match c.health.as_deref() {
                    Some(h) => h == v,
                    None => v == "none",
                })
            })
            .filter(|c| {
                publish.is_empty()
                    || c.ports.iter().any(|p| {
                        p.public_port.is_some() && publish.contains(&(p.private_port, p.typ))
                    })
            })
            .filter(|c| {
                expose.is_empty()
                    || c.ports
                        .iter()
                        .any(|p| expose.contains(&(p.private_port, p.typ)))
            })
            .filter(|_| is_task != Some(true))
            .filter(|_| f.regex_any("isolation", ""))
            .collect();
        if let Some(n) = opts.limit {
            out.truncate(n);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::{glob_match, Filters};

    #[test]
    fn filters_from_the_apis_json() {
        let f = Filters::from_json(r#"{"label":{"a=b":true,"c":true},"status":{"running":true}}"#)
            .expect("map form");
        assert_eq!(f.get("label"), ["a=b", "c"]);
        assert_eq!(f.get("status"), ["running"]);
        let f = Filters::from_json(r#"{"name":["web","db"]}"#).expect("list form");
        assert_eq!(f.get("name"), ["web", "db"]);
        assert!(Filters::from_json("").expect("empty").is_empty());
        assert!(Filters::from_json("null").expect("null").is_empty());
        assert!(Filters::from_json("{}").expect("{}").is_empty());
        for bad in ["{", "[1]", r#"{"a":1}"#, r#"{"a":{"b":"yes"}}"#] {
            let e = Filters::from_json(bad).expect_err(bad);
            assert_eq!(e.to_string(), "invalid filter");
            assert_eq!(e.http_status(), 400);
        }
    }

    #[test]
    fn glob_is_gos_path_match() {
        assert!(glob_match("bus*", "busybox"));
        assert!(glob_match("*:latest", "busybox:latest"));
        assert!(!glob_match("*", "library/busybox"));
        assert!(glob_match("*/busybox", "library/busybox"));
        assert!(glob_match("lab:?", "lab:1"));
        assert!(glob_match("lab:[0-2]", "lab:1"));
        assert!(!glob_match("lab:[^0-2]", "lab:1"));
        assert!(!glob_match("lab", "lab:1"));
        assert!(glob_match("lab", "lab"));
    }
}
