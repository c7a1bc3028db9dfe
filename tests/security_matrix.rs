//! The security matrix: `Route::security_matrix()` lists every route an app
//! is built with — plain handlers routed by method, poem-openapi operations
//! (with `prefix_path`), nests, deliberately public endpoints, routes behind
//! a middleware — with the full path and what each requires, in a stable
//! order, as JSON and Markdown.

use poem::{handler, middleware::AddData};
use poem_openapi::{param::Path, payload::PlainText, OpenApi};
use poem_secure::{
    deny_unprotected,
    matrix::RoleSet,
    openapi::service,
    public,
    route::{self, get, Route},
    secure,
};

#[secure(scopes = "items:read", rate = "30/min, burst = 40", rate_key = ip)]
#[handler]
async fn list_items() -> &'static str {
    "items"
}

#[secure(
    auth = any(bearer, api_key),
    scopes = "items:write",
    any(roles = "admin", permissions = "items:delete-any")
)]
#[handler]
async fn delete_item() -> &'static str {
    "deleted"
}

#[public(rate = "5/min", rate_group = "login")]
#[handler]
async fn login() -> &'static str {
    "token"
}

struct Api;

#[deny_unprotected]
#[OpenApi(prefix_path = "/v1")]
impl Api {
    /// Reads one note.
    #[secure(scopes = "notes:read", roles = ["user", "admin"])]
    #[oai(path = "/notes/:id", method = "get")]
    async fn note(&self, id: Path<u64>) -> PlainText<String> {
        PlainText(id.0.to_string())
    }

    #[secure(roles = all("admin", "auditor"), permissions = "audit:read")]
    #[oai(path = "/audit", method = "get", method = "head")]
    async fn audit(&self) -> PlainText<&'static str> {
        PlainText("audit")
    }

    #[public]
    #[oai(path = "/health", method = "get")]
    async fn health(&self) -> PlainText<&'static str> {
        PlainText("ok")
    }
}

fn app() -> Route {
    let api = service(Api, "matrix", "1");
    Route::new()
        .at("/openapi.json", route::public(api.spec_endpoint()))
        .nest("/api", api)
        .at(
            "/items",
            get(list_items).delete(delete_item).with(AddData::new(7u32)),
        )
        .nest(
            "/auth",
            Route::new()
                .at("/login", route::post(login))
                .with(AddData::new(1u8)),
        )
        .nest(
            "/static",
            route::public(poem::endpoint::make_sync(|_| "file")),
        )
}

#[test]
fn every_route_is_listed_with_its_full_path_and_method_in_a_stable_order() {
    let m = app().security_matrix();
    let lines: Vec<(String, String, &str)> = m
        .rows()
        .iter()
        .map(|r| (r.method.clone(), r.path.clone(), r.access))
        .collect();
    let expect = [
        ("GET", "/api/v1/audit", "secured"),
        ("HEAD", "/api/v1/audit", "secured"),
        ("GET", "/api/v1/health", "public"),
        ("GET", "/api/v1/notes/{id}", "secured"),
        ("POST", "/auth/login", "public"),
        ("GET", "/items", "secured"),
        ("DELETE", "/items", "secured"),
        ("ANY", "/openapi.json", "public"),
        ("ANY", "/static/*", "public"),
    ];
    let expect: Vec<(String, String, &str)> = expect
        .iter()
        .map(|(m, p, a)| ((*m).to_owned(), (*p).to_owned(), *a))
        .collect();
    assert_eq!(lines, expect);
}

#[test]
fn each_row_states_the_declared_requirement() {
    let m = app().security_matrix();

    let list = m.find("GET", "/items").unwrap();
    assert_eq!(list.auth, ["bearer"]);
    assert_eq!(list.scopes, ["items:read"]);
    let rate = list.rate.as_ref().unwrap();
    assert_eq!(
        (rate.count, rate.period_secs, rate.burst, rate.key),
        (30, 60, 40, "ip")
    );
    assert!(list.operation.unwrap().ends_with("::list_items"));

    let del = m.find("DELETE", "/items").unwrap();
    assert_eq!(del.auth, ["bearer", "api_key"]);
    assert_eq!(del.scopes, ["items:write"]);
    assert_eq!(
        del.rule.as_deref(),
        Some("role `admin` or permission `items:delete-any`")
    );
    assert!(del.forbidden.unwrap().contains("`items:delete-any`"));

    let note = m.find("GET", "/api/v1/notes/{id}").unwrap();
    assert_eq!(
        note.roles,
        Some(RoleSet::Any(vec!["user".into(), "admin".into()]))
    );
    let audit = m.find("HEAD", "/api/v1/audit").unwrap();
    assert_eq!(
        audit.roles,
        Some(RoleSet::All(vec!["admin".into(), "auditor".into()]))
    );
    assert_eq!(audit.permissions, ["audit:read"]);

    let login_row = m.find("POST", "/auth/login").unwrap();
    let rate = login_row.rate.as_ref().unwrap();
    assert_eq!((rate.key, rate.group), ("ip", Some("login")));
    assert!(login_row.auth.is_empty());

    let stat = m.find("ANY", "/static/*").unwrap();
    assert_eq!(stat.operation, None);
    assert_eq!(stat.note, Some("no declaration: `route::public`"));
}

#[test]
fn json_and_markdown_carry_every_row() {
    let m = app().security_matrix();
    let json: serde_json::Value = serde_json::from_str(&m.to_json()).unwrap();
    let routes = json["routes"].as_array().unwrap();
    assert_eq!(routes.len(), m.rows().len());
    assert_eq!(routes[3]["path"], "/api/v1/notes/{id}");
    assert_eq!(routes[3]["roles"]["any"][1], "admin");
    assert_eq!(
        routes[6]["rule"],
        "role `admin` or permission `items:delete-any`"
    );

    let md = m.to_markdown();
    assert_eq!(md.lines().count(), 2 + m.rows().len());
    assert!(md.contains(
        "| DELETE | `/items` | secured | bearer, api_key | `items:write` | — | — | role `admin` or permission `items:delete-any` | — | — |"
    ), "{md}");
    assert!(md.contains("| GET | `/items` | secured | bearer | `items:read` | — | — | — | — | 30/min per ip, burst 40 |"), "{md}");
    assert!(md.contains("| HEAD | `/api/v1/audit` | secured | bearer | — | all of `admin`, `auditor` | `audit:read` |"), "{md}");
    // Built twice, the same text: safe to commit and diff.
    assert_eq!(md, app().security_matrix().to_markdown());
}
