//! The token endpoints as a poem-openapi API: `POST /auth/token`,
//! `/auth/refresh` and `/auth/logout` over a [`TokenService`].

use std::marker::PhantomData;

use poem::Request;
use poem_openapi::{
    payload::{Form, Json},
    ApiResponse, OpenApi,
};

use super::{
    token_wire::{oauth_error, Problem, RefreshForm, TokenForm, TokenResponse},
    tokens::TokenService,
};
use crate::{
    model::{
        catalogue::Catalogue,
        policy::{Policy, Requirement},
        principal::Principal,
    },
    web::{
        matrix::Declared,
        openapi::{OaiGuard, OaiScopes, OperationOutput, Secured},
        route::Protected,
    },
};

/// Names the catalogue the token API documents its bearer scheme with.
///
/// ```
/// use secure_runtime::{tokens::AuthCatalogue, Catalogue};
/// pub const ACCESS: Catalogue = Catalogue::new().token_url("/auth/token");
/// pub struct Access;
/// impl AuthCatalogue for Access {
///     const CATALOGUE: Option<&'static Catalogue> = Some(&ACCESS);
/// }
/// ```
pub trait AuthCatalogue: Send + Sync + 'static {
    /// The catalogue, if any.
    const CATALOGUE: Option<&'static Catalogue>;
}

/// No catalogue: logout is documented with the HTTP bearer scheme.
pub struct NoCatalogue;

impl AuthCatalogue for NoCatalogue {
    const CATALOGUE: Option<&'static Catalogue> = None;
}

/// The requirement of `POST /auth/logout`: any bearer.
pub struct LogoutRequirement<C>(PhantomData<fn() -> C>);

impl<C: AuthCatalogue> Requirement for LogoutRequirement<C> {
    const POLICY: &'static Policy = &match C::CATALOGUE {
        Some(c) => Policy::secured("poem_secure::auth::logout").with_catalogue(c),
        None => Policy::secured("poem_secure::auth::logout"),
    };
    const FORBIDDEN_DOC: &'static str = "Forbidden.";
}

/// The outcome of logout.
#[derive(ApiResponse, Debug)]
pub enum LogoutResponse {
    /// Revoked.
    #[oai(status = 204)]
    Done,
    /// The session store cannot be reached.
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(Json<Problem>),
}

impl<C: AuthCatalogue> OperationOutput<LogoutResponse> for LogoutRequirement<C> {
    fn convert(value: LogoutResponse) -> poem::Result<poem::Response> {
        Ok(poem::IntoResponse::into_response(value))
    }
}

/// The token endpoints as a poem-openapi API (see [`TokenService`]). They are
/// deliberately public (logout requires a bearer) and rate limited by the
/// service's login limits, hence `Protected`.
pub struct AuthApi<C = NoCatalogue> {
    service: TokenService,
    _c: PhantomData<fn() -> C>,
}

impl<C: AuthCatalogue> Protected for AuthApi<C> {
    fn declarations() -> Vec<Declared> {
        vec![
            Declared::unguarded()
                .or_method("post")
                .prefixed("/auth/token")
                .with_note("public; the token service's login and attempt limits"),
            Declared::unguarded()
                .or_method("post")
                .prefixed("/auth/refresh")
                .with_note("public; the token service's refresh limit"),
            Declared::operation::<LogoutRequirement<C>>("post", "/auth/logout"),
        ]
    }
}

impl<C> AuthApi<C> {
    pub(super) fn new(service: TokenService) -> Self {
        AuthApi {
            service,
            _c: PhantomData,
        }
    }
}

#[OpenApi(prefix_path = "/auth", tag = "AuthTag::Auth")]
impl<C: AuthCatalogue> AuthApi<C> {
    /// OAuth2 token endpoint (password and refresh_token grants).
    #[oai(path = "/token", method = "post")]
    async fn token(&self, req: &Request, form: Form<TokenForm>) -> TokenResponse {
        let f = form.0;
        match f.grant_type.as_str() {
            "password" => match (f.username.as_deref(), f.password.as_deref()) {
                (Some(u), Some(p)) => {
                    self.service
                        .password_grant(req, u, p, f.scope.as_deref())
                        .await
                }
                _ => oauth_error(
                    "invalid_request",
                    "The password grant needs `username` and `password`.",
                ),
            },
            "refresh_token" => match f.refresh_token.as_deref() {
                Some(t) => match self.service.limit_refresh(req, t).await {
                    Ok(()) => self.service.refresh(t, f.scope.as_deref()).await,
                    Err(limited) => limited,
                },
                None => oauth_error(
                    "invalid_request",
                    "The refresh_token grant needs `refresh_token`.",
                ),
            },
            _ => oauth_error(
                "unsupported_grant_type",
                "Supported grants: password, refresh_token.",
            ),
        }
    }

    /// Rotates a refresh token: a new pair, the old refresh token dead.
    #[oai(path = "/refresh", method = "post")]
    async fn refresh(&self, req: &Request, form: Form<RefreshForm>) -> TokenResponse {
        if let Err(limited) = self.service.limit_refresh(req, &form.0.refresh_token).await {
            return limited;
        }
        self.service
            .refresh(&form.0.refresh_token, form.0.scope.as_deref())
            .await
    }

    /// Revokes the caller's refresh family and this access token.
    ///
    /// **Security:** requires a bearer token (JWT). Any authenticated caller.
    #[oai(path = "/logout", method = "post")]
    async fn logout(
        &self,
        _scopes: OaiScopes<LogoutRequirement<C>>,
        _guard: OaiGuard<LogoutRequirement<C>>,
        who: Principal,
    ) -> Secured<LogoutResponse, LogoutRequirement<C>> {
        Secured::new(match self.service.logout(&who).await {
            Ok(()) => LogoutResponse::Done,
            Err(_) => LogoutResponse::Unavailable(Json(Problem::new(
                503,
                "Service Unavailable",
                "The service is temporarily unavailable.",
            ))),
        })
    }
}

#[derive(poem_openapi::Tags)]
enum AuthTag {
    /// Login, refresh and logout.
    Auth,
}
