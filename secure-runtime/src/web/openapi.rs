//! poem-openapi glue: the security-scheme parameter, response documentation
//! for 401/403/429, and the checked service builder.

use std::{future::Future, marker::PhantomData};

use poem::{Request, RequestBody, Response, Result};
use poem_openapi::{
    registry::{
        MetaMediaType, MetaOAuthScope, MetaResponse, MetaResponses, MetaSchema, MetaSchemaRef,
        MetaSecurityScheme, Registry,
    },
    ApiExtractor, ApiExtractorType, ApiResponse, ExtractParamOptions, OAuthScopes, OpenApi,
    OpenApiService,
};

pub use crate::web::openapi_flows::{OpenApiFlows, OPENID_CONNECT_SCHEME};
pub use crate::web::spec::{annotate, annotated_spec, spec_endpoint, SpecEndpoint, EXTENSION};
#[cfg(feature = "swagger-ui")]
pub use crate::web::swagger::SwaggerUi;
use crate::{
    web::guard::Admitted, web::guard::GuardFuture, web::openapi_flows::documented, AuthRejection,
    Protected, Requirement,
};

/// Name of the OAuth2 scheme (password, client-credentials and
/// authorization-code flows; see [`OpenApiFlows`]).
pub const OAUTH2_SCHEME: &str = "oauth2";
/// Name of the HTTP bearer (JWT) scheme (used without a token URL).
pub const BEARER_SCHEME: &str = "bearerAuth";
/// Name of the API key scheme.
pub const API_KEY_SCHEME: &str = "apiKey";
/// Name of the HTTP Basic scheme.
pub const BASIC_SCHEME: &str = "basicAuth";
/// Name of the problem-details schema in `components.schemas`.
pub const PROBLEM_SCHEMA: &str = "ProblemDetails";

/// The security-scheme parameter that `#[deny_unprotected]` adds to each
/// `#[secure]` operation: it verifies the caller (like [`crate::Guard`]) and
/// documents the non-OAuth2 schemes it accepts (`bearerAuth`, `apiKey`,
/// `basicAuth`), each with an empty scope list as OpenAPI 3.0 requires.
pub struct OaiGuard<R> {
    /// The caller, kept only when the operation's typed `check` is due.
    due: Option<crate::Principal>,
    _req: PhantomData<fn() -> R>,
}

impl<R> OaiGuard<R> {
    /// The caller when the operation's typed `check` must still run (the
    /// rest of its declaration cannot admit the caller alone). Generated
    /// code only.
    #[doc(hidden)]
    pub fn check_due(&self) -> Option<&crate::Principal> {
        self.due.as_ref()
    }
}

/// A documentation-only parameter placed before [`OaiGuard`]: it carries the
/// operation's scopes (`#[oai(scope = ...)]`) and names the `oauth2` and
/// `openIdConnect` schemes the catalogue or the installed [`OpenApiFlows`]
/// configure; otherwise it documents nothing. Extracting
/// it does nothing: [`OaiGuard`] enforces.
pub struct OaiScopes<R>(PhantomData<fn() -> R>);

impl<'a, R: Requirement> ApiExtractor<'a> for OaiScopes<R> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        if let Some((catalogue, flows)) = documented::<R>() {
            flows.register(catalogue, registry);
        }
    }

    fn security_schemes() -> Vec<&'static str> {
        documented::<R>().map_or_else(Vec::new, |(_, flows)| flows.scheme_names())
    }

    async fn from_request(
        _request: &'a Request,
        _body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> Result<Self> {
        Ok(OaiScopes(PhantomData))
    }
}

impl<R> Admitted for OaiGuard<R> {
    fn admitted(req: &Request, policy: &'static crate::Policy) -> Self {
        OaiGuard {
            due: crate::web::guard::check_due(req, policy).cloned(),
            _req: PhantomData,
        }
    }
}

impl<'a, R: Requirement> ApiExtractor<'a> for OaiGuard<R> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        let policy = R::POLICY;
        if policy.auth().accepts_bearer() && documented::<R>().is_none() {
            registry.create_security_scheme(
                BEARER_SCHEME,
                MetaSecurityScheme {
                    ty: "http",
                    description: Some("A JWT access token (RFC 9068) in `Authorization: Bearer`."),
                    name: None,
                    key_in: None,
                    scheme: Some("bearer"),
                    bearer_format: Some("JWT"),
                    flows: None,
                    openid_connect_url: None,
                },
            );
        }
        if policy.auth().accepts_api_key() {
            registry.create_security_scheme(
                API_KEY_SCHEME,
                MetaSecurityScheme {
                    ty: "apiKey",
                    description: Some("An API key issued by the service."),
                    name: Some(policy.catalogue().map_or("X-API-Key", |c| c.api_key_header)),
                    key_in: Some("header"),
                    scheme: None,
                    bearer_format: None,
                    flows: None,
                    openid_connect_url: None,
                },
            );
        }
        if policy.auth().accepts_basic() {
            registry.create_security_scheme(
                BASIC_SCHEME,
                MetaSecurityScheme {
                    ty: "http",
                    description: None,
                    name: None,
                    key_in: None,
                    scheme: Some("basic"),
                    bearer_format: None,
                    flows: None,
                    openid_connect_url: None,
                },
            );
        }
    }

    fn security_schemes() -> Vec<&'static str> {
        let auth = R::POLICY.auth();
        let mut out = Vec::with_capacity(3);
        if auth.accepts_bearer() && documented::<R>().is_none() {
            out.push(BEARER_SCHEME);
        }
        if auth.accepts_api_key() {
            out.push(API_KEY_SCHEME);
        }
        if auth.accepts_basic() {
            out.push(BASIC_SCHEME);
        }
        out
    }

    fn from_request(
        request: &'a Request,
        _body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> impl Future<Output = Result<Self>> + Send {
        GuardFuture::new(request, R::POLICY)
    }
}

/// A scope name carried to poem-openapi's `#[oai(scope = ...)]`, which only
/// calls [`OAuthScopes::name`]; descriptions come from the catalogue.
#[derive(Debug, Clone, Copy)]
pub struct ScopeName(pub &'static str);

impl OAuthScopes for ScopeName {
    fn meta() -> Vec<MetaOAuthScope> {
        Vec::new()
    }
    fn name(&self) -> &'static str {
        self.0
    }
}

/// Converts an operation's declared return value into a response; implemented
/// by generated code for each operation's concrete return type.
pub trait OperationOutput<T> {
    /// The conversion (`IntoResult` then `IntoResponse`).
    fn convert(value: T) -> Result<Response>;
}

/// The return type `#[deny_unprotected]` gives each rewritten operation: the
/// user's response `T`, already converted, documented with 401/403 (and 429
/// when a rate is declared) beside `T`'s own responses.
pub struct Secured<T, R> {
    inner: Result<Response>,
    _marker: PhantomData<fn() -> (T, R)>,
}

impl<T, R: OperationOutput<T>> Secured<T, R> {
    /// Wraps the handler's return value.
    pub fn new(value: T) -> Self {
        Secured {
            inner: R::convert(value),
            _marker: PhantomData,
        }
    }
}

impl<T, R> Secured<T, R> {
    /// The refusal of a typed `check`, answered instead of the handler's
    /// value. Generated code only.
    #[doc(hidden)]
    pub fn refused(err: poem::Error) -> Self {
        Secured {
            inner: Err(err),
            _marker: PhantomData,
        }
    }
}

fn problem_response(status: u16, description: &'static str) -> MetaResponse {
    MetaResponse {
        description,
        status: Some(status),
        status_range: None,
        content: vec![MetaMediaType {
            content_type: "application/problem+json",
            schema: MetaSchemaRef::Reference(PROBLEM_SCHEMA.to_owned()),
        }],
        headers: vec![],
    }
}

impl<T: ApiResponse, R: Requirement + OperationOutput<T>> ApiResponse for Secured<T, R> {
    const BAD_REQUEST_HANDLER: bool = T::BAD_REQUEST_HANDLER;

    fn meta() -> MetaResponses {
        let mut meta = T::meta();
        let policy = R::POLICY;
        let has = |code: u16| meta.responses.iter().any(|r| r.status == Some(code));
        let mut extra = Vec::new();
        if !policy.is_public() {
            if !has(401) {
                extra.push(problem_response(
                    401,
                    "Missing, invalid or expired credentials.",
                ));
            }
            if !has(403) {
                extra.push(problem_response(403, R::FORBIDDEN_DOC));
            }
            if policy.check_name().is_some() && !has(404) {
                extra.push(problem_response(
                    404,
                    "Refused by the object-level check, which answers as if the object did not exist (`Denied::not_found`).",
                ));
            }
        }
        let guessable = !policy.is_public()
            && (policy.auth().accepts_basic() || policy.auth().accepts_api_key());
        if !has(429) {
            if policy.rate().is_some() {
                extra.push(problem_response(429, R::RATE_DOC));
            } else if guessable {
                extra.push(problem_response(
                    429,
                    "Too many failed Basic or API-key attempts from this client; see `Retry-After`.",
                ));
            }
        }
        meta.responses.extend(extra);
        meta
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
        registry.create_schema::<ProblemSchema, _>(PROBLEM_SCHEMA.to_owned(), |_| {
            let mut schema = MetaSchema::new("object");
            schema.title = Some(PROBLEM_SCHEMA.to_owned());
            schema.description = Some("RFC 9457 problem details.");
            schema.properties = vec![
                (
                    "type",
                    MetaSchemaRef::Inline(Box::new(MetaSchema::new("string"))),
                ),
                (
                    "title",
                    MetaSchemaRef::Inline(Box::new(MetaSchema::new("string"))),
                ),
                (
                    "status",
                    MetaSchemaRef::Inline(Box::new(MetaSchema::new("integer"))),
                ),
                (
                    "detail",
                    MetaSchemaRef::Inline(Box::new(MetaSchema::new("string"))),
                ),
            ];
            schema
        });
    }

    fn from_parse_request_error(err: poem::Error) -> Self {
        // A refusal by the guard stays a refusal; anything else goes to the
        // user's own bad-request handler.
        let inner = if err.is::<AuthRejection>() {
            Err(err)
        } else {
            R::convert(T::from_parse_request_error(err))
        };
        Secured {
            inner,
            _marker: PhantomData,
        }
    }
}

impl<T, R> poem::error::IntoResult<Response> for Secured<T, R> {
    fn into_result(self) -> Result<Response> {
        self.inner
    }
}

struct ProblemSchema;

/// Builds the `OpenApiService` of an API whose every operation is declared:
/// the API must be `Protected` (`#[deny_unprotected]` above `#[OpenApi]`).
///
/// ```compile_fail
/// struct Open;
/// #[poem_openapi::OpenApi]
/// impl Open {
///     #[oai(path = "/x", method = "get")]
///     async fn x(&self) {}
/// }
/// // error: `Open` is not protected
/// let _ = secure_runtime::openapi::service(Open, "t", "1");
/// ```
#[allow(clippy::disallowed_methods)] // the checked wrapper itself
pub fn service<T: OpenApi + Protected>(
    api: T,
    title: impl Into<String>,
    version: impl Into<String>,
) -> OpenApiService<T, ()> {
    OpenApiService::new(api, title, version)
}
