//! The security matrix: every route an app is built with, and what it
//! requires, as JSON and Markdown for a security review.
//!
//! The declarations come from the generated `impl Protected` blocks (each
//! handler and each poem-openapi operation lists its [`Declared`] entries);
//! [`Route`](crate::route::Route) records them as routes are added, with the
//! full path (nest prefixes included) and the method.

use std::fmt::Write as _;

use serde::Serialize;

use crate::{web::route::Protected, Policy, RateKey, Requirement, Roles};

/// One declared endpoint, as the generated `impl Protected` (or a routing
/// wrapper of [`route`](crate::route)) describes it. The method and path are
/// known for poem-openapi operations and filled in by the router for handlers.
///
/// ```
/// use secure_runtime::{matrix::Declared, Policy, Requirement};
///
/// struct ListNotes;
/// impl Requirement for ListNotes {
///     const POLICY: &'static Policy = &Policy::secured("app::list").with_scopes(&["notes:read"]);
/// }
/// let d = Declared::operation::<ListNotes>("get", "/notes/:id");
/// assert_eq!(d.method(), Some("GET"));
/// assert_eq!(d.path(), Some("/notes/{id}"));
/// assert_eq!(d.policy().map(|p| p.scopes()), Some(&["notes:read"][..]));
/// ```
#[derive(Debug, Clone)]
pub struct Declared {
    method: Option<String>,
    path: Option<String>,
    policy: Option<&'static Policy>,
    forbidden: Option<&'static str>,
    note: Option<&'static str>,
}

impl Declared {
    /// A `#[secure]`/`#[public]` handler: its method and path are given by
    /// the router.
    pub fn handler<R: Requirement>() -> Declared {
        Declared {
            method: None,
            path: None,
            policy: Some(R::POLICY),
            forbidden: Some(R::FORBIDDEN_DOC),
            note: None,
        }
    }
    /// A poem-openapi operation declared `#[oai(path = .., method = ..)]`
    /// (the path in poem's syntax, `:id`, or OpenAPI's, `{id}`).
    pub fn operation<R: Requirement>(method: &str, path: &str) -> Declared {
        Declared {
            method: Some(method.to_ascii_uppercase()),
            path: Some(openapi_path(path)),
            ..Declared::handler::<R>()
        }
    }
    /// An endpoint routed without any declaration
    /// ([`route::public`](crate::route::public)): public, no policy.
    pub fn unguarded() -> Declared {
        Declared {
            method: None,
            path: None,
            policy: None,
            forbidden: None,
            note: None,
        }
    }
    /// A remark shown in the matrix (e.g. a limit configured at run time).
    #[must_use]
    pub fn with_note(mut self, note: &'static str) -> Declared {
        self.note = Some(note);
        self
    }
    /// Joins a prefix (`#[OpenApi(prefix_path = ..)]`, a nest) to the path.
    ///
    /// ```
    /// use secure_runtime::matrix::Declared;
    /// let d = Declared::unguarded().prefixed("/static/").or_method("get").with_note("files");
    /// assert_eq!((d.path(), d.method(), d.policy().is_none()), (Some("/static"), Some("GET"), true));
    /// ```
    #[must_use]
    pub fn prefixed(mut self, prefix: &str) -> Declared {
        self.path = Some(join(prefix, self.path.as_deref().unwrap_or("")));
        self
    }
    /// Sets the method when none is known yet (`get(handler)`).
    #[must_use]
    pub fn or_method(mut self, method: &str) -> Declared {
        if self.method.is_none() {
            self.method = Some(method.to_ascii_uppercase());
        }
        self
    }
    /// The method (upper case), when known.
    pub fn method(&self) -> Option<&str> {
        self.method.as_deref()
    }
    /// The path in OpenAPI syntax (`/notes/{id}`), when known.
    pub fn path(&self) -> Option<&str> {
        self.path.as_deref()
    }
    /// The policy; `None` for an undeclared, deliberately public endpoint.
    pub fn policy(&self) -> Option<&'static Policy> {
        self.policy
    }
    /// The text of the documented 403 (`Requirement::FORBIDDEN_DOC`).
    pub fn forbidden_doc(&self) -> Option<&'static str> {
        self.forbidden
    }
    /// The row of the matrix for this entry.
    pub fn row(&self) -> MatrixRow {
        MatrixRow::new(self)
    }
}

/// Poem path syntax to OpenAPI's: `:id` and `:id<\d+>` → `{id}`, `*rest` → `{rest}`.
pub(crate) fn openapi_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for (i, seg) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        let var = seg
            .strip_prefix(':')
            .or_else(|| seg.strip_prefix('*'))
            .filter(|v| !v.is_empty());
        match var {
            Some(v) => {
                let name = v.split('<').next().unwrap_or(v);
                let _ = write!(out, "{{{name}}}");
            }
            None => out.push_str(seg),
        }
    }
    out
}

/// `prefix` + `path` with exactly one `/` between them; `/` alone for empty.
pub(crate) fn join(prefix: &str, path: &str) -> String {
    let p = prefix.trim_end_matches('/');
    let s = path.trim_start_matches('/');
    let joined = match (p.is_empty(), s.is_empty()) {
        (_, true) => p.to_owned(),
        (true, false) => format!("/{s}"),
        (false, false) => format!("{p}/{s}"),
    };
    let joined = openapi_path(&joined);
    if joined.starts_with('/') {
        joined
    } else {
        format!("/{joined}")
    }
}

/// The roles of a row: `{"any": [..]}` or `{"all": [..]}`.
///
/// ```
/// use secure_runtime::matrix::RoleSet;
/// let json = serde_json::to_string(&RoleSet::All(vec!["admin".into(), "auditor".into()])).unwrap();
/// assert_eq!(json, r#"{"all":["admin","auditor"]}"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RoleSet {
    /// Any one of these suffices.
    Any(Vec<String>),
    /// All of these are required.
    All(Vec<String>),
}

/// The rate limit of a row.
///
/// ```
/// use secure_runtime::matrix::RateRow;
/// let r = RateRow { count: 5, period_secs: 60, burst: 10, key: "ip", group: Some("login") };
/// assert_eq!(r.text(), "5/min per ip, burst 10, group `login`");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RateRow {
    /// Requests per period.
    pub count: u32,
    /// The period, in seconds.
    pub period_secs: u32,
    /// The burst (the count when none is declared).
    pub burst: u32,
    /// What it counts per: `user`, `ip`, `api_key`, `ip_user`, `custom`.
    pub key: &'static str,
    /// The shared bucket (`rate_group`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<&'static str>,
}

impl RateRow {
    /// `60/min per user`, `5/min per ip, burst 10, group "login"`.
    pub fn text(&self) -> String {
        let period = match self.period_secs {
            1 => "s".to_owned(),
            60 => "min".to_owned(),
            3600 => "hour".to_owned(),
            86_400 => "day".to_owned(),
            s => format!("{s}s"),
        };
        let mut t = format!("{}/{period} per {}", self.count, self.key);
        if self.burst != self.count {
            let _ = write!(t, ", burst {}", self.burst);
        }
        if let Some(g) = self.group {
            let _ = write!(t, ", group `{g}`");
        }
        t
    }
}

/// One line of the matrix: what one method on one path requires.
///
/// ```
/// use secure_runtime::{matrix::Declared, Policy, Requirement, Roles};
///
/// struct Admin;
/// impl Requirement for Admin {
///     const POLICY: &'static Policy =
///         &Policy::secured("app::users").with_scopes(&["admin"]).with_roles(Roles::Any(&["admin"]));
/// }
/// let row = Declared::operation::<Admin>("get", "/admin/users").row();
/// assert_eq!((row.method.as_str(), row.path.as_str(), row.access), ("GET", "/admin/users", "secured"));
/// assert_eq!(row.auth, ["bearer"]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MatrixRow {
    /// `GET`, `POST`, ..., or `ANY` when every method reaches the endpoint.
    pub method: String,
    /// The full path in OpenAPI syntax (`/notes/{id}`); a nested endpoint
    /// without its own routes is shown as `/prefix/*`.
    pub path: String,
    /// `secured` or `public`.
    pub access: &'static str,
    /// Accepted credential kinds: `bearer`, `api_key`, `basic` (empty when public).
    pub auth: Vec<&'static str>,
    /// Required scopes (all of them).
    pub scopes: Vec<String>,
    /// Required roles.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roles: Option<RoleSet>,
    /// Required permissions (all of them).
    pub permissions: Vec<String>,
    /// The composed rule (`any(...)`/`all(...)`), in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// The object-level check, by name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
    /// The declared rate limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<RateRow>,
    /// The declaration's id (`module::handler`); absent for an undeclared endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<&'static str>,
    /// The documented 403.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forbidden: Option<&'static str>,
    /// A remark (e.g. "no declaration: `route::public`").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<&'static str>,
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

impl MatrixRow {
    fn new(d: &Declared) -> MatrixRow {
        let mut row = MatrixRow {
            method: d.method.clone().unwrap_or_else(|| "ANY".to_owned()),
            path: d.path.clone().unwrap_or_else(|| "/".to_owned()),
            access: "public",
            auth: Vec::new(),
            scopes: Vec::new(),
            roles: None,
            permissions: Vec::new(),
            rule: None,
            check: None,
            rate: None,
            operation: None,
            forbidden: None,
            note: d.note,
        };
        let Some(p) = d.policy else {
            row.note = row.note.or(Some("no declaration: `route::public`"));
            return row;
        };
        row.operation = Some(p.id());
        row.rate = p.rate().map(|r| RateRow {
            count: r.count(),
            period_secs: r.period_secs(),
            burst: r.burst(),
            key: match p.rate_key() {
                RateKey::Default if p.is_public() => "ip",
                RateKey::Default | RateKey::User => "user",
                RateKey::Ip => "ip",
                RateKey::ApiKey => "api_key",
                RateKey::IpUser => "ip_user",
                RateKey::Custom(_) => "custom",
            },
            group: p.rate_group(),
        });
        if p.is_public() {
            return row;
        }
        row.access = "secured";
        row.forbidden = d.forbidden;
        let auth = p.auth();
        row.auth = [
            (auth.accepts_bearer(), "bearer"),
            (auth.accepts_api_key(), "api_key"),
            (auth.accepts_basic(), "basic"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
        row.scopes = strings(p.scopes());
        row.roles = match p.roles() {
            Roles::None => None,
            Roles::Any(r) => Some(RoleSet::Any(strings(r))),
            Roles::All(r) => Some(RoleSet::All(strings(r))),
        };
        row.permissions = strings(p.permissions());
        row.rule = p.rule().map(ToString::to_string);
        row.check = p.check_name().map(str::to_owned);
        row
    }
}

/// The security matrix of an app: one [`MatrixRow`] per method and path,
/// sorted by path then method, so that a committed copy changes only where
/// the app's security does.
///
/// Built by [`Route::security_matrix`](crate::route::Route::security_matrix):
///
/// ```
/// use secure_runtime::{matrix::{Declared, SecurityMatrix}, Policy, Requirement};
///
/// struct Read;
/// impl Requirement for Read {
///     const POLICY: &'static Policy = &Policy::secured("app::read").with_scopes(&["notes:read"]);
/// }
/// let m = SecurityMatrix::from_declared(vec![
///     Declared::operation::<Read>("get", "/notes/:id"),
///     Declared::unguarded().or_method("get").prefixed("/health"),
/// ]);
/// assert_eq!(m.rows()[0].path, "/health");
/// assert!(m.to_markdown().contains("| GET | `/notes/{id}` | secured | bearer | `notes:read` |"));
/// assert!(m.to_json().contains("\"scopes\": [\n        \"notes:read\""));
/// ```
#[derive(Debug, Clone, Default, Serialize)]
pub struct SecurityMatrix {
    routes: Vec<MatrixRow>,
    /// The policy of each row, for the fail-closed probe.
    #[serde(skip)]
    policies: Vec<Option<&'static Policy>>,
}

impl PartialEq for SecurityMatrix {
    fn eq(&self, other: &Self) -> bool {
        self.routes == other.routes
    }
}

impl Eq for SecurityMatrix {}

fn method_rank(m: &str) -> usize {
    [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "ANY",
    ]
    .iter()
    .position(|x| *x == m)
    .unwrap_or(usize::MAX)
}

impl SecurityMatrix {
    /// The matrix of a router, also once wrapped in middleware
    /// (`Route::new()...with(security)`).
    ///
    /// ```
    /// use poem::middleware::AddData;
    /// use secure_runtime::{matrix::SecurityMatrix, route::{get, public, Route}};
    /// let app = Route::new()
    ///     .at("/health", get(public(poem::endpoint::make_sync(|_| "ok"))))
    ///     .with(AddData::new(1u8));
    /// assert_eq!(SecurityMatrix::of(&app).rows()[0].method, "GET");
    /// ```
    pub fn of<P: Protected>(app: &P) -> SecurityMatrix {
        SecurityMatrix::from_declared(app.declared())
    }
    /// The matrix of these entries (in any order).
    pub fn from_declared(entries: Vec<Declared>) -> SecurityMatrix {
        let mut rows: Vec<(MatrixRow, Option<&'static Policy>)> =
            entries.iter().map(|d| (d.row(), d.policy())).collect();
        rows.sort_by(|(a, _), (b, _)| {
            (a.path.as_str(), method_rank(&a.method), a.method.as_str()).cmp(&(
                b.path.as_str(),
                method_rank(&b.method),
                b.method.as_str(),
            ))
        });
        let (routes, policies) = rows.into_iter().unzip();
        SecurityMatrix { routes, policies }
    }
    /// The rows, sorted by path then method.
    pub fn rows(&self) -> &[MatrixRow] {
        &self.routes
    }
    /// Each row with its policy (`None` for an undeclared endpoint).
    ///
    /// ```
    /// use secure_runtime::{matrix::{Declared, SecurityMatrix}, Policy, Requirement};
    /// struct Me;
    /// impl Requirement for Me {
    ///     const POLICY: &'static Policy = &Policy::secured("app::me");
    /// }
    /// let m = SecurityMatrix::from_declared(vec![Declared::operation::<Me>("get", "/me")]);
    /// let (row, policy) = m.entries().next().unwrap();
    /// assert_eq!((row.path.as_str(), policy.map(|p| p.id())), ("/me", Some("app::me")));
    /// assert!(m.find("get", "/me").is_some());
    /// ```
    pub fn entries(&self) -> impl Iterator<Item = (&MatrixRow, Option<&'static Policy>)> {
        self.routes.iter().zip(self.policies.iter().copied())
    }
    /// The row of one method and path (`"GET"`, `"/notes/{id}"`).
    pub fn find(&self, method: &str, path: &str) -> Option<&MatrixRow> {
        self.routes
            .iter()
            .find(|r| r.method.eq_ignore_ascii_case(method) && r.path == path)
    }
    /// Pretty-printed JSON: `{"routes": [..]}`, ending with a newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_else(|_| "{}".to_owned());
        s.push('\n');
        s
    }
    /// A Markdown table, one row per method and path, ending with a newline.
    pub fn to_markdown(&self) -> String {
        fn names(v: &[String]) -> String {
            v.iter()
                .map(|s| format!("`{s}`"))
                .collect::<Vec<_>>()
                .join(", ")
        }
        fn or_dash(s: String) -> String {
            if s.is_empty() {
                "—".to_owned()
            } else {
                s.replace('|', "\\|")
            }
        }
        let mut out = String::from(
            "| Method | Path | Access | Auth | Scopes | Roles | Permissions | Rule | Check | Rate | Declared by |\n\
             |---|---|---|---|---|---|---|---|---|---|---|\n",
        );
        for r in &self.routes {
            let roles = match &r.roles {
                None => String::new(),
                Some(RoleSet::Any(v)) if v.len() <= 1 => names(v),
                Some(RoleSet::Any(v)) => format!("any of {}", names(v)),
                Some(RoleSet::All(v)) => format!("all of {}", names(v)),
            };
            let declared = match (r.operation, r.note) {
                (Some(op), Some(n)) => format!("`{op}` ({n})"),
                (Some(op), None) => format!("`{op}`"),
                (None, Some(n)) => n.to_owned(),
                (None, None) => String::new(),
            };
            let cells = [
                r.method.clone(),
                format!("`{}`", r.path),
                r.access.to_owned(),
                r.auth.join(", "),
                names(&r.scopes),
                roles,
                names(&r.permissions),
                r.rule.clone().unwrap_or_default(),
                r.check
                    .as_ref()
                    .map(|c| format!("`{c}`"))
                    .unwrap_or_default(),
                r.rate.as_ref().map(RateRow::text).unwrap_or_default(),
                declared,
            ];
            out.push('|');
            for c in cells {
                let _ = write!(out, " {} |", or_dash(c));
            }
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_joined_and_converted() {
        assert_eq!(join("/", "/notes"), "/notes");
        assert_eq!(join("/api/", "notes/:id"), "/api/notes/{id}");
        assert_eq!(join("/docs", ""), "/docs");
        assert_eq!(join("", ""), "/");
        assert_eq!(openapi_path("/f/*rest"), "/f/{rest}");
        assert_eq!(openapi_path("/docs/*"), "/docs/*");
        assert_eq!(openapi_path("/n/:id<\\d+>"), "/n/{id}");
    }
}
