//! What of a caller's custom headers an entry passes on: an allow list, a
//! rename map and size limits. Applied once as the call arrives, so the
//! webhook, the timeline and every room INVITE (including one to another
//! pinless site) carry the same headers.

use crate::config::HeaderPolicyConfig;

/// A resolved `[dialin.header_policy]`.
#[derive(Debug, Clone)]
pub struct HeaderPolicy {
    allow: Vec<Pattern>,
    /// (from, to), names compared case-insensitively.
    rename: Vec<(String, String)>,
    max_value_bytes: usize,
    max_total_bytes: usize,
}

#[derive(Debug, Clone)]
enum Pattern {
    Exact(String),
    Prefix(String),
}

/// A header the policy kept out, and why (for the call's timeline).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    pub name: String,
    pub why: &'static str,
}

impl HeaderPolicy {
    pub fn new(c: &HeaderPolicyConfig) -> Self {
        let allow = c
            .allow
            .iter()
            .map(|a| match a.strip_suffix('*') {
                Some(prefix) => Pattern::Prefix(prefix.to_ascii_lowercase()),
                None => Pattern::Exact(a.to_ascii_lowercase()),
            })
            .collect();
        Self {
            allow,
            rename: c
                .rename
                .iter()
                .map(|(f, t)| (f.to_ascii_lowercase(), t.clone()))
                .collect(),
            max_value_bytes: c.max_value_bytes,
            max_total_bytes: c.max_total_bytes,
        }
    }

    fn allowed(&self, name: &str) -> bool {
        if self.allow.is_empty() {
            return true;
        }
        let lower = name.to_ascii_lowercase();
        self.allow.iter().any(|p| match p {
            Pattern::Exact(n) => *n == lower,
            Pattern::Prefix(p) => lower.starts_with(p.as_str()),
        })
    }

    /// The headers that cross, in order, renamed; and those that did not.
    pub fn apply(&self, headers: &[(String, String)]) -> (Vec<(String, String)>, Vec<Dropped>) {
        let mut kept = Vec::new();
        let mut dropped = Vec::new();
        let mut total = 0;
        for (name, value) in headers {
            let why = if !self.allowed(name) {
                Some("not in header_policy.allow")
            } else if value.len() > self.max_value_bytes {
                Some("value longer than header_policy.max_value_bytes")
            } else if total + name.len() + value.len() > self.max_total_bytes {
                Some("beyond header_policy.max_total_bytes")
            } else {
                None
            };
            if let Some(why) = why {
                dropped.push(Dropped {
                    name: name.clone(),
                    why,
                });
                continue;
            }
            total += name.len() + value.len();
            let lower = name.to_ascii_lowercase();
            let name = self
                .rename
                .iter()
                .find(|(from, _)| *from == lower)
                .map(|(_, to)| to.clone())
                .unwrap_or_else(|| name.clone());
            kept.push((name, value.clone()));
        }
        (kept, dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(n: &str, v: &str) -> (String, String) {
        (n.into(), v.into())
    }

    #[test]
    fn default_passes_everything_small() {
        let p = HeaderPolicy::new(&HeaderPolicyConfig::default());
        let input = vec![h("X-Lang", "de"), h("User-to-User", "abc")];
        assert_eq!(p.apply(&input), (input.clone(), vec![]));
        let (kept, dropped) = p.apply(&[h("X-Big", &"a".repeat(1025))]);
        assert!(kept.is_empty());
        assert_eq!(dropped[0].name, "X-Big");
    }

    #[test]
    fn allow_list_prefixes_renames_and_total() {
        let mut c = HeaderPolicyConfig {
            allow: vec!["x-lang".into(), "X-Customer-*".into()],
            max_total_bytes: 40,
            ..HeaderPolicyConfig::default()
        };
        c.rename.insert("X-Lang".into(), "X-Caller-Lang".into());
        let p = HeaderPolicy::new(&c);
        let (kept, dropped) = p.apply(&[
            h("X-LANG", "de"),
            h("X-Secret", "s"),
            h("X-Customer-Id", "42"),
            h("X-Customer-Note", "this one is over the total"),
        ]);
        assert_eq!(
            kept,
            vec![h("X-Caller-Lang", "de"), h("X-Customer-Id", "42")]
        );
        let names: Vec<_> = dropped.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["X-Secret", "X-Customer-Note"]);
    }
}
