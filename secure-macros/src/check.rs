//! Rules across arguments.

use crate::{
    errors::Errors,
    model::{Decl, Kind, RateKey},
};

pub(crate) fn check(d: &Decl, errors: &mut Errors) {
    if d.kind == Kind::Public {
        for (key, span) in &d.given {
            if !matches!(key.as_str(), "rate" | "rate_key" | "rate_group" | "crate") {
                errors.at(
                    *span,
                    format!(
                        "`#[public]` takes only `rate`, `rate_key` and `rate_group`: a public handler requires no credential, so `{key}` cannot apply; use `#[secure({key} = ...)]` to require one"
                    ),
                );
            }
        }
    }
    if let (Some((_, span)), None) = (&d.rate_group, &d.rate) {
        errors.at(
            *span,
            "`rate_group` without `rate` has no effect: add `rate = \"N/unit\"`, or remove it",
        );
    }
    if let Some((key, span)) = &d.rate_key {
        if d.rate.is_none() {
            errors.at(
                *span,
                "`rate_key` without `rate` has no effect: add `rate = \"N/unit\"`, or remove it",
            );
        }
        let needs_caller = match key {
            RateKey::User => Some("user"),
            RateKey::ApiKey => Some("api_key"),
            RateKey::IpUser => Some("ip_user"),
            RateKey::Ip | RateKey::Custom(_) => None,
        };
        if let (Kind::Public, Some(name)) = (d.kind, needs_caller) {
            errors.at(
                *span,
                format!("`rate_key = {name}` needs an authenticated caller, which a `#[public]` handler may not have: use `ip` or a custom fn"),
            );
        }
        if matches!(key, RateKey::ApiKey) && d.kind == Kind::Secure && !d.auth.0.api_key {
            errors.at(
                *span,
                "`rate_key = api_key` needs `auth = api_key` or `auth = any(..., api_key)`",
            );
        }
    }
}
