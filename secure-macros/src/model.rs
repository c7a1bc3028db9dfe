//! The validated declaration as plain typed data: a rate is numbers, a scope
//! list is strings, each kept with the span of the token it came from.

use proc_macro2::Span;
use syn::{spanned::Spanned as _, Expr, ExprLit, Lit, LitStr, Path};

use crate::{
    args::{RawArg, RawValue},
    errors::Errors,
    keys::{self, Key, Places},
    rate,
    typed_check::{set_check, Check},
};

/// A value and the span of the tokens it came from.
pub(crate) struct Spanned<T> {
    pub(crate) value: T,
    pub(crate) span: Span,
}

impl<T> Spanned<T> {
    pub(crate) fn new(value: T, span: Span) -> Spanned<T> {
        Spanned { value, span }
    }
}

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
    pub(crate) fn place(self) -> Places {
        match self {
            Kind::Secure => Places::SECURE,
            Kind::Public => Places::PUBLIC,
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

/// `roles = ...`: any one of the names, or all of them.
pub(crate) struct Roles {
    pub(crate) mode: RoleMode,
    pub(crate) names: Vec<Name>,
    /// The whole value.
    #[allow(dead_code)] // kept for errors about the role requirement as a whole
    pub(crate) span: Span,
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

/// The credential kinds accepted; `span` is that of `auth = ...` if given.
pub(crate) struct Auth {
    pub(crate) bearer: bool,
    pub(crate) api_key: bool,
    pub(crate) basic: bool,
    #[allow(dead_code)] // kept for errors about the credential kinds
    pub(crate) span: Option<Span>,
}

/// How the members of a group combine.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum GroupMode {
    /// `any(...)`: one member suffices.
    Any,
    /// `all(...)`: every member is required.
    All,
}

/// `any(...)` or `all(...)`: requirements on the caller's grants.
pub(crate) struct Group {
    pub(crate) mode: GroupMode,
    pub(crate) members: Vec<Grant>,
    /// The group's keyword.
    #[allow(dead_code)] // kept for errors about the group as a whole
    pub(crate) span: Span,
}

/// One requirement on the caller's grants, as it may stand in a group.
pub(crate) enum Grant {
    Scopes(Vec<Name>),
    Roles(Roles),
    Permissions(Vec<Name>),
    Group(Group),
    /// The declaration's one `check` (kept in [`Decl::check`]).
    Check,
}

/// A validated `#[secure(...)]` / `#[public(...)]` declaration.
pub(crate) struct Decl {
    pub(crate) kind: Kind,
    pub(crate) scopes: Vec<Name>,
    pub(crate) roles: Option<Roles>,
    pub(crate) permissions: Vec<Name>,
    /// Top-level `any(...)` / `all(...)` groups, ANDed with the rest.
    pub(crate) groups: Vec<Group>,
    pub(crate) rate: Option<Spanned<Rate>>,
    pub(crate) rate_key: Option<Spanned<RateKey>>,
    pub(crate) rate_group: Option<Spanned<String>>,
    pub(crate) auth: Auth,
    pub(crate) check: Option<Check>,
    pub(crate) catalogue: Option<Path>,
    pub(crate) krate: Path,
    /// Keys given at the top level, each spanned at the key, for
    /// cross-argument checks.
    pub(crate) given: Vec<Spanned<Key>>,
}

/// The value of an argument once its shape (`= value` or `(...)`) is known
/// to fit its key; an error at the key otherwise.
enum Value<'a> {
    Expr(&'a Expr),
    Group(&'a [RawArg], Span),
}

fn value<'a>(arg: &'a RawArg, key: Key, errors: &mut Errors) -> Option<Value<'a>> {
    let name = key.name();
    match (&arg.value, key.is_group()) {
        (RawValue::Expr(e), false) => Some(Value::Expr(e)),
        (RawValue::Group(list, span), true) => Some(Value::Group(list, *span)),
        (RawValue::None, false) => {
            errors.at(
                arg.key.span(),
                format!("`{name}` needs a value: {}", key.example()),
            );
            None
        }
        (_, false) => {
            errors.at(
                arg.span(),
                format!("`{name}` takes a value after `=`: {}", key.example()),
            );
            None
        }
        (_, true) => {
            errors.at(
                arg.span(),
                format!(
                    "`{name}` takes a parenthesised list of requirements: {}",
                    key.example()
                ),
            );
            None
        }
    }
}

impl Decl {
    /// Builds the model from raw arguments, reporting every bad one.
    pub(crate) fn from_args(kind: Kind, args: &[RawArg], errors: &mut Errors) -> Decl {
        let mut d = Decl {
            kind,
            scopes: Vec::new(),
            roles: None,
            permissions: Vec::new(),
            groups: Vec::new(),
            rate: None,
            rate_key: None,
            rate_group: None,
            auth: Auth {
                bearer: true,
                api_key: false,
                basic: false,
                span: None,
            },
            check: None,
            catalogue: None,
            krate: syn::parse_quote!(::poem_secure),
            given: Vec::new(),
        };
        let repeatable = |n: &str| Key::lookup(n).is_some_and(Key::is_group);
        for arg in crate::args::once(args, repeatable, "", errors) {
            let name = arg.name();
            let Some(key) = Key::lookup(&name) else {
                errors.at(
                    arg.key.span(),
                    keys::unknown(&name, kind.place(), kind.attr()),
                );
                continue;
            };
            let Some(value) = value(arg, key, errors) else {
                continue;
            };
            d.given.push(Spanned::new(key, arg.key.span()));
            let e = match value {
                Value::Group(list, span) => {
                    if let Some(g) = group(key, &arg.key, list, span, &mut d.check, errors) {
                        d.groups.push(g);
                    }
                    continue;
                }
                Value::Expr(e) => e,
            };
            match key {
                Key::Scopes => d.scopes = names(e, "scope", errors),
                Key::Permissions => d.permissions = names(e, "permission", errors),
                Key::Roles => d.roles = roles(e, errors),
                Key::Rate => d.rate = rate::rate(e, errors).map(|r| Spanned::new(r, e.span())),
                Key::RateKey => {
                    d.rate_key = rate::rate_key(e, errors).map(|r| Spanned::new(r, e.span()))
                }
                Key::RateGroup => d.rate_group = rate::rate_group(e, errors),
                Key::Auth => {
                    if let Some(a) = auth(e, errors) {
                        d.auth = a;
                    }
                }
                Key::Check => {
                    set_check(&mut d.check, e, errors);
                }
                Key::Catalogue => d.catalogue = path(e, key, errors),
                Key::Crate => d.krate = crate_path(e, errors).unwrap_or(d.krate),
                // Groups are taken above.
                Key::Any | Key::All => {}
            }
        }
        d
    }

    /// Every scope, role and permission named, groups included, with what it is.
    pub(crate) fn all_names(&self) -> Vec<(&'static str, &Name)> {
        let mut out = Vec::new();
        out.extend(self.scopes.iter().map(|n| ("scope", n)));
        if let Some(r) = &self.roles {
            out.extend(r.names.iter().map(|n| ("role", n)));
        }
        out.extend(self.permissions.iter().map(|n| ("permission", n)));
        fn walk<'a>(g: &'a Group, out: &mut Vec<(&'static str, &'a Name)>) {
            for m in &g.members {
                match m {
                    Grant::Scopes(v) => out.extend(v.iter().map(|n| ("scope", n))),
                    Grant::Roles(r) => out.extend(r.names.iter().map(|n| ("role", n))),
                    Grant::Permissions(v) => out.extend(v.iter().map(|n| ("permission", n))),
                    Grant::Group(g) => walk(g, out),
                    Grant::Check => {}
                }
            }
        }
        for g in &self.groups {
            walk(g, &mut out);
        }
        out
    }
}

/// `any(...)` / `all(...)`: its members, each a grant requirement or a group.
fn group(
    key: Key,
    keyword: &syn::Ident,
    list: &[RawArg],
    parens: Span,
    check: &mut Option<Check>,
    errors: &mut Errors,
) -> Option<Group> {
    let (mode, kw) = match key {
        Key::All => (GroupMode::All, "all"),
        _ => (GroupMode::Any, "any"),
    };
    if list.is_empty() {
        let span = keyword.span().join(parens).unwrap_or(keyword.span());
        errors.at(
            span,
            format!(
                "empty `{kw}()`: name at least one requirement, e.g. {}",
                key.example()
            ),
        );
        return None;
    }
    let where_ = format!(" in one `{kw}(...)`");
    let repeatable = |n: &str| Key::lookup(n).is_some_and(Key::is_group);
    let mut members = Vec::new();
    for arg in crate::args::once(list, repeatable, &where_, errors) {
        let name = arg.name();
        let Some(inner) = Key::lookup(&name) else {
            errors.at(
                arg.key.span(),
                keys::unknown(&name, Places::GROUP, &format!("`{kw}(...)`")),
            );
            continue;
        };
        if !inner.allowed(Places::GROUP) {
            errors.at(
                arg.key.span(),
                format!(
                    "`{name}` applies to the whole handler and cannot stand inside `{kw}(...)`: move it to the top level of the attribute"
                ),
            );
            continue;
        }
        let Some(value) = value(arg, inner, errors) else {
            continue;
        };
        let member = match (inner, value) {
            (_, Value::Group(list, span)) => {
                group(inner, &arg.key, list, span, check, errors).map(Grant::Group)
            }
            (Key::Scopes, Value::Expr(e)) => nonempty(names(e, "scope", errors)).map(Grant::Scopes),
            (Key::Permissions, Value::Expr(e)) => {
                nonempty(names(e, "permission", errors)).map(Grant::Permissions)
            }
            (Key::Roles, Value::Expr(e)) => roles(e, errors).map(Grant::Roles),
            (Key::Check, Value::Expr(e)) => set_check(check, e, errors).then_some(Grant::Check),
            (_, Value::Expr(_)) => None,
        };
        members.extend(member);
    }
    (!members.is_empty()).then(|| Group {
        mode,
        members,
        span: keyword.span(),
    })
}

fn nonempty(v: Vec<Name>) -> Option<Vec<Name>> {
    (!v.is_empty()).then_some(v)
}

pub(crate) fn lit_str(e: &Expr) -> Option<&LitStr> {
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

fn roles(e: &Expr, errors: &mut Errors) -> Option<Roles> {
    let span = e.span();
    let make = |mode, names: Vec<Name>| (!names.is_empty()).then_some(Roles { mode, names, span });
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
            return None;
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
        return make(mode, out);
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
            return None;
        }
    }
    make(RoleMode::Any, names(e, "role", errors))
}

fn auth(e: &Expr, errors: &mut Errors) -> Option<Auth> {
    let mut a = Auth {
        bearer: false,
        api_key: false,
        basic: false,
        span: Some(e.span()),
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

fn path(e: &Expr, key: Key, errors: &mut Errors) -> Option<Path> {
    match e {
        Expr::Path(p) => Some(p.path.clone()),
        _ => {
            errors.at(e.span(), format!("expected a path, e.g. {}", key.example()));
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
