//! The app of the request-overhead benchmark, shared by its server
//! (`bench_server`) and the allocation counter (`alloc_count`): the same
//! handler body behind six protections.
//!
//! - `/none`: no security at all (plain `#[handler]`, no middleware)
//! - `/public`: `#[public]` (behind the `Security` middleware)
//! - `/secure`: `#[secure(scopes = "items")]` (HS256 JWT + scope check)
//! - `/secure_rate`: the same plus `rate = "1000000/s"` (the in-memory limiter)
//! - `/floor`: a hand-written extractor doing one `jsonwebtoken::decode`
//!   with a key and validation built once, and the same checks: the least a
//!   correct verifier can do
//! - `/grants`: poem-grants with an extractor doing the same `decode` (key
//!   and validation built once, as jsonwebtoken's documentation recommends)
//!   and returning the scopes as poem-grants wants them
#![allow(clippy::disallowed_methods)] // `none`, `floor` and `grants` are routed by poem itself

use std::{collections::HashSet, sync::LazyLock};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use poem::{
    get, handler, http::StatusCode, Endpoint, EndpointExt, FromRequest, Request, RequestBody, Route,
};
use poem_secure::{public, secure, testing::token, JwtConfig, Security};

const SECRET: &[u8; 32] = b"bench-secret-bench-secret-bench!";
const ISSUER: &str = "bench";
const AUDIENCE: &str = "bench-api";

/// The `Security` of the protected routes: HS256 with [`SECRET`].
pub fn security() -> Security {
    Security::builder()
        .jwt(
            JwtConfig::hs256(SECRET)
                .expect("a 32-byte secret")
                .issuer(ISSUER)
                .audience(AUDIENCE)
                .access_ttl_secs(3600),
        )
        .build()
        .expect("a valid configuration")
}

/// A token every protected route accepts (scope `items`, one hour).
pub fn bearer_token(security: &Security) -> String {
    token(security, "bench")
        .scopes(["items"])
        .expires_in(3600)
        .sign()
}

#[handler]
async fn none_ep() -> &'static str {
    "ok"
}

#[public]
#[handler]
async fn public_ep() -> &'static str {
    "ok"
}

#[secure(scopes = "items")]
#[handler]
async fn secure_ep() -> &'static str {
    "ok"
}

#[secure(scopes = "items", rate = "1000000/s")]
#[handler]
async fn secure_rate_ep() -> &'static str {
    "ok"
}

#[poem_grants::protect("items")]
#[handler]
async fn grants_ep() -> &'static str {
    "ok"
}

#[handler]
async fn floor_ep(_: Floor) -> &'static str {
    "ok"
}

/// The key and validation of `floor` and `grants`, built once: the same
/// checks as poem-secure's verifier (HS256 pinned, iss, aud, exp and sub
/// required, leeway 30 s); `typ` = `at+jwt` and the scope are checked after.
static VERIFY: LazyLock<(DecodingKey, Validation)> = LazyLock::new(|| {
    let mut v = Validation::new(Algorithm::HS256);
    v.set_issuer(&[ISSUER]);
    v.set_audience(&[AUDIENCE]);
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    v.leeway = 30;
    (DecodingKey::from_secret(SECRET), v)
});

#[derive(serde::Deserialize)]
struct ScopeClaims {
    scope: String,
}

fn unauthorized() -> poem::Error {
    poem::Error::from_status(StatusCode::UNAUTHORIZED)
}

/// Verifies the bearer token of `req` (signature, iss, aud, exp, sub, typ)
/// and returns its claims.
fn verify(req: &Request) -> poem::Result<ScopeClaims> {
    let token = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .ok_or_else(unauthorized)?;
    let (key, validation) = &*VERIFY;
    let data =
        jsonwebtoken::decode::<ScopeClaims>(token, key, validation).map_err(|_| unauthorized())?;
    if !data
        .header
        .typ
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case("at+jwt"))
    {
        return Err(unauthorized());
    }
    Ok(data.claims)
}

/// The floor: a hand-written extractor, one `decode`, one scope check.
struct Floor;

impl<'a> FromRequest<'a> for Floor {
    async fn from_request(req: &'a Request, _: &mut RequestBody) -> poem::Result<Self> {
        if verify(req)?.scope.split(' ').any(|s| s == "items") {
            Ok(Floor)
        } else {
            Err(poem::Error::from_status(StatusCode::FORBIDDEN))
        }
    }
}

/// poem-grants' extractor: the same `decode`, the scopes as a set.
async fn grants_extract(req: &Request) -> poem::Result<HashSet<String>> {
    Ok(verify(req)?.scope.split(' ').map(str::to_owned).collect())
}

/// The six routes; the `Security` middleware wraps only the three routes
/// that use it, so `none`, `floor` and `grants` pay nothing of it.
pub fn app(security: &Security) -> impl Endpoint {
    Route::new()
        .at("/none", get(none_ep))
        .at("/public", get(public_ep).with(security.clone()))
        .at("/secure", get(secure_ep).with(security.clone()))
        .at("/secure_rate", get(secure_rate_ep).with(security.clone()))
        .at("/floor", get(floor_ep))
        .at(
            "/grants",
            get(grants_ep).with(poem_grants::GrantsMiddleware::with_extractor(
                grants_extract,
            )),
        )
}
