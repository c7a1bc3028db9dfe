//! Rules across arguments.

use crate::{
    errors::Errors,
    keys::Key,
    model::{Decl, Kind, RateKey},
};

pub(crate) fn check(d: &Decl, errors: &mut Errors) {
    for given in &d.given {
        let key = given.value;
        if key.allowed(d.kind.place()) {
            continue;
        }
        // Only `#[public]` restricts the keys that parse.
        let name = key.name();
        let fix = if key.is_group() {
            format!("`#[secure({name}(...))]`")
        } else {
            format!("`#[secure({name} = ...)]`")
        };
        errors.at(
            given.span,
            format!(
                "`#[public]` takes only `rate`, `rate_key` and `rate_group`: a public handler requires no credential, so `{name}` cannot apply; use {fix} to require one"
            ),
        );
    }
    if let (Some(group), None) = (&d.rate_group, &d.rate) {
        errors.at(
            group.span,
            "`rate_group` without `rate` has no effect: add `rate = \"N/unit\"`, or remove it",
        );
    }
    if let Some(key) = &d.rate_key {
        if d.rate.is_none() {
            errors.at(
                key.span,
                "`rate_key` without `rate` has no effect: add `rate = \"N/unit\"`, or remove it",
            );
        }
        let needs_caller = match key.value {
            RateKey::User => Some("user"),
            RateKey::ApiKey => Some("api_key"),
            RateKey::IpUser => Some("ip_user"),
            RateKey::Ip | RateKey::Custom(_) => None,
        };
        if let (Kind::Public, Some(name)) = (d.kind, needs_caller) {
            errors.at(
                key.span,
                format!("`rate_key = {name}` needs an authenticated caller, which a `#[public]` handler may not have: use `ip` or a custom fn"),
            );
        }
        if matches!(key.value, RateKey::ApiKey) && d.kind == Kind::Secure && !d.auth.api_key {
            errors.at(
                key.span,
                "`rate_key = api_key` needs `auth = api_key` or `auth = any(..., api_key)`",
            );
        }
    }
}

/// Whether the declaration names `key` at the top level.
pub(crate) fn gives(d: &Decl, key: Key) -> bool {
    d.given.iter().any(|g| g.value == key)
}
