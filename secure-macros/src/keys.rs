//! The one table of attribute keys: every key's name, the places it may
//! stand, an example and a one-line meaning. Parsing, the error messages and
//! `deny.rs` all read it; no key is spelled anywhere else.

/// A key of `#[secure]`, `#[public]` or `#[deny_unprotected]`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[allow(clippy::enum_variant_names)] // the variants are the attribute keys
pub(crate) enum Key {
    Scopes,
    Roles,
    Permissions,
    Rate,
    RateKey,
    RateGroup,
    Auth,
    Check,
    Catalogue,
    Crate,
    Any,
    All,
}

/// Where a key may stand (a bit set).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Places(u8);

impl Places {
    pub(crate) const SECURE: Places = Places(1);
    pub(crate) const PUBLIC: Places = Places(2);
    pub(crate) const DENY: Places = Places(4);
    /// Inside an `any(...)` / `all(...)` group of `#[secure]`.
    pub(crate) const GROUP: Places = Places(8);

    const fn or(self, other: Places) -> Places {
        Places(self.0 | other.0)
    }
    pub(crate) const fn contains(self, other: Places) -> bool {
        self.0 & other.0 == other.0
    }
}

/// One row of the table.
pub(crate) struct KeyInfo {
    pub(crate) key: Key,
    pub(crate) name: &'static str,
    pub(crate) places: Places,
    pub(crate) example: &'static str,
    #[allow(dead_code)] // read by the table's own test; documents the row
    pub(crate) doc: &'static str,
}

const S: Places = Places::SECURE;
const SP: Places = Places::SECURE.or(Places::PUBLIC);
const SG: Places = Places::SECURE.or(Places::GROUP);
const SPD: Places = Places::SECURE.or(Places::PUBLIC).or(Places::DENY);
const SD: Places = Places::SECURE.or(Places::DENY);

/// Every key, in the order the documentation lists them.
pub(crate) const KEYS: &[KeyInfo] = &[
    KeyInfo {
        key: Key::Scopes,
        name: "scopes",
        places: SG,
        example: "`scopes = \"items:read items:write\"` or `scopes = [\"items:read\"]`",
        doc: "OAuth2 scopes, all required",
    },
    KeyInfo {
        key: Key::Roles,
        name: "roles",
        places: SG,
        example: "`roles = \"admin\"`, `roles = [\"admin\", \"owner\"]` or `roles = all(\"admin\", \"owner\")`",
        doc: "roles, any one suffices (`all(...)`: all required)",
    },
    KeyInfo {
        key: Key::Permissions,
        name: "permissions",
        places: SG,
        example: "`permissions = \"users:delete\"`",
        doc: "permissions, all required",
    },
    KeyInfo {
        key: Key::Rate,
        name: "rate",
        places: SP,
        example: "`rate = \"5/min\"` or `rate = \"10/min, burst = 20\"`",
        doc: "the rate limit of the handler",
    },
    KeyInfo {
        key: Key::RateKey,
        name: "rate_key",
        places: SP,
        example: "`rate_key = ip` (or user, api_key, ip_user, or a path to a fn)",
        doc: "what the rate limit is counted per",
    },
    KeyInfo {
        key: Key::RateGroup,
        name: "rate_group",
        places: SP,
        example: "`rate_group = \"login\"` (routes naming one group share a bucket)",
        doc: "a rate-limit bucket shared by several handlers",
    },
    KeyInfo {
        key: Key::Auth,
        name: "auth",
        places: S,
        example: "`auth = bearer` (or api_key, basic, any(bearer, api_key))",
        doc: "the credential kinds accepted",
    },
    KeyInfo {
        key: Key::Check,
        name: "check",
        places: SG,
        example: "`check = owns_item(id, store)` (the handler's parameters) or `check = path::to::async_fn`",
        doc: "a custom async rule run after the built-in ones",
    },
    KeyInfo {
        key: Key::Catalogue,
        name: "catalogue",
        places: SD,
        example: "`catalogue = path::to::CATALOGUE`",
        doc: "the catalogue every name must be declared in",
    },
    KeyInfo {
        key: Key::Crate,
        name: "crate",
        places: SPD,
        example: "`crate = \"::poem_secure\"`",
        doc: "the path of the facade crate if renamed",
    },
    KeyInfo {
        key: Key::Any,
        name: "any",
        places: SG,
        example: "`any(roles = \"admin\", permissions = \"notes:delete-any\")`",
        doc: "a group of requirements, one of which suffices",
    },
    KeyInfo {
        key: Key::All,
        name: "all",
        places: SG,
        example: "`all(roles = \"editor\", scopes = \"notes:write\")`",
        doc: "a group of requirements, all required",
    },
];

impl Key {
    pub(crate) fn info(self) -> &'static KeyInfo {
        // Every variant has a row (the table's test checks it).
        KEYS.iter().find(|k| k.key == self).unwrap_or(&KEYS[0])
    }
    pub(crate) fn name(self) -> &'static str {
        self.info().name
    }
    pub(crate) fn example(self) -> &'static str {
        self.info().example
    }
    pub(crate) fn allowed(self, place: Places) -> bool {
        self.info().places.contains(place)
    }
    pub(crate) fn lookup(name: &str) -> Option<Key> {
        KEYS.iter().find(|k| k.name == name).map(|k| k.key)
    }
    /// Whether the key is written as a group, `key(...)`, rather than `key = value`.
    pub(crate) fn is_group(self) -> bool {
        matches!(self, Key::Any | Key::All)
    }
}

/// The keys valid at `place`, as `` `a`, `b` `` for a message.
pub(crate) fn names_at(place: Places) -> String {
    KEYS.iter()
        .filter(|k| k.places.contains(place))
        .map(|k| format!("`{}`", k.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// "unknown key" with a suggestion among the keys valid at `place`.
pub(crate) fn unknown(name: &str, place: Places, what: &str) -> String {
    let suggestion = did_you_mean(name, place)
        .map(|k| format!("; did you mean `{k}`?"))
        .unwrap_or_default();
    format!(
        "unknown key `{name}`{suggestion} ({what} takes {})",
        names_at(place)
    )
}

/// The nearest valid key, if near enough to be a typo.
pub(crate) fn did_you_mean(name: &str, place: Places) -> Option<&'static str> {
    KEYS.iter()
        .filter(|k| k.places.contains(place))
        .map(|k| (k.name, edit_distance(k.name, name)))
        .filter(|(k, d)| {
            *d <= (k.len().max(name.len()) / 3).max(1)
                || (name.len() >= 3 && (k.starts_with(name) || name.starts_with(k)))
        })
        .min_by_key(|(_, d)| *d)
        .map(|(k, _)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_has_one_row() {
        let all = [
            Key::Scopes,
            Key::Roles,
            Key::Permissions,
            Key::Rate,
            Key::RateKey,
            Key::RateGroup,
            Key::Auth,
            Key::Check,
            Key::Catalogue,
            Key::Crate,
            Key::Any,
            Key::All,
        ];
        assert_eq!(all.len(), KEYS.len());
        for k in all {
            assert_eq!(KEYS.iter().filter(|r| r.key == k).count(), 1, "{k:?}");
            assert_eq!(Key::lookup(k.name()), Some(k));
            assert!(!k.info().doc.is_empty() && k.example().contains(k.name()));
        }
    }

    #[test]
    fn near_misses_are_suggested() {
        assert_eq!(did_you_mean("scope", Places::SECURE), Some("scopes"));
        assert_eq!(did_you_mean("role", Places::SECURE), Some("roles"));
        assert_eq!(did_you_mean("ratelimit", Places::SECURE), Some("rate"));
        assert_eq!(did_you_mean("catalog", Places::DENY), Some("catalogue"));
        assert_eq!(
            did_you_mean("premissions", Places::SECURE),
            Some("permissions")
        );
        assert_eq!(did_you_mean("zzz", Places::SECURE), None);
        // Only keys valid at the place are offered.
        assert_eq!(did_you_mean("scope", Places::DENY), None);
    }
}
