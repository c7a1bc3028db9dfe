//! The reference service `examples/notes.rs`, built in process as its
//! `main` builds it: the fail-closed probe refuses every unauthorised
//! request on every secured route, its committed security matrix
//! (`examples/notes.security.md`) is current, and its served OpenAPI
//! document carries every requirement and passes an OpenAPI validator.

#[allow(dead_code)]
#[path = "../examples/notes.rs"]
mod notes;

#[path = "support/openapi_validator.rs"]
mod openapi_validator;

use std::path::PathBuf;

use poem::{Endpoint, Request};
use poem_secure::{
    testing::probe::{bearer, Probe},
    SecurityMatrix,
};

/// The committed matrix, relative to the workspace.
const MATRIX_FILE: &str = "examples/notes.security.md";

/// The matrix as the example binary names its declarations: there the
/// service is the crate root `notes`, here a module of this test.
fn matrix_document(m: &SecurityMatrix) -> String {
    let doc = format!(
        "# Security matrix of `examples/notes.rs`\n\n\
         Every route of the reference service and what it requires, generated\n\
         from the code by `SecurityMatrix::of(&app).to_markdown()`. A test\n\
         (`tests/notes_security.rs`) fails when this file is not current;\n\
         regenerate it with\n\
         `UPDATE_SECURITY_MATRIX=1 cargo test --all-features --test notes_security`.\n\n{}",
        m.to_markdown()
    );
    doc.replace("`notes_security::notes::", "`notes::")
}

#[tokio::test]
async fn every_secured_route_fails_closed() {
    let (app, security, _) = notes::app().await.unwrap();
    let matrix = SecurityMatrix::of(&app);
    let report = Probe::new(&app, &matrix)
        .mint(bearer(&security))
        .run()
        .await;
    println!("{report}");
    report.assert_fail_closed();
    // Every secured route of the contract was probed: /users/me, GET and
    // POST /notes, GET and DELETE /notes/{id}, the four admin routes,
    // /service/stats and /auth/logout.
    assert_eq!(report.routes, 11, "{}", matrix.to_markdown());
    // Only the API-key-only route lacks a minted credential.
    assert!(
        report
            .skipped
            .iter()
            .all(|s| s.starts_with("GET /service/stats")),
        "{report}"
    );
}

#[tokio::test]
async fn the_committed_security_matrix_is_current() {
    let (app, _, _) = notes::app().await.unwrap();
    let want = matrix_document(&SecurityMatrix::of(&app));
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(MATRIX_FILE);
    if std::env::var_os("UPDATE_SECURITY_MATRIX").is_some() {
        std::fs::write(&file, &want).unwrap();
        return;
    }
    let have = std::fs::read_to_string(&file).unwrap_or_default();
    assert!(
        have == want,
        "{MATRIX_FILE} is not current. Review the new matrix below, then regenerate the file with\n  \
         UPDATE_SECURITY_MATRIX=1 cargo test --all-features --test notes_security\n\n{want}"
    );
}

#[tokio::test]
async fn the_matrix_states_the_contract() {
    let (app, _, _) = notes::app().await.unwrap();
    let m = SecurityMatrix::of(&app);
    let me = m.find("GET", "/users/me").unwrap();
    assert_eq!(
        (me.access, me.scopes.as_slice()),
        ("secured", &["me".to_owned()][..])
    );
    let post = m.find("POST", "/notes").unwrap();
    assert_eq!(
        post.rate.as_ref().map(|r| (r.count, r.key)),
        Some((60, "user"))
    );
    let stats = m.find("GET", "/service/stats").unwrap();
    assert_eq!(stats.auth, ["api_key"]);
    assert_eq!(stats.scopes, ["stats:read"]);
    for public in [
        "/health",
        "/auth/token",
        "/auth/refresh",
        "/openapi.json",
        "/docs/*",
    ] {
        let row = m.rows().iter().find(|r| r.path == public).unwrap();
        assert_eq!(row.access, "public", "{public}");
    }
}

#[tokio::test]
async fn the_served_document_shows_every_requirement_and_is_valid() {
    let (app, _, _) = notes::app().await.unwrap();
    let resp = app
        .get_response(Request::builder().uri_str("/openapi.json").finish())
        .await;
    assert_eq!(resp.status(), 200);
    let text = resp.into_body().into_string().await.unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let stats = &doc["paths"]["/service/stats"]["get"];
    assert_eq!(
        stats["x-poem-secure"]["auth"],
        serde_json::json!(["api_key"])
    );
    assert_eq!(
        stats["x-poem-secure"]["scopes"],
        serde_json::json!(["stats:read"])
    );
    let users = &doc["paths"]["/admin/users"]["get"];
    assert_eq!(users["x-poem-secure"]["roles"]["any"][0], "admin");
    let line = users["summary"].as_str().unwrap_or_default().to_owned()
        + users["description"].as_str().unwrap_or_default();
    assert!(line.contains("the role `admin`"), "{line}");
    openapi_validator::assert_valid("notes", &text);
}
