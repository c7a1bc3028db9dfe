//! The OpenAPI document with every requirement in it: each declared
//! operation gains an `x-poem-secure` extension (accepted credentials,
//! scopes — for API keys too —, roles, permissions, the composed rule, the
//! check by name, the rate). poem-openapi's `MetaOperation` has no vendor
//! extensions, so this post-processes the serialized document.
//!
//! Serve it with [`spec_endpoint`] instead of `OpenApiService::spec_endpoint`.

use poem::{http::StatusCode, Endpoint, Request, Response, Result};
use poem_openapi::{OpenApi, OpenApiService, Webhook};
use serde_json::Value;

use crate::web::{
    matrix::{Declared, MatrixRow},
    route::Protected,
};

/// The name of the operation-level extension.
///
/// ```
/// assert!(secure_runtime::openapi::EXTENSION.starts_with("x-"));
/// ```
pub const EXTENSION: &str = "x-poem-secure";

/// The extension object of one row: everything but the method and path.
fn extension(row: &MatrixRow) -> Value {
    let mut v = serde_json::to_value(row).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut v {
        map.remove("method");
        map.remove("path");
        map.remove("note");
    }
    v
}

/// Adds `x-poem-secure` to each operation of the JSON document `spec` that
/// one of `declared` names (by method and path). Entries without a method
/// or path, and operations the document lacks, are left alone; a document
/// that is not JSON is returned as it is.
///
/// ```
/// use secure_runtime::{matrix::Declared, openapi::annotate, Policy, Requirement};
///
/// struct Read;
/// impl Requirement for Read {
///     const POLICY: &'static Policy = &Policy::secured("app::read").with_scopes(&["notes:read"]);
/// }
/// let spec = r#"{"openapi":"3.0.0","paths":{"/notes/{id}":{"get":{"responses":{}}}}}"#;
/// let out = annotate(spec, &[Declared::operation::<Read>("get", "/notes/:id")]);
/// let v: serde_json::Value = serde_json::from_str(&out).unwrap();
/// assert_eq!(v["paths"]["/notes/{id}"]["get"]["x-poem-secure"]["scopes"][0], "notes:read");
/// ```
pub fn annotate(spec: &str, declared: &[Declared]) -> String {
    let Ok(mut doc) = serde_json::from_str::<Value>(spec) else {
        return spec.to_owned();
    };
    for d in declared {
        let (Some(method), Some(path)) = (d.method(), d.path()) else {
            continue;
        };
        let op = doc
            .get_mut("paths")
            .and_then(|p| p.get_mut(path))
            .and_then(|p| p.get_mut(method.to_ascii_lowercase()));
        if let Some(Value::Object(op)) = op {
            op.insert(EXTENSION.to_owned(), extension(&d.row()));
        }
    }
    serde_json::to_string_pretty(&doc).unwrap_or_else(|_| spec.to_owned())
}

/// The service's document (`OpenApiService::spec`) with `x-poem-secure` on
/// every declared operation (`#[deny_unprotected]` writes the
/// `impl Protected` that lists them; written by hand below).
///
/// ```
/// use poem_openapi::{payload::PlainText, OpenApi};
/// use secure_runtime::{matrix::Declared, openapi::{annotated_spec, service}, Policy, Protected, Requirement};
///
/// struct Stats;
/// impl Requirement for Stats {
///     const POLICY: &'static Policy = &Policy::secured("app::stats")
///         .with_auth(secure_runtime::AuthKinds::BEARER.or(secure_runtime::AuthKinds::API_KEY))
///         .with_scopes(&["stats:read"]);
/// }
/// struct Api;
/// #[OpenApi]
/// impl Api {
///     #[oai(path = "/stats", method = "get")]
///     async fn stats(&self) -> PlainText<&'static str> {
///         PlainText("0")
///     }
/// }
/// impl Protected for Api {
///     fn declarations() -> Vec<Declared> {
///         vec![Declared::operation::<Stats>("get", "/stats")]
///     }
/// }
/// let spec: serde_json::Value = serde_json::from_str(&annotated_spec(&service(Api, "api", "1"))).unwrap();
/// let ext = &spec["paths"]["/stats"]["get"]["x-poem-secure"];
/// assert_eq!(ext["auth"], serde_json::json!(["bearer", "api_key"]));
/// assert_eq!(ext["scopes"], serde_json::json!(["stats:read"]));
/// ```
pub fn annotated_spec<T: OpenApi + Protected, W: Webhook>(
    service: &OpenApiService<T, W>,
) -> String {
    annotate(&service.spec(), &T::declarations())
}

/// A public endpoint serving [`annotated_spec`] as `application/json`,
/// computed once; routable by [`Route`](crate::route::Route) as a
/// deliberately public endpoint.
///
/// ```
/// use poem_openapi::{payload::PlainText, OpenApi};
/// use secure_runtime::{openapi::{service, spec_endpoint}, route::Route, Protected};
///
/// struct Api;
/// #[OpenApi]
/// impl Api {
///     #[oai(path = "/health", method = "get")]
///     async fn health(&self) -> PlainText<&'static str> {
///         PlainText("ok")
///     }
/// }
/// impl Protected for Api {} // `#[deny_unprotected]` writes this
/// let api = service(Api, "api", "1");
/// let app = Route::new().at("/openapi.json", spec_endpoint(&api)).nest("/", api);
/// assert_eq!(app.security_matrix().find("ANY", "/openapi.json").unwrap().access, "public");
/// ```
pub fn spec_endpoint<T: OpenApi + Protected, W: Webhook>(
    service: &OpenApiService<T, W>,
) -> SpecEndpoint {
    SpecEndpoint(annotated_spec(service))
}

/// The endpoint of [`spec_endpoint`].
pub struct SpecEndpoint(String);

impl Protected for SpecEndpoint {
    fn declarations() -> Vec<Declared> {
        vec![Declared::unguarded().with_note("public: the OpenAPI document")]
    }
}

impl Endpoint for SpecEndpoint {
    type Output = Response;
    async fn call(&self, _req: Request) -> Result<Response> {
        Ok(Response::builder()
            .status(StatusCode::OK)
            .content_type("application/json")
            .body(self.0.clone()))
    }
}
