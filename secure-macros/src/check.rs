//! Rules across arguments.

use crate::{
    errors::Errors,
    model::{Decl, Kind, RateKey},
};

pub(crate) fn check(d: &Decl, errors: &mut Errors) {
    if d.kind == Kind::Public {
        for (key, span) in &d.given {
            if !matches!(key.as_str(), "rate" | "rate_key" | "crate") {
                errors.at(
                    *span,
                    format!(
                        "`#[public]` takes only `rate` and `rate_key`: a public handler requires no credential, so `{key}` cannot apply; use `#[secure({key} = ...)]` to require one"
                    ),
                );
            }
        }
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
