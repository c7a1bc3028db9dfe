//! `check = f(a, b)`: object-level checks on the handler's own parameters,
//! on plain poem handlers and poem-openapi operations, alone and inside
//! `any(...)`. Each test tries the refusal too: a non-owner is refused, the
//! handler's code never runs for them, and a plain handler's body is never
//! read before the check passes.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
};

use poem::{
    handler,
    http::StatusCode,
    test::TestClient,
    web::{Data, Json, Path},
    EndpointExt,
};
use poem_openapi::{payload::PlainText, OpenApi};
use poem_secure::{
    deny_unprotected,
    openapi::service,
    route::{delete, put, Route},
    secure,
    testing::token,
    Denied, JwtConfig, Principal, Security,
};

const SECRET: &[u8; 32] = b"typed-checks-test-secret-32-byte";

/// Items and their owners, with counters of what ran.
#[derive(Default)]
struct Store {
    owners: HashMap<u64, String>,
    checks: AtomicUsize,
    handled: AtomicUsize,
}

fn store() -> Arc<Store> {
    let mut owners = HashMap::new();
    owners.insert(1, "alice".to_owned());
    owners.insert(2, "bob".to_owned());
    Arc::new(Store {
        owners,
        ..Store::default()
    })
}

/// The owner of item `id`, or 404 (someone else's item looks missing).
async fn owns_item(who: &Principal, id: &u64, store: &Arc<Store>) -> Result<(), Denied> {
    store.checks.fetch_add(1, Ordering::SeqCst);
    match store.owners.get(id) {
        Some(owner) if owner == who.subject() => Ok(()),
        Some(_) => Err(Denied::not_found().because("not the owner")),
        None => Err(Denied::not_found().because("no such item")),
    }
}

/// A 403 variant, to show that the check's own status is answered.
async fn same_tenant(who: &Principal, tenant: &String) -> Result<(), Denied> {
    if who.subject() == tenant {
        Ok(())
    } else {
        Err(Denied::forbidden().because("another tenant"))
    }
}

#[secure(scopes = "items:write", check = owns_item(id, store))]
#[handler]
async fn remove(Path(id): Path<u64>, Data(store): Data<&Arc<Store>>) -> String {
    store.handled.fetch_add(1, Ordering::SeqCst);
    format!("removed {id}")
}

/// The body comes last and is read only after the check passed.
#[secure(scopes = "items:write", check = owns_item(id, store))]
#[handler]
async fn rename(
    Path(id): Path<u64>,
    body: Json<serde_json::Value>,
    Data(store): Data<&Arc<Store>>,
) -> String {
    store.handled.fetch_add(1, Ordering::SeqCst);
    format!("renamed {id} to {}", body.0["name"])
}

#[secure(
    scopes = "items:write",
    any(permissions = "items:delete-any", check = owns_item(id, store))
)]
#[handler]
async fn moderate(Path(id): Path<u64>, Data(store): Data<&Arc<Store>>) -> String {
    store.handled.fetch_add(1, Ordering::SeqCst);
    format!("moderated {id}")
}

#[secure(check = same_tenant(tenant))]
#[handler]
async fn tenant_home(Path(tenant): Path<String>) -> String {
    format!("home of {tenant}")
}

fn security() -> Security {
    Security::builder()
        .jwt(
            JwtConfig::hs256(SECRET)
                .unwrap()
                .issuer("typed")
                .audience("api"),
        )
        .build()
        .unwrap()
}

fn writer(sec: &Security, who: &str) -> String {
    token(sec, who).scopes(["items:write"]).bearer()
}

fn plain_app(sec: &Security, store: &Arc<Store>) -> impl poem::Endpoint {
    Route::new()
        .at("/items/:id", delete(remove).put(rename))
        .at("/moderate/:id", delete(moderate))
        .at("/tenants/:tenant", put(tenant_home))
        .into_inner()
        .data(store.clone())
        .with(sec.clone())
}

#[tokio::test]
async fn plain_handler_admits_the_owner_and_hides_others_items() {
    let (sec, store) = (security(), store());
    let cli = TestClient::new(plain_app(&sec, &store));

    let r = cli
        .delete("/items/1")
        .header("authorization", writer(&sec, "alice"))
        .send()
        .await;
    r.assert_status_is_ok();
    r.assert_text("removed 1").await;

    // Bob's item and a missing one: the same 404, and the handler never ran.
    for id in [2, 99] {
        let r = cli
            .delete(format!("/items/{id}"))
            .header("authorization", writer(&sec, "alice"))
            .send()
            .await;
        r.assert_status(StatusCode::NOT_FOUND);
        r.assert_content_type("application/problem+json");
    }
    assert_eq!(store.handled.load(Ordering::SeqCst), 1);
    assert_eq!(store.checks.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn the_check_runs_after_the_grants_and_never_for_a_refused_caller() {
    let (sec, store) = (security(), store());
    let cli = TestClient::new(plain_app(&sec, &store));
    // No scope: 403 from the grants, the check is not consulted.
    let reader = token(&sec, "alice").scopes(["items:read"]).bearer();
    cli.delete("/items/1")
        .header("authorization", reader)
        .send()
        .await
        .assert_status(StatusCode::FORBIDDEN);
    // No credential: 401.
    cli.delete("/items/1")
        .send()
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
    assert_eq!(store.checks.load(Ordering::SeqCst), 0);
    assert_eq!(store.handled.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_refused_owner_check_reads_no_body() {
    let (sec, store) = (security(), store());
    let cli = TestClient::new(plain_app(&sec, &store));
    // Not JSON at all: a body that would be a 400 if it were read. The check
    // refuses first, so the answer is the check's 404.
    let r = cli
        .put("/items/2")
        .header("authorization", writer(&sec, "alice"))
        .content_type("application/json")
        .body("{not json")
        .send()
        .await;
    r.assert_status(StatusCode::NOT_FOUND);
    // The owner's request goes on to the body.
    let r = cli
        .put("/items/1")
        .header("authorization", writer(&sec, "alice"))
        .content_type("application/json")
        .body(r#"{"name":"x"}"#)
        .send()
        .await;
    r.assert_status_is_ok();
    r.assert_text(r#"renamed 1 to "x""#).await;
    assert_eq!(store.handled.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn any_group_skips_the_check_for_the_permission_and_runs_it_otherwise() {
    let (sec, store) = (security(), store());
    let cli = TestClient::new(plain_app(&sec, &store));
    let moderator = token(&sec, "mo")
        .scopes(["items:write"])
        .permissions(["items:delete-any"])
        .bearer();
    let r = cli
        .delete("/moderate/2")
        .header("authorization", moderator)
        .send()
        .await;
    r.assert_status_is_ok();
    assert_eq!(
        store.checks.load(Ordering::SeqCst),
        0,
        "the permission alone meets any(...): the check must not run"
    );
    // The owner passes through the check.
    cli.delete("/moderate/2")
        .header("authorization", writer(&sec, "bob"))
        .send()
        .await
        .assert_status_is_ok();
    // Neither the permission nor the owner: the check's 404.
    cli.delete("/moderate/2")
        .header("authorization", writer(&sec, "alice"))
        .send()
        .await
        .assert_status(StatusCode::NOT_FOUND);
    assert_eq!(store.checks.load(Ordering::SeqCst), 2);
    assert_eq!(store.handled.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_forbidden_check_answers_403() {
    let (sec, store) = (security(), store());
    let cli = TestClient::new(plain_app(&sec, &store));
    let bearer = token(&sec, "acme").bearer();
    cli.put("/tenants/acme")
        .header("authorization", bearer.clone())
        .send()
        .await
        .assert_text("home of acme")
        .await;
    let r = cli
        .put("/tenants/globex")
        .header("authorization", bearer)
        .send()
        .await;
    r.assert_status(StatusCode::FORBIDDEN);
    r.assert_content_type("application/problem+json");
}

// poem-openapi: the path parameter is renamed inside poem-openapi (it finds
// path parameters by the type name `Path`, so no alias), and a check
// on the raw request could not find it; a typed check gets the extracted one.
struct Items {
    store: Arc<Store>,
}

async fn owns(who: &Principal, id: &u64, items: &Items) -> Result<(), Denied> {
    owns_item(who, id, &items.store).await
}

#[deny_unprotected]
#[OpenApi]
impl Items {
    #[secure(scopes = "items:write", any(permissions = "items:delete-any", check = owns(id, self)))]
    #[oai(path = "/items/:id", method = "delete")]
    async fn delete(&self, id: poem_openapi::param::Path<u64>) -> PlainText<String> {
        self.store.handled.fetch_add(1, Ordering::SeqCst);
        PlainText(format!("deleted {}", id.0))
    }
}

#[tokio::test]
async fn openapi_operation_admits_owner_and_permission_and_hides_the_rest() {
    let (sec, store) = (security(), store());
    let api = service(
        Items {
            store: store.clone(),
        },
        "items",
        "1",
    );
    let spec = api.spec();
    let cli = TestClient::new(Route::new().nest("/", api).with(sec.clone()));

    let r = cli
        .delete("/items/1")
        .header("authorization", writer(&sec, "alice"))
        .send()
        .await;
    r.assert_text("deleted 1").await;

    let r = cli
        .delete("/items/2")
        .header("authorization", writer(&sec, "alice"))
        .send()
        .await;
    r.assert_status(StatusCode::NOT_FOUND);
    r.assert_content_type("application/problem+json");

    let moderator = token(&sec, "mo")
        .scopes(["items:write"])
        .permissions(["items:delete-any"])
        .bearer();
    cli.delete("/items/2")
        .header("authorization", moderator)
        .send()
        .await
        .assert_status_is_ok();

    assert_eq!(store.handled.load(Ordering::SeqCst), 2);
    assert_eq!(store.checks.load(Ordering::SeqCst), 2);

    // The spec's 403 names the rule with the check, and the check's 404 is
    // documented.
    let doc: serde_json::Value = serde_json::from_str(&spec).unwrap();
    let responses = &doc["paths"]["/items/{id}"]["delete"]["responses"];
    assert!(
        responses["404"]["description"]
            .as_str()
            .is_some_and(|d| d.contains("object-level check")),
        "{responses}"
    );
    assert!(
        spec.contains(
            "either the permission `items:delete-any` or the check `owns(id, self)` passes"
        ),
        "{spec}"
    );
}
