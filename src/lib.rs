//! # poem-secure
//!
//! Declarative, compiler-checked endpoint security for [poem] and
//! [poem-openapi](poem_openapi):
//!
//! ```
//! use poem::{handler, EndpointExt};
//! use poem_secure::{deny_unprotected, public, route::{get, Route}, secure, JwtConfig, Principal, Security};
//!
//! #[deny_unprotected]
//! mod api {
//!     use super::*;
//!
//!     #[secure(scopes = "items", roles = "admin", rate = "5/min")]
//!     #[handler]
//!     pub async fn admin_items(who: Principal) -> String {
//!         who.subject().to_owned()
//!     }
//!
//!     #[public]
//!     #[handler]
//!     pub async fn health() -> &'static str {
//!         "ok"
//!     }
//! }
//!
//! fn main() {
//!     let security = Security::builder()
//!         .jwt(JwtConfig::hs256([7u8; 32]).unwrap().issuer("me").audience("api"))
//!         .build()
//!         .unwrap();
//!     let app = Route::new()
//!         .at("/items", get(api::admin_items))
//!         .at("/health", get(api::health))
//!         .with(security);
//!     # let _ = app;
//! }
//! ```
//!
//! See the README for the attribute grammar, the guarantees and the test helpers.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub use secure_macros::{crate_catalogue, deny_unprotected, public, secure};
pub use secure_runtime::*;

/// Items used by generated code. Not public API: no stability guarantee.
#[doc(hidden)]
pub mod __private {
    pub use poem::{
        self, error::IntoResult, IntoResponse, Request, Response, Result as PoemResult,
    };
    pub use secure_macros::__checked as checked;
    pub use secure_runtime::__suggest::{undeclared, CrateCatalogue, NameKind};
    pub use secure_runtime::{
        check_argument, check_due, check_future, guard_check,
        matrix::Declared,
        openapi::{OaiGuard, OaiScopes, OperationOutput, ScopeName, Secured},
        typed_check, AuthKinds, CheckFn, CheckFuture, Guard, GuardCheck, Policy, Principal, Rate,
        RateKey, RateKeyFn, Requirement, Roles, Rule,
    };

    /// The fallback found when a crate declares no `crate_catalogue!`.
    pub mod no_crate_catalogue {
        /// No crate catalogue.
        pub const __POEM_SECURE_CRATE_CATALOGUE: ::core::option::Option<super::CrateCatalogue> =
            ::core::option::Option::None;
    }
}
