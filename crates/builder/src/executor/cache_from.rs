//! `build --cache-from`: steps taken from named images, as Docker's
//! classic builder does it (daemon/images/cache.go): when the step cache
//! has nothing, an image whose history starts with the current image's
//! history (and layers) and whose next history entry was made by the same
//! instruction gives the step's result: the image itself when that entry
//! is its last, else a new image of the current one's layers plus that
//! step's layer, with the builder's config.

use super::{other, Builder, Result, Stage};
use berth_digest::Digest;
use serde_json::{json, Value};

fn history(cfg: &Value) -> &[Value] {
    cfg["history"].as_array().map_or(&[], Vec::as_slice)
}

fn diff_ids(cfg: &Value) -> &[Value] {
    cfg["rootfs"]["diff_ids"]
        .as_array()
        .map_or(&[], Vec::as_slice)
}

/// Docker's `isValidParent`: `target` was built on `parent`.
fn valid_parent(parent: Option<&Value>, target: &Value) -> bool {
    let (th, td) = (history(target), diff_ids(target));
    if th.is_empty() {
        return false;
    }
    let Some(parent) = parent else { return true };
    let (ph, pd) = (history(parent), diff_ids(parent));
    if ph.is_empty() && pd.is_empty() {
        return true;
    }
    ph.len() < th.len() && pd.len() <= td.len() && ph == &th[..ph.len()] && pd == &td[..pd.len()]
}

impl Builder<'_> {
    /// Looks the step up in the `--cache-from` images; on a hit the stage
    /// moves to the image that step made (recorded in the step cache).
    /// `st.config` must be the config after the step.
    pub(super) fn cached_in_sources(
        &mut self,
        st: &mut Stage,
        key: &Digest,
        created_by: &str,
    ) -> Result<bool> {
        if self.opts.no_cache || self.sources.is_empty() {
            return Ok(false);
        }
        let parent: Option<Value> = match &st.image {
            Some(id) => {
                let (_, cfg) = self.engine.image_config(&id.to_string())?;
                Some(serde_json::from_slice(&cfg).map_err(|e| other(e.to_string()))?)
            }
            None => None,
        };
        let n = parent.as_ref().map_or(0, |p| history(p).len());
        let layers = parent.as_ref().map_or(0, |p| diff_ids(p).len());
        let found = self.sources.iter().find(|(_, t)| {
            valid_parent(parent.as_ref(), t)
                && history(t).get(n).and_then(|h| h["created_by"].as_str()) == Some(created_by)
        });
        let Some((src, target)) = found.cloned() else {
            return Ok(false);
        };
        let th = history(&target);
        let id = if th.len() == n + 1 {
            src.clone()
        } else {
            let h = th[n].clone();
            let layer = (h["empty_layer"] != json!(true)).then_some(layers);
            let mut config = st.config.clone();
            config["created"] = h["created"].clone();
            if let Some(o) = config.as_object_mut() {
                o.remove("container");
                o.remove("container_config");
            }
            let c = self
                .engine
                .build_commit_from(st.image.as_ref(), &src, layer, config, h)?;
            if c.new {
                self.created.push(c.id.clone());
            }
            c.id
        };
        // As Docker: the build stays with this source from here on.
        self.sources = vec![(src, target)];
        let (id, cfg) = self.engine.image_config(&id.to_string())?;
        st.config = serde_json::from_slice(&cfg).map_err(|e| other(e.to_string()))?;
        st.image = Some(id.clone());
        self.cache.put(key, &id).map_err(|e| other(e.to_string()))?;
        self.say(" ---> Using cache");
        self.say(format!(" ---> {}", id.short()));
        Ok(true)
    }
}
