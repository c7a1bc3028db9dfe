//! What a declaration means in words: the 403 and 429 descriptions the
//! OpenAPI document and the security matrix show.

use crate::model::{Decl, Grant, Group, GroupMode, Kind, Name, RateKey, RoleMode, Roles};

fn list(v: &[Name]) -> String {
    v.iter()
        .map(|n| format!("`{}`", n.value))
        .collect::<Vec<_>>()
        .join(", ")
}

fn roles_text(r: &Roles) -> String {
    let mode = match r.mode {
        RoleMode::Any if r.names.len() > 1 => "one of the roles",
        RoleMode::Any => "the role",
        RoleMode::All => "all of the roles",
    };
    format!("{mode} {}", list(&r.names))
}

/// "the scope `a`" or "all of the scopes `a`, `b`".
fn all_of(what: &str, v: &[Name]) -> String {
    match v {
        [one] => format!("the {what} `{}`", one.value),
        _ => format!("all of the {what}s {}", list(v)),
    }
}

/// A group in words; nested groups are parenthesised.
fn group_text(g: &Group, nested: bool, check: &str) -> String {
    let parts: Vec<String> = g
        .members
        .iter()
        .map(|m| match m {
            Grant::Scopes(v) => all_of("scope", v),
            Grant::Roles(r) => roles_text(r),
            Grant::Permissions(v) => all_of("permission", v),
            Grant::Group(g) => group_text(g, true, check),
            Grant::Check => format!("the check `{check}` passes"),
        })
        .collect();
    if let [one] = parts.as_slice() {
        return one.clone();
    }
    let body = parts.join(match g.mode {
        GroupMode::Any => " or ",
        GroupMode::All => " and ",
    });
    match (nested, g.mode) {
        (true, _) => format!("({body})"),
        (false, GroupMode::Any) => format!("either {body}"),
        (false, GroupMode::All) => body,
    }
}

fn group_has_check(g: &Group) -> bool {
    g.members.iter().any(|m| match m {
        Grant::Check => true,
        Grant::Group(g) => group_has_check(g),
        _ => false,
    })
}

/// The documented meaning of a 403 for this declaration, composition included.
pub(crate) fn forbidden_doc(d: &Decl) -> String {
    let mut parts = Vec::new();
    if !d.scopes.is_empty() {
        parts.push(format!("all of the scopes {}", list(&d.scopes)));
    }
    if let Some(r) = &d.roles {
        parts.push(roles_text(r));
    }
    if !d.permissions.is_empty() {
        parts.push(format!("all of the permissions {}", list(&d.permissions)));
    }
    let check = d.check.as_ref().map(|c| c.name()).unwrap_or_default();
    parts.extend(d.groups.iter().map(|g| group_text(g, false, &check)));
    let sep = if d.groups.is_empty() { "; " } else { "; and " };
    let mut doc = if parts.is_empty() {
        "Forbidden.".to_owned()
    } else {
        format!("Forbidden unless the caller has {}.", parts.join(sep))
    };
    let in_group = d.groups.iter().any(group_has_check);
    if d.check.is_some() && !in_group {
        doc.push_str(&format!(" The check `{check}` must also pass."));
    }
    if d.check.is_some() {
        doc.push_str(" A refused check may answer 404 instead, to hide whether the object exists.");
    }
    doc
}

/// The documented 429: the limit, what it counts per, and the headers.
pub(crate) fn rate_doc(d: &Decl) -> String {
    let Some(rate) = &d.rate else {
        return "Rate limit exceeded; see `Retry-After`.".to_owned();
    };
    let r = &rate.value;
    let unit = match r.period_secs {
        1 => "second".to_owned(),
        60 => "minute".to_owned(),
        3600 => "hour".to_owned(),
        86_400 => "day".to_owned(),
        s => format!("{s} s"),
    };
    let per = match d.rate_key.as_ref().map(|k| &k.value) {
        None if d.kind == Kind::Public => "per client IP".to_owned(),
        None | Some(RateKey::User) => "per caller".to_owned(),
        Some(RateKey::Ip) => "per client IP".to_owned(),
        Some(RateKey::ApiKey) => "per API key".to_owned(),
        Some(RateKey::IpUser) => "per client IP and caller".to_owned(),
        Some(RateKey::Custom(p)) => format!(
            "per `{}`",
            p.segments
                .last()
                .map(|s| s.ident.to_string())
                .unwrap_or_default()
        ),
    };
    let burst = r
        .burst
        .map(|b| format!(", bursts of {b}"))
        .unwrap_or_default();
    format!(
        "Rate limit exceeded: {} requests per {unit} {per}{burst}. `Retry-After` says when to retry; `RateLimit-Policy` and `RateLimit` describe the limit.",
        r.count
    )
}
