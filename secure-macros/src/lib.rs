//! Procedural macros of [poem-secure](https://docs.rs/poem-secure). Depend on
//! the facade crate `poem-secure`, which re-exports them; the generated code
//! refers to it as `::poem_secure` (override with `crate = "path"`).
//!
//! Each macro hands its tokens to a module that runs one path in one
//! direction: `args` (tokens) → `model` (typed, validated data) → `check`
//! (rules across arguments) → `expand` (a static policy plus one guard).
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

use proc_macro::TokenStream;

mod args;
mod check;
mod crate_catalogue;
mod deny;
mod docs;
mod errors;
mod expand;
mod keys;
mod marker;
mod model;
mod rate;
mod secure;
mod table;
mod typed_check;

/// Protects a poem handler: the caller is verified, then its scopes, roles and
/// permissions are checked, the rate limit applied and the custom `check` run,
/// all **before any other extractor** (no body is read for a refused caller).
///
/// Place it directly **above** `#[handler]`. On poem-openapi operations it is
/// read by [`macro@deny_unprotected`] above `#[OpenApi]`.
///
/// # Arguments
/// | key | value | meaning |
/// |---|---|---|
/// | (none) | `#[secure]` | any authenticated caller |
/// | `scopes` | `"a b"` or `["a", "b"]` | all required (OAuth2), RFC 6749 scope tokens |
/// | `roles` | `"admin"`, `["admin", "owner"]`, `all("a", "b")` | any one suffices; `all(...)` for all |
/// | `permissions` | like `scopes` | all required |
/// | `rate` | `"5/min"`, `"100/s"`, `"1000/hour"`, `"10/min, burst = 20"` | units s/sec/second, m/min/minute, h/hour, d/day |
/// | `rate_key` | `ip`, `user`, `api_key`, `ip_user`, or a path to `fn(&Request, Option<&Principal>) -> String` | default `user` |
/// | `rate_group` | `"login"` | routes naming one group share one bucket |
/// | `auth` | `bearer` (default), `api_key`, `basic`, `any(bearer, api_key)` | accepted credentials |
/// | `check` | `owns_item(id, store)`: `async fn(&Principal, &A, &B) -> Result<(), Denied>` on the handler's own parameters; or a path to `async fn(&Principal, &Request) -> Result<(), Denied>` | object-level rule, after the built-in ones; may stand in a group |
/// | `catalogue` | path to a `const` [`Catalogue`](../poem_secure/struct.Catalogue.html) | names must be declared there (default: the crate's [`crate_catalogue!`], if any) |
/// | `crate` | `"::poem_secure"` | path of the facade crate if renamed |
/// | `any(...)` | `any(roles = "admin", permissions = "notes:delete-any")` | one member suffices |
/// | `all(...)` | `all(roles = "editor", scopes = "notes:write")` | every member is required |
///
/// # Composition
/// Top-level keys are ANDed. `any(...)` and `all(...)` group `scopes`,
/// `roles`, `permissions`, the `check` and further groups, and nest:
/// `#[secure(scopes = "items:write", any(roles = "admin", permissions = "notes:delete-any"))]`
/// admits a caller with the scope and either the role or the permission. The
/// groups become the policy's [`Rule`](../poem_secure/enum.Rule.html), and the
/// documented 403 states the whole requirement. A declaration has one
/// `check`; inside `any(...)` it runs only when the other members cannot
/// admit the caller (`any(permissions = "notes:delete-any", check =
/// owns_note(id, store))`: a moderator never waits for the owner lookup).
/// What applies to the handler as a whole (`rate`, `rate_key`, `rate_group`,
/// `auth`, `catalogue`, `crate`) cannot stand in a group:
/// ```compile_fail
/// // error: `rate` applies to the whole handler and cannot stand inside `any(...)`
/// #[poem_secure::secure(any(roles = "admin", rate = "5/min"))]
/// #[poem::handler]
/// async fn h() {}
/// ```
///
/// # Example
/// ```
/// use poem::{handler, test::TestClient, EndpointExt};
/// use poem_secure::{route::{get, Route}, secure, JwtConfig, Principal, Security};
///
/// #[secure(scopes = "items", roles = "admin", rate = "5/min")]
/// #[handler]
/// async fn admin_items(who: Principal) -> String {
///     who.subject().to_owned()
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let security = Security::builder()
///     .jwt(JwtConfig::hs256([7u8; 32]).unwrap().issuer("me").audience("api"))
///     .build()
///     .unwrap();
/// let app = Route::new().at("/items", get(admin_items)).with(security);
/// let resp = TestClient::new(app).get("/items").send().await;
/// resp.assert_status(poem::http::StatusCode::UNAUTHORIZED);
/// # });
/// ```
///
/// # Checks on the handler's parameters
/// `check = owns_item(id, store)` passes the caller and the handler's own
/// parameters named there (by the names the handler binds: `Path(id)`,
/// `Data(store)`, or `self` in a poem-openapi impl) to
/// `async fn owns_item(who: &Principal, id: &u64, store: &Store) ->
/// Result<(), Denied>`; `Path<T>`, `Data<&T>` and the like reach it as `&T`.
/// On a plain handler only those parameters are extracted before the check,
/// and the others (a body among them) after it passes; on a poem-openapi
/// operation it runs before the operation's code. A body, a name that is not
/// a parameter, or a signature that does not fit is a compile error at the
/// argument:
/// ```
/// use poem::{handler, web::{Data, Path}};
/// use poem_secure::{secure, Denied, Principal};
/// use std::collections::HashMap;
///
/// async fn owns_item(who: &Principal, id: &u64, owners: &HashMap<u64, String>) -> Result<(), Denied> {
///     match owners.get(id) {
///         Some(owner) if owner == who.subject() => Ok(()),
///         _ => Err(Denied::not_found()), // someone else's item looks missing
///     }
/// }
///
/// #[secure(scopes = "items:write", any(roles = "admin", check = owns_item(id, owners)))]
/// #[handler]
/// async fn delete_item(Path(id): Path<u64>, Data(owners): Data<&HashMap<u64, String>>) -> String {
///     format!("deleted {id}")
/// }
/// ```
///
/// # Errors (at compile time, each spanned at the offending token, all at once)
/// Unknown keys (with a "did you mean" for near misses) or duplicate keys,
/// malformed rates, empty or invalid names, a name missing from the
/// catalogue, an empty group or a misplaced key in one, `#[secure]` below
/// `#[handler]` or without one, `#[secure]` together with `#[public]`:
/// ```compile_fail
/// #[poem_secure::secure(scopes = "", rate = "5/mni", scope = "x")]
/// #[poem::handler]
/// async fn bad() {}
/// ```
///
/// # What it expands to
/// A zero-sized `__secure_<name>` type whose `Requirement::POLICY` is a
/// `const` [`Policy`](../poem_secure/struct.Policy.html); the handler's
/// endpoint, as poem's `#[handler]` would write it, with one call that runs
/// the policy before the first extractor (a generic handler, or
/// `#[handler(...)]` with arguments, keeps poem's expansion with a
/// `Guard<__secure_<name>>` as its first parameter); and
/// `impl Protected for <name>`, which lists the policy for the security
/// matrix (`Route::security_matrix`). The logic lives in `Security::authorize`.
#[proc_macro_attribute]
pub fn secure(args: TokenStream, item: TokenStream) -> TokenStream {
    secure::expand(model::Kind::Secure, args.into(), item.into()).into()
}

/// Declares a poem handler deliberately public, optionally rate limited
/// (`rate`, `rate_key`: `ip` by default, or a custom fn; `rate_group`). It
/// takes no other key.
///
/// No credential is required. A presented credential is still verified: an
/// invalid one is refused with 401 rather than ignored, and a valid one is
/// available as `Option<Principal>`.
///
/// ```
/// use poem::handler;
/// use poem_secure::{public, Principal};
///
/// #[public(rate = "5/min")]
/// #[handler]
/// async fn hello(who: Option<Principal>) -> String {
///     who.map_or("hello, stranger".into(), |p| format!("hello, {}", p.subject()))
/// }
/// ```
///
/// ```compile_fail
/// // error: `#[public]` takes only `rate` and `rate_key`
/// #[poem_secure::public(scopes = "x")]
/// #[poem::handler]
/// async fn h() {}
/// ```
///
/// It expands like [`macro@secure`], with a policy whose `public` is `true`.
#[proc_macro_attribute]
pub fn public(args: TokenStream, item: TokenStream) -> TokenStream {
    secure::expand(model::Kind::Public, args.into(), item.into()).into()
}

/// Makes a missing security declaration a compile error.
///
/// On an inline `mod { ... }` (nested inline modules included), every
/// `#[handler]` function without `#[secure]`/`#[public]` is an error spanned
/// at its name. Above `#[OpenApi]` on an impl (or on such an impl inside the
/// module) every operation needs one too, and this attribute performs the
/// operations' rewrite: a security-scheme parameter with the operation's
/// scopes, and 401/403/429 in the documented responses. The type becomes
/// `Protected`.
///
/// Arguments: `catalogue = PATH` (applied to every `#[secure]` inside that
/// names none) and `crate = PATH`.
///
/// A file module (`mod handlers;`) inside the checked module is an error: a
/// macro cannot read its file. Write the module inline, or declare it outside
/// the checked module and put `#[deny_unprotected]` on an inline module in
/// its file.
///
/// Each secured operation's doc comment gains a paragraph stating its
/// requirement (credentials, scopes, roles, permissions, rule, check, rate),
/// which poem-openapi puts in the description; the type's `impl Protected`
/// lists every operation's method, path and policy for the security matrix
/// and the `x-poem-secure` extension (`openapi::spec_endpoint`).
///
/// On each operation it rewrites, the `#[secure]`/`#[public]` it read is
/// replaced by a hidden marker attribute; written by hand, that marker is a
/// compile error.
///
/// ```compile_fail
/// #[poem_secure::deny_unprotected]
/// mod api {
///     #[poem::handler]
///     async fn oops() -> &'static str { "leak" } // error: `oops` has no security declaration
/// }
/// ```
///
/// ```
/// use poem_openapi::{payload::PlainText, OpenApi};
/// use poem_secure::{deny_unprotected, public, secure, Principal};
///
/// struct Api;
/// #[deny_unprotected]
/// #[OpenApi]
/// impl Api {
///     #[secure(scopes = "notes:read")]
///     #[oai(path = "/notes", method = "get")]
///     async fn list(&self, who: Principal) -> PlainText<String> {
///         PlainText(who.subject().to_owned())
///     }
///     #[public]
///     #[oai(path = "/health", method = "get")]
///     async fn health(&self) -> PlainText<&'static str> {
///         PlainText("ok")
///     }
/// }
/// let spec = poem_secure::openapi::service(Api, "api", "1").spec();
/// assert!(spec.contains("\"bearerAuth\""));
/// ```
///
/// Stable Rust cannot take it as a crate-level `#![deny_unprotected]`; the
/// crate-wide guarantee comes from `Protected` and `poem_secure::route`.
#[proc_macro_attribute]
pub fn deny_unprotected(args: TokenStream, item: TokenStream) -> TokenStream {
    deny::expand(args.into(), item.into()).into()
}

/// Declares the catalogue of the whole crate: every `#[secure]` (and every
/// operation under `#[deny_unprotected]`) that names no `catalogue = ..` is
/// checked against it, in inline and **file modules** alike. Call it once,
/// at the crate root (`lib.rs` or `main.rs`).
///
/// Arguments: the path of a `const` [`Catalogue`](../poem_secure/struct.Catalogue.html),
/// then optionally `crate = path::to::poem_secure` for a renamed dependency.
///
/// A scope, role or permission the catalogue does not declare is a compile
/// error spanned at its string literal, suggesting the nearest declared name
/// (`did you mean`). An explicit `catalogue = ..` (on the attribute or on
/// `#[deny_unprotected]`) takes precedence. The policies take it as their
/// catalogue too, so the OpenAPI document gets its OAuth2 scheme (token URL,
/// flows, scope descriptions) as with `catalogue = ..`. Each crate declares its own:
/// examples, integration tests and binaries of a package are crates of their
/// own, and without a declaration nothing is checked, as before.
///
/// ```
/// use poem_secure::{crate_catalogue, secure, Catalogue};
///
/// pub const ACCESS: Catalogue = Catalogue::new()
///     .scopes(&[("notes:read", "Read your notes")])
///     .roles(&["admin"]);
/// crate_catalogue!(ACCESS);
///
/// mod handlers {
///     // In `handlers.rs` it is the same: no `catalogue = ..` needed.
///     #[poem_secure::secure(scopes = "notes:read", roles = "admin")]
///     #[poem::handler]
///     pub async fn list() -> &'static str { "notes" }
/// }
/// # fn main() {}
/// ```
///
/// A misspelt name, anywhere in the crate:
/// ```compile_fail,E0080
/// use poem_secure::{crate_catalogue, Catalogue};
/// pub const ACCESS: Catalogue = Catalogue::new().scopes(&[("notes:read", "Read your notes")]);
/// crate_catalogue!(ACCESS);
/// mod handlers {
///     // error: scope `notes:raed` is not declared in the catalogue `ACCESS`:
///     //        did you mean `notes:read`? Otherwise declare it there
///     #[poem_secure::secure(scopes = "notes:raed")]
///     #[poem::handler]
///     pub async fn list() -> &'static str { "notes" }
/// }
/// # fn main() {}
/// ```
///
/// What it expands to: a hidden `const __POEM_SECURE_CRATE_CATALOGUE` at the
/// crate root, and a const assertion that it stands there (called in a
/// module, it is an error saying to move it to the crate root). The checks
/// of each `#[secure]` find it by ordinary name resolution, with an empty
/// fallback when the crate declares none.
#[proc_macro]
pub fn crate_catalogue(input: TokenStream) -> TokenStream {
    crate_catalogue::expand(input.into()).into()
}

/// Not public API: the marker `#[deny_unprotected]` leaves on each
/// poem-openapi operation it has rewritten, reached as
/// `::poem_secure::__private::checked`. Written anywhere else it is a
/// compile error.
#[doc(hidden)]
#[proc_macro_attribute]
pub fn __checked(args: TokenStream, item: TokenStream) -> TokenStream {
    marker::expand(args.into(), item.into()).into()
}
