//! The validated declaration as plain typed data: a rate is numbers, a scope
//! list is strings, each kept with the span of the token it came from.

use proc_macro2::Span;
use syn::{ext::IdentExt, spanned::Spanned, Expr, ExprLit, Lit, LitStr, Path};

use crate::{args::RawArg, errors::Errors};

/// Which attribute the declaration came from.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Secure,
    Public,
}

impl Kind {
    pub(crate) fn attr(self) -> &'static str {
        match self {
            Kind::Secure => "`#[secure]`",
            Kind::Public => "`#[public]`",
        }
    }
}

/// A name (scope, role, permission) and the literal it came from.
#[derive(Clone)]
pub(crate) struct Name {
    pub(crate) value: String,
    pub(crate) span: Span,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum RoleMode {
    Any,
    All,
}

pub(crate) struct Rate {
    pub(crate) count: u32,
    pub(crate) period_secs: u32,
    pub(crate) burst: Option<u32>,
}

pub(crate) enum RateKey {
    Ip,
    User,
    ApiKey,
    IpUser,
    Custom(Path),
}

pub(crate) struct Auth {
    pub(crate) bearer: bool,
    pub(crate) api_key: bool,
    pub(crate) basic: bool,
}

/// A validated `#[secure(...)]` / `#[public(...)]` declaration.
pub(crate) struct Decl {
    pub(crate) kind: Kind,
    pub(crate) scopes: Vec<Name>,
    pub(crate) roles: (RoleMode, Vec<Name>),
    pub(crate) permissions: Vec<Name>,
    pub(crate) rate: Option<(Rate, Span)>,
    pub(crate) rate_key: Option<(RateKey, Span)>,
    pub(crate) rate_group: Option<(String, Span)>,
    pub(crate) auth: (Auth, Option<Span>),
    pub(crate) check: Option<Path>,
    pub(crate) catalogue: Option<Path>,
    pub(crate) krate: Path,
    /// Keys given, with their spans, for cross-argument checks.
    pub(crate) given: Vec<(String, Span)>,
}

pub(crate) const SECURE_KEYS: &[&str] = &[
    "scopes",
    "roles",
    "permissions",
    "rate",
    "rate_key",
    "rate_group",
    "auth",
    "check",
    "catalogue",
    "crate",
];

const RATE_UNITS: &str = "s, sec, second, m, min, minute, h, hour, d, day";

impl Decl {
    /// Builds the model from raw arguments, reporting every bad one.
    pub(crate) fn from_args(kind: Kind, args: &[RawArg], errors: &mut Errors) -> Decl {
        let mut d = Decl {
            kind,
            scopes: Vec::new(),
            roles: (RoleMode::Any, Vec::new()),
            permissions: Vec::new(),
            rate: None,
            rate_key: None,
            rate_group: None,
            auth: (
                Auth {
                    bearer: true,
                    api_key: false,
                    basic: false,
                },
                None,
            ),
            check: None,
            catalogue: None,
            krate: syn::parse_quote!(::poem_secure),
            given: Vec::new(),
        };
        for arg in crate::args::once(args, errors) {
            let key = arg.key.unraw().to_string();
            let Some(value) = &arg.value else {
                if SECURE_KEYS.contains(&key.as_str()) {
                    errors.at(
                        arg.key.span(),
                        format!("`{key}` needs a value: {}", example(&key)),
                    );
                } else {
                    errors.at(arg.key.span(), unknown_key(&key));
                }
                continue;
            };
            d.given.push((key.clone(), arg.key.span()));
            match key.as_str() {
                "scopes" => d.scopes = names(value, "scope", errors),
                "permissions" => d.permissions = names(value, "permission", errors),
                "roles" => d.roles = roles(value, errors),
                "rate" => d.rate = rate(value, errors).map(|r| (r, value.span())),
                "rate_key" => d.rate_key = rate_key(value, errors).map(|r| (r, value.span())),
                "rate_group" => d.rate_group = rate_group(value, errors),
                "auth" => {
                    if let Some(a) = auth(value, errors) {
                        d.auth = (a, Some(value.span()));
                    }
                }
                "check" => d.check = path(value, "check", errors),
                "catalogue" => d.catalogue = path(value, "catalogue", errors),
                "crate" => d.krate = crate_path(value, errors).unwrap_or(d.krate),
                _ => errors.at(arg.key.span(), unknown_key(&key)),
            }
        }
        d
    }
}

fn example(key: &str) -> &'static str {
    match key {
        "scopes" => "`scopes = \"items:read items:write\"` or `scopes = [\"items:read\"]`",
        "roles" => "`roles = \"admin\"`, `roles = [\"admin\", \"owner\"]` or `roles = all(\"admin\", \"owner\")`",
        "permissions" => "`permissions = \"users:delete\"`",
        "rate" => "`rate = \"5/min\"` or `rate = \"10/min, burst = 20\"`",
        "rate_key" => "`rate_key = ip` (or user, api_key, ip_user, or a path to a fn)",
        "auth" => "`auth = bearer` (or api_key, basic, any(bearer, api_key))",
        "check" => "`check = path::to::async_fn`",
        "rate_group" => "`rate_group = \"login\"` (routes naming one group share a bucket)",
        "catalogue" => "`catalogue = path::to::CATALOGUE`",
        _ => "`crate = \"::poem_secure\"`",
    }
}

fn unknown_key(key: &str) -> String {
    let suggestion = SECURE_KEYS
        .iter()
        .find(|k| k.starts_with(key) || key.starts_with(*k) || edit_distance(k, key) <= 2)
        .map(|k| format!("; did you mean `{k}`?"))
        .unwrap_or_default();
    format!(
        "unknown key `{key}`{suggestion} (valid keys: scopes, roles, permissions, rate, rate_key, rate_group, auth, check, catalogue, crate)"
    )
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

fn lit_str(e: &Expr) -> Option<&LitStr> {
    match e {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => Some(s),
        _ => None,
    }
}

/// RFC 6749 §3.3 scope-token: printable ASCII except space, `"` and `\`.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|c| c == 0x21 || (0x23..=0x5B).contains(&c) || (0x5D..=0x7E).contains(&c))
}

fn token_error(what: &str, value: &str) -> String {
    if value.is_empty() {
        format!("empty {what} name: name at least one {what}")
    } else {
        format!(
            "`{value}` is not a valid {what} name: use printable ASCII without spaces, `\"` or `\\` (RFC 6749 scope-token)"
        )
    }
}

fn push_name(out: &mut Vec<Name>, value: &str, span: Span, what: &str, errors: &mut Errors) {
    if !is_token(value) {
        errors.at(span, token_error(what, value));
    } else if out.iter().any(|n| n.value == value) {
        errors.at(span, format!("{what} `{value}` is listed twice"));
    } else {
        out.push(Name {
            value: value.to_owned(),
            span,
        });
    }
}

/// `"a b"` (space-separated) or `["a", "b"]`.
fn names(e: &Expr, what: &str, errors: &mut Errors) -> Vec<Name> {
    let mut out = Vec::new();
    match e {
        Expr::Array(arr) => {
            if arr.elems.is_empty() {
                errors.at(e.span(), format!("empty {what} list: name at least one {what}"));
            }
            for el in &arr.elems {
                match lit_str(el) {
                    Some(s) if s.value().contains(' ') => errors.at(
                        s.span(),
                        format!("one {what} per string in a list: split `{}` into separate strings", s.value()),
                    ),
                    Some(s) => push_name(&mut out, &s.value(), s.span(), what, errors),
                    None => errors.at(el.span(), format!("expected a string literal {what} name, e.g. \"items:read\"")),
                }
            }
        }
        _ => match lit_str(e) {
            Some(s) => {
                let v = s.value();
                if v.trim().is_empty() {
                    errors.at(s.span(), format!("empty {what} list: name at least one {what}"));
                }
                for part in v.split(' ').filter(|p| !p.is_empty()) {
                    push_name(&mut out, part, s.span(), what, errors);
                }
            }
            None => errors.at(
                e.span(),
                format!("expected a string (`\"a b\"`) or a list of strings (`[\"a\", \"b\"]`) of {what} names"),
            ),
        },
    }
    out
}

fn roles(e: &Expr, errors: &mut Errors) -> (RoleMode, Vec<Name>) {
    if let Expr::Call(call) = e {
        let mode = match &*call.func {
            Expr::Path(p) if p.path.is_ident("all") => Some(RoleMode::All),
            Expr::Path(p) if p.path.is_ident("any") => Some(RoleMode::Any),
            _ => None,
        };
        let Some(mode) = mode else {
            errors.at(
                call.func.span(),
                "expected `all(\"a\", \"b\")` or `any(\"a\", \"b\")`",
            );
            return (RoleMode::Any, Vec::new());
        };
        let mut out = Vec::new();
        if call.args.is_empty() {
            errors.at(e.span(), "empty role list: name at least one role");
        }
        for a in &call.args {
            match lit_str(a) {
                Some(s) => push_name(&mut out, &s.value(), s.span(), "role", errors),
                None => errors.at(
                    a.span(),
                    "expected a string literal role name, e.g. \"admin\"",
                ),
            }
        }
        return (mode, out);
    }
    if let Some(s) = lit_str(e) {
        if s.value().contains(' ') {
            errors.at(
                s.span(),
                format!(
                    "a role name cannot contain spaces; for any of several roles write `roles = [{}]`",
                    s.value().split(' ').filter(|p| !p.is_empty()).map(|p| format!("\"{p}\"")).collect::<Vec<_>>().join(", ")
                ),
            );
            return (RoleMode::Any, Vec::new());
        }
    }
    (RoleMode::Any, names(e, "role", errors))
}

fn rate(e: &Expr, errors: &mut Errors) -> Option<Rate> {
    let Some(s) = lit_str(e) else {
        errors.at(
            e.span(),
            "expected a rate string such as \"5/min\" or \"10/min, burst = 20\"",
        );
        return None;
    };
    match parse_rate(&s.value()) {
        Ok(r) => Some(r),
        Err(msg) => {
            errors.at(s.span(), msg);
            None
        }
    }
}

/// `N/unit` with an optional `, burst = M`.
pub(crate) fn parse_rate(text: &str) -> Result<Rate, String> {
    let bad = |why: String| format!("invalid rate `{text}`: {why}");
    let (main, rest) = match text.split_once(',') {
        Some((m, r)) => (m, Some(r)),
        None => (text, None),
    };
    let Some((count, unit)) = main.split_once('/') else {
        return Err(bad("write it as `count/unit`, e.g. \"5/min\"".into()));
    };
    let count: u32 = match count.trim().parse() {
        Ok(0) => return Err(bad("the count must be at least 1".into())),
        Ok(n) => n,
        Err(_) => {
            return Err(bad(format!(
                "`{}` is not a whole number of requests",
                count.trim()
            )))
        }
    };
    let period_secs = match unit.trim() {
        "s" | "sec" | "second" => 1,
        "m" | "min" | "minute" => 60,
        "h" | "hour" => 3600,
        "d" | "day" => 86_400,
        other => {
            return Err(bad(format!(
                "unknown unit `{other}`; use one of {RATE_UNITS}"
            )))
        }
    };
    if u64::from(count) > u64::from(period_secs) * 1_000_000_000 {
        return Err(bad(
            "more than one request per nanosecond cannot be limited".into(),
        ));
    }
    let burst = match rest {
        None => None,
        Some(r) => {
            let Some((k, v)) = r.split_once('=') else {
                return Err(bad("after the comma write `burst = N`".into()));
            };
            if k.trim() != "burst" {
                return Err(bad(format!(
                    "unknown option `{}`; the only option is `burst = N`",
                    k.trim()
                )));
            }
            match v.trim().parse::<u32>() {
                Ok(0) => return Err(bad("the burst must be at least 1".into())),
                Ok(n) => Some(n),
                Err(_) => return Err(bad(format!("`{}` is not a whole number", v.trim()))),
            }
        }
    };
    Ok(Rate {
        count,
        period_secs,
        burst,
    })
}

fn rate_key(e: &Expr, errors: &mut Errors) -> Option<RateKey> {
    let Expr::Path(p) = e else {
        errors.at(e.span(), "expected `ip`, `user`, `api_key`, `ip_user` or a path to a `fn(&Request, Option<&Principal>) -> String`");
        return None;
    };
    if let Some(id) = p.path.get_ident() {
        match id.to_string().as_str() {
            "ip" => return Some(RateKey::Ip),
            "user" => return Some(RateKey::User),
            "api_key" => return Some(RateKey::ApiKey),
            "ip_user" => return Some(RateKey::IpUser),
            _ => {}
        }
    }
    Some(RateKey::Custom(p.path.clone()))
}

fn rate_group(e: &Expr, errors: &mut Errors) -> Option<(String, Span)> {
    match lit_str(e) {
        Some(s) if is_token(&s.value()) => Some((s.value(), s.span())),
        Some(s) => {
            errors.at(
                s.span(),
                "a rate group is a non-empty name without spaces, e.g. \"login\"",
            );
            None
        }
        None => {
            errors.at(
                e.span(),
                "expected a group name string, e.g. `rate_group = \"login\"`",
            );
            None
        }
    }
}

fn auth(e: &Expr, errors: &mut Errors) -> Option<Auth> {
    let mut a = Auth {
        bearer: false,
        api_key: false,
        basic: false,
    };
    let one = |e: &Expr, a: &mut Auth, errors: &mut Errors| {
        let name = match e {
            Expr::Path(p) => p.path.get_ident().map(|i| i.to_string()),
            _ => None,
        };
        let slot = match name.as_deref() {
            Some("bearer") => &mut a.bearer,
            Some("api_key") => &mut a.api_key,
            Some("basic") => &mut a.basic,
            _ => {
                errors.at(e.span(), "unknown credential kind: use `bearer`, `api_key` or `basic`, or `any(bearer, api_key)`");
                return;
            }
        };
        if *slot {
            errors.at(e.span(), "credential kind listed twice");
        }
        *slot = true;
    };
    match e {
        Expr::Call(call) => {
            if !matches!(&*call.func, Expr::Path(p) if p.path.is_ident("any")) {
                errors.at(
                    call.func.span(),
                    "expected `any(...)`, e.g. `auth = any(bearer, api_key)`",
                );
                return None;
            }
            if call.args.is_empty() {
                errors.at(e.span(), "`any()` needs at least one credential kind");
                return None;
            }
            for arg in &call.args {
                one(arg, &mut a, errors);
            }
        }
        _ => one(e, &mut a, errors),
    }
    (a.bearer || a.api_key || a.basic).then_some(a)
}

fn path(e: &Expr, key: &str, errors: &mut Errors) -> Option<Path> {
    match e {
        Expr::Path(p) => Some(p.path.clone()),
        _ => {
            errors.at(e.span(), format!("expected a path, e.g. {}", example(key)));
            None
        }
    }
}

fn crate_path(e: &Expr, errors: &mut Errors) -> Option<Path> {
    match e {
        Expr::Path(p) => Some(p.path.clone()),
        _ => match lit_str(e).map(|s| s.parse::<Path>()) {
            Some(Ok(p)) => Some(p),
            _ => {
                errors.at(
                    e.span(),
                    "expected a crate path, e.g. `crate = \"::poem_secure\"`",
                );
                None
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::parse_rate;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// Any text: an answer (a rate or a message naming the input), never a panic.
        #[test]
        fn any_rate_text_parses_or_explains(text in "\\PC{0,40}") {
            if let Err(msg) = parse_rate(&text) {
                prop_assert!(msg.starts_with("invalid rate `"));
            }
        }

        /// Every well-formed rate parses to exactly its numbers.
        #[test]
        fn well_formed_rates_parse_exactly(
            count in 1u32..=1_000_000,
            unit in prop::sample::select(vec![("s", 1u32), ("sec", 1), ("second", 1), ("m", 60), ("min", 60),
                ("minute", 60), ("h", 3600), ("hour", 3600), ("d", 86_400), ("day", 86_400)]),
            burst in prop::option::of(1u32..=10_000),
            spaces in 0usize..3,
        ) {
            let pad = " ".repeat(spaces);
            let mut text = format!("{count}{pad}/{pad}{}", unit.0);
            if let Some(b) = burst {
                text.push_str(&format!(",{pad}burst{pad}={pad}{b}"));
            }
            let r = parse_rate(&text).map_err(TestCaseError::fail)?;
            prop_assert_eq!((r.count, r.period_secs, r.burst), (count, unit.1, burst));
        }
    }

    #[test]
    fn zero_and_unknown_units_are_refused() {
        assert!(parse_rate("0/min").is_err());
        assert!(parse_rate("5/fortnight").is_err());
        assert!(parse_rate("5/min, burst = 0").is_err());
        assert!(parse_rate("5/min, bust = 2").is_err());
        assert!(parse_rate("4294967296/s").is_err());
    }
}
