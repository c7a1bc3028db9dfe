//! The fail-closed probe: walks a [`SecurityMatrix`] and, for every secured
//! route, sends no credential, an invalid one, and valid ones that lack each
//! required scope, role or permission in turn, asserting that each is
//! refused by the framework (401/403, or 404 where the route's `check` may
//! answer it) and that the handler's body never ran.

use std::{
    collections::BTreeSet,
    fmt,
    sync::atomic::{AtomicU64, Ordering},
};

use poem::{
    http::{header, Method, StatusCode},
    Endpoint, Request,
};

use crate::{
    matrix::{MatrixRow, SecurityMatrix},
    testing::token,
    CredentialKind, Policy, Principal, Roles, Rule, Security,
};

/// What a minted credential must grant (see [`Probe::mint`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// `bearer`, `api_key` or `basic`.
    pub kind: &'static str,
    /// A fresh subject per request.
    pub subject: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// Roles.
    pub roles: Vec<String>,
    /// Permissions.
    pub permissions: Vec<String>,
}

/// A header to send: `("authorization", "Bearer ...")`.
pub type Credential = (String, String);

/// A report of [`Probe::run`]: every request that was not refused as it
/// should have been.
///
/// ```should_panic
/// // A probe that found no secured route proves nothing: it fails.
/// secure_runtime::testing::probe::ProbeReport::default().assert_fail_closed();
/// ```
#[derive(Debug, Clone, Default)]
pub struct ProbeReport {
    /// Requests sent.
    pub sent: usize,
    /// Secured routes probed.
    pub routes: usize,
    /// Each failure: route, case, what came back.
    pub failures: Vec<String>,
    /// Cases not sent, and why (no credential of that kind can be minted).
    pub skipped: Vec<String>,
}

impl ProbeReport {
    /// Panics, listing every failing route and case, unless every request
    /// was refused; also when no secured route was probed at all.
    pub fn assert_fail_closed(&self) {
        assert!(
            self.routes > 0,
            "the probe found no secured route in the matrix"
        );
        assert!(self.failures.is_empty(), "{self}");
    }
}

impl fmt::Display for ProbeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "fail-closed probe: {} secured routes, {} requests, {} failures",
            self.routes,
            self.sent,
            self.failures.len()
        )?;
        for x in &self.failures {
            writeln!(f, "  FAIL {x}")?;
        }
        for x in &self.skipped {
            writeln!(f, "  skipped {x}")?;
        }
        Ok(())
    }
}

type Mint<'a> = Box<dyn Fn(&Grant) -> Option<Credential> + 'a>;
type Counter<'a> = Box<dyn Fn() -> u64 + 'a>;

/// The probe's configuration; [`probe`] is the one-line form.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use poem::EndpointExt;
/// use secure_runtime::{testing::probe::{bearer, Probe}, route::{get, Route}, JwtConfig, Security};
/// # use secure_runtime::{matrix::Declared, Protected, Policy, Requirement};
/// # struct Items; impl Requirement for Items {
/// #     const POLICY: &'static Policy = &Policy::secured("doc::items").with_scopes(&["items"]);
/// # }
/// # struct H; impl Protected for H { fn declarations() -> Vec<Declared> { vec![Declared::handler::<Items>()] } }
/// # impl poem::Endpoint for H { type Output = poem::Response;
/// #     async fn call(&self, req: poem::Request) -> poem::Result<poem::Response> {
/// #         secure_runtime::guard_check(&req, Items::POLICY).await?; Ok("items".into()) } }
/// let security = Security::builder()
///     .jwt(JwtConfig::hs256([7u8; 32]).unwrap().issuer("me").audience("api"))
///     .build()
///     .unwrap();
/// let routes = Route::new().at("/items", get(H));
/// let matrix = routes.security_matrix();
/// let app = routes.with(security.clone());
/// let report = Probe::new(&app, &matrix).mint(bearer(&security)).run().await;
/// report.assert_fail_closed();
/// assert_eq!(report.sent, 3); // none, invalid, without `items`
/// # });
/// ```
pub struct Probe<'a, E> {
    app: &'a E,
    matrix: &'a SecurityMatrix,
    mint: Option<Mint<'a>>,
    ran: Option<Counter<'a>>,
    api_key_header: String,
    param: String,
}

static SEQ: AtomicU64 = AtomicU64::new(0);

impl<'a, E: Endpoint> Probe<'a, E> {
    /// A probe of `app`'s routes as `matrix` lists them.
    pub fn new(app: &'a E, matrix: &'a SecurityMatrix) -> Self {
        Probe {
            app,
            matrix,
            mint: None,
            ran: None,
            api_key_header: "x-api-key".to_owned(),
            param: "1".to_owned(),
        }
    }
    /// Mints a valid credential for a grant, or `None` for a kind it cannot
    /// mint (those cases are reported as skipped). [`bearer`] signs JWTs
    /// with the app's own key.
    #[must_use]
    pub fn mint(mut self, f: impl Fn(&Grant) -> Option<Credential> + 'a) -> Self {
        self.mint = Some(Box::new(f));
        self
    }
    /// A counter the handlers' bodies increase: it must not move while the
    /// probe runs.
    #[must_use]
    pub fn body_counter(mut self, f: impl Fn() -> u64 + 'a) -> Self {
        self.ran = Some(Box::new(f));
        self
    }
    /// The API key header (default `X-API-Key`).
    #[must_use]
    pub fn api_key_header(mut self, name: impl Into<String>) -> Self {
        self.api_key_header = name.into();
        self
    }
    /// The value put in each path parameter (default `1`).
    #[must_use]
    pub fn path_param(mut self, value: impl Into<String>) -> Self {
        self.param = value.into();
        self
    }

    /// Sends every case to every secured route.
    pub async fn run(self) -> ProbeReport {
        let mut report = ProbeReport::default();
        for (row, policy) in self.matrix.entries() {
            let Some(policy) = policy.filter(|_| row.access == "secured") else {
                continue;
            };
            report.routes += 1;
            self.route(row, policy, &mut report).await;
        }
        report
    }

    async fn route(&self, row: &MatrixRow, policy: &'static Policy, report: &mut ProbeReport) {
        let route = format!("{} {}", row.method, row.path);
        let not_found_ok = policy.check_name().is_some();
        self.case(row, "no credential", None, &[401], report).await;
        for kind in &row.auth {
            let bad = self.invalid(kind);
            self.case(row, &format!("invalid {kind}"), Some(bad), &[401], report)
                .await;
        }
        let full = full_grant(policy);
        for (what, lacking) in lacking(policy, &full) {
            for kind in &row.auth {
                let grant = Grant {
                    kind,
                    subject: format!("poem-secure-probe-{}", SEQ.fetch_add(1, Ordering::Relaxed)),
                    scopes: lacking.0.clone(),
                    roles: lacking.1.clone(),
                    permissions: lacking.2.clone(),
                };
                let case = format!("valid {kind} {what}");
                match self.mint.as_ref().and_then(|m| m(&grant)) {
                    Some(cred) => {
                        let ok: &[u16] = if not_found_ok { &[403, 404] } else { &[403] };
                        self.case(row, &case, Some(cred), ok, report).await;
                    }
                    None => report.skipped.push(format!(
                        "{route}: {case} (no credential of this kind minted)"
                    )),
                }
            }
        }
    }

    fn invalid(&self, kind: &str) -> Credential {
        match kind {
            "api_key" => (
                self.api_key_header.clone(),
                "poem-secure-probe-invalid-key".to_owned(),
            ),
            "basic" => (
                "authorization".to_owned(),
                "Basic cG9lbS1zZWN1cmUtcHJvYmU6aW52YWxpZA==".to_owned(),
            ),
            // A well-formed JWT whose signature is wrong.
            _ => (
                "authorization".to_owned(),
                "Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6ImF0K2p3dCJ9.eyJzdWIiOiJwcm9iZSJ9.c2lnbmF0dXJlLWlzLXdyb25n".to_owned(),
            ),
        }
    }

    fn request(&self, row: &MatrixRow, cred: Option<&Credential>) -> Request {
        let method = match row.method.as_str() {
            "ANY" => Method::GET,
            m => Method::from_bytes(m.as_bytes()).unwrap_or(Method::GET),
        };
        let path: Vec<String> = row
            .path
            .split('/')
            .map(|seg| {
                if seg.starts_with('{') || seg == "*" {
                    self.param.clone()
                } else {
                    seg.to_owned()
                }
            })
            .collect();
        let mut b = Request::builder().method(method).uri_str(path.join("/"));
        if let Some((name, value)) = cred {
            b = b.header(name.as_str(), value.as_str());
        }
        b.finish()
    }

    async fn case(
        &self,
        row: &MatrixRow,
        case: &str,
        cred: Option<Credential>,
        expect: &[u16],
        report: &mut ProbeReport,
    ) {
        let route = format!("{} {}", row.method, row.path);
        let before = self.ran.as_ref().map(|f| f());
        let resp = self
            .app
            .get_response(self.request(row, cred.as_ref()))
            .await;
        report.sent += 1;
        let after = self.ran.as_ref().map(|f| f());
        let status = resp.status();
        let problem = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/problem+json"));
        let challenge = resp.headers().contains_key(header::WWW_AUTHENTICATE);
        let mut wrong = Vec::new();
        if !expect.contains(&status.as_u16()) {
            wrong.push(format!("status {status}, expected {expect:?}"));
        }
        if !problem {
            wrong.push("not the framework's problem+json refusal".to_owned());
        }
        if status == StatusCode::UNAUTHORIZED && !challenge {
            wrong.push("401 without WWW-Authenticate".to_owned());
        }
        if before != after {
            wrong.push("the handler's body ran".to_owned());
        }
        if !wrong.is_empty() {
            report
                .failures
                .push(format!("{route}: {case}: {}", wrong.join("; ")));
        }
    }
}

/// Runs [`Probe`] with a credential factory: one line in a test suite.
///
/// ```no_run
/// # async fn t(app: poem::Route, matrix: secure_runtime::SecurityMatrix, security: secure_runtime::Security) {
/// use secure_runtime::testing::probe::{bearer, probe};
/// probe(&app, &matrix, bearer(&security)).await.assert_fail_closed();
/// # }
/// ```
pub async fn probe<'a, E: Endpoint>(
    app: &'a E,
    matrix: &'a SecurityMatrix,
    mint: impl Fn(&Grant) -> Option<Credential> + 'a,
) -> ProbeReport {
    Probe::new(app, matrix).mint(mint).run().await
}

/// A factory for [`Probe::mint`] that signs bearer tokens with `security`'s
/// own key ([`token`]); other kinds are not minted.
///
/// ```
/// use secure_runtime::{testing::probe::{bearer, Grant}, JwtConfig, Security};
/// let security = Security::builder()
///     .jwt(JwtConfig::hs256([7u8; 32]).unwrap().issuer("me").audience("api"))
///     .build()
///     .unwrap();
/// let mint = bearer(&security);
/// let grant = Grant { kind: "bearer", subject: "p".into(), scopes: vec![], roles: vec![], permissions: vec![] };
/// assert!(mint(&grant).unwrap().1.starts_with("Bearer ey"));
/// assert!(mint(&Grant { kind: "api_key", ..grant }).is_none());
/// ```
pub fn bearer(security: &Security) -> impl Fn(&Grant) -> Option<Credential> + '_ {
    move |g| {
        (g.kind == "bearer").then(|| {
            let t = token(security, &g.subject)
                .scopes(g.scopes.iter().cloned())
                .roles(g.roles.iter().cloned())
                .permissions(g.permissions.iter().cloned())
                .bearer();
            ("authorization".to_owned(), t)
        })
    }
}

/// Scopes, roles and permissions.
type Names = (Vec<String>, Vec<String>, Vec<String>);

fn roles_of(r: Roles) -> &'static [&'static str] {
    match r {
        Roles::Any(v) | Roles::All(v) => v,
        Roles::None => &[],
    }
}

fn rule_names(rule: &Rule, out: &mut [BTreeSet<String>; 3]) {
    match rule {
        Rule::Scopes(v) => out[0].extend(v.iter().map(|s| (*s).to_owned())),
        Rule::Roles(r) => out[1].extend(roles_of(*r).iter().map(|s| (*s).to_owned())),
        Rule::Permissions(v) => out[2].extend(v.iter().map(|s| (*s).to_owned())),
        Rule::All(v) | Rule::Any(v) => v.iter().for_each(|r| rule_names(r, out)),
        // Other members (e.g. checks) grant no name.
        #[allow(unreachable_patterns)]
        _ => {}
    }
}

/// Every name the policy mentions: a grant of all of them meets every
/// alternative.
fn full_grant(p: &Policy) -> [BTreeSet<String>; 3] {
    let mut out: [BTreeSet<String>; 3] = Default::default();
    out[0].extend(p.scopes().iter().map(|s| (*s).to_owned()));
    out[1].extend(roles_of(p.roles()).iter().map(|s| (*s).to_owned()));
    out[2].extend(p.permissions().iter().map(|s| (*s).to_owned()));
    if let Some(rule) = p.rule() {
        rule_names(rule, &mut out);
    }
    out
}

fn admits(p: &Policy, (s, r, m): &Names) -> bool {
    let who = Principal::builder(CredentialKind::Bearer, "probe")
        .scopes(s.iter().cloned())
        .roles(r.iter().cloned())
        .permissions(m.iter().cloned())
        .build();
    p.scopes().iter().all(|x| s.iter().any(|y| y == x))
        && p.roles().satisfied_by(r)
        && p.permissions().iter().all(|x| m.iter().any(|y| y == x))
        && p.rule().is_none_or(|rule| rule.evaluate(&who).is_ok())
}

/// The grants to send: everything but one name, for each name whose absence
/// the policy refuses; and nothing at all.
fn lacking(p: &Policy, full: &[BTreeSet<String>; 3]) -> Vec<(String, Names)> {
    let all = |skip: Option<(usize, &String)>| -> Names {
        let pick = |i: usize| -> Vec<String> {
            full[i]
                .iter()
                .filter(|n| skip != Some((i, n)))
                .cloned()
                .collect()
        };
        (pick(0), pick(1), pick(2))
    };
    let mut out = Vec::new();
    for (i, what) in ["scope", "role", "permission"].iter().enumerate() {
        for name in &full[i] {
            let g = all(Some((i, name)));
            if !admits(p, &g) {
                out.push((format!("without {what} `{name}`"), g));
            }
        }
    }
    let none: Names = Default::default();
    if !admits(p, &none) && !out.iter().any(|(_, g)| *g == none) {
        out.push(("granting nothing".to_owned(), none));
    }
    out
}
