//! The server of the request-overhead benchmark (`scripts/bench-overhead.sh`):
//! one poem app, the same handler body behind four protections.
//!
//! - `/public`: `#[public]`
//! - `/secure`: `#[secure(scopes = "items")]` (HS256 JWT + scope check)
//! - `/secure_rate`: the same plus `rate = "1000000/s"` (the in-memory limiter)
//! - `/grants`: the same protection with poem-grants and a jsonwebtoken
//!   extractor doing the same validation (the nearest peer)
//!
//! Prints `TOKEN <jwt>` on its first line, then serves on `BENCH_ADDR`.

use std::collections::HashSet;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use poem::{get, handler, listener::TcpListener, EndpointExt, Route, Server};
use poem_secure::{public, secure, testing::token, JwtConfig, Security};

const SECRET: &[u8; 32] = b"bench-secret-bench-secret-bench!";

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

#[derive(serde::Deserialize)]
struct Claims {
    scope: String,
}

/// The peer's extractor: the same checks as poem-secure's verifier (HS256
/// pinned, iss, aud, exp, sub required, typ at+jwt), scopes from `scope`.
async fn extract(req: &poem::Request) -> poem::Result<HashSet<String>> {
    let unauthorized = || poem::Error::from_status(poem::http::StatusCode::UNAUTHORIZED);
    let header = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(unauthorized)?;
    let token = header.strip_prefix("Bearer ").ok_or_else(unauthorized)?;
    let mut v = Validation::new(Algorithm::HS256);
    v.set_issuer(&["bench"]);
    v.set_audience(&["bench-api"]);
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    v.leeway = 30;
    let data = jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(SECRET), &v)
        .map_err(|_| unauthorized())?;
    if !data
        .header
        .typ
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case("at+jwt"))
    {
        return Err(unauthorized());
    }
    Ok(data.claims.scope.split(' ').map(str::to_owned).collect())
}

#[tokio::main]
#[allow(clippy::disallowed_methods)] // the peer's route needs poem's own routing
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let security = Security::builder()
        .jwt(
            JwtConfig::hs256(SECRET)?
                .issuer("bench")
                .audience("bench-api")
                .access_ttl_secs(3600),
        )
        .build()?;
    println!(
        "TOKEN {}",
        token(&security, "bench")
            .scopes(["items"])
            .expires_in(3600)
            .sign()
    );
    let app = Route::new()
        .at("/public", get(public_ep))
        .at("/secure", get(secure_ep))
        .at("/secure_rate", get(secure_rate_ep))
        .at(
            "/grants",
            get(grants_ep).with(poem_grants::GrantsMiddleware::with_extractor(extract)),
        )
        .with(security);
    let addr = std::env::var("BENCH_ADDR").unwrap_or_else(|_| "127.0.0.1:3999".into());
    Server::new(TcpListener::bind(addr)).run(app).await?;
    Ok(())
}
