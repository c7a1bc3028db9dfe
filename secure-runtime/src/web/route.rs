//! Crate-wide enforcement on stable Rust: the [`Protected`] marker and routing
//! functions that accept only protected endpoints.

use poem::{Endpoint, IntoEndpoint, Middleware, Request, Response, Result, RouteMethod};
use poem_openapi::OpenApiService;

/// Implemented only by what `#[secure]`, `#[public]` and `#[deny_unprotected]`
/// generate (and by the wrappers here): poem-secure's routing functions and
/// OpenAPI builder accept nothing else, so a handler that slipped past every
/// declaration does not compile where it is routed.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not protected: it has no security declaration",
    label = "this endpoint has no `#[secure]` or `#[public]` declaration",
    note = "add `#[secure(...)]` or `#[public]` above `#[handler]`, put `#[deny_unprotected]` above `#[OpenApi]`, or wrap a deliberately open endpoint in `poem_secure::route::public(...)`"
)]
pub trait Protected {}

impl<T: Protected> Protected for &T {}
impl<T: Protected, W> Protected for OpenApiService<T, W> {}

macro_rules! tuple_protected {
    ($($t:ident),+) => { impl<$($t: Protected),+> Protected for ($($t,)+) {} };
}
tuple_protected!(A);
tuple_protected!(A, B);
tuple_protected!(A, B, C);
tuple_protected!(A, B, C, D);
tuple_protected!(A, B, C, D, E);
tuple_protected!(A, B, C, D, E, F);
tuple_protected!(A, B, C, D, E, F, G);
tuple_protected!(A, B, C, D, E, F, G, H);

/// A deliberately unauthenticated endpoint (static files, Swagger UI):
/// explicit, greppable, and the only way to route an undeclared endpoint.
pub struct Public<E>(E);

/// Marks `ep` as deliberately public.
///
/// ```
/// use secure_runtime::route::{public, Route};
/// let app = Route::new().nest("/static", public(poem::endpoint::make_sync(|_| "file")));
/// # let _ = app;
/// ```
pub fn public<E: IntoEndpoint>(ep: E) -> Public<E::Endpoint> {
    Public(ep.into_endpoint())
}

impl<E> Protected for Public<E> {}

impl<E: Endpoint> Endpoint for Public<E> {
    type Output = E::Output;
    async fn call(&self, req: Request) -> Result<Self::Output> {
        self.0.call(req).await
    }
}

/// A [`poem::RouteMethod`] whose every endpoint is [`Protected`].
pub struct Methods(RouteMethod);

impl Protected for Methods {}

impl Endpoint for Methods {
    type Output = Response;
    async fn call(&self, req: Request) -> Result<Response> {
        self.0.call(req).await
    }
}

/// A protected endpoint wrapped by a middleware (`get(h).with(AddData::new(..))`):
/// as protected as what it wraps, since every guard runs inside the handler,
/// below any middleware.
pub struct Wrapped<E>(E);

impl<E> Protected for Wrapped<E> {}

impl<E: Endpoint> Endpoint for Wrapped<E> {
    type Output = E::Output;

    async fn call(&self, req: Request) -> Result<Self::Output> {
        self.0.call(req).await
    }
}

macro_rules! protected_with {
    ($($ty:ty),+) => {$(
        impl $ty {
            /// Wraps this protected endpoint in a middleware; the result stays
            /// protected (poem's `EndpointExt::with` would return a type the
            /// checked router does not know).
            ///
            /// ```
            /// use poem::{handler, middleware::AddData};
            /// use secure_runtime::route::{get, public, Route};
            ///
            /// #[handler]
            /// async fn items() -> &'static str { "items" }
            ///
            /// // (`#[secure]` handlers, from the `poem-secure` facade, alike.)
            /// let app = Route::new().at("/items", get(public(items)).with(AddData::new(7u32)));
            /// # let _ = app;
            /// ```
            #[must_use]
            pub fn with<M: Middleware<Self>>(self, middleware: M) -> Wrapped<M::Output> {
                Wrapped(middleware.transform(self))
            }
        }
    )+};
}

protected_with!(Methods, Route);

impl<E: Endpoint> Wrapped<E> {
    /// Wraps it once more; still protected.
    #[must_use]
    pub fn with<M: Middleware<Self>>(self, middleware: M) -> Wrapped<M::Output> {
        Wrapped(middleware.transform(self))
    }
}

macro_rules! methods {
    ($($(#[$doc:meta])* $name:ident),+) => {
        impl Methods {
            $(
                $(#[$doc])*
                #[must_use]
                #[allow(clippy::disallowed_methods)] // the checked wrapper itself
                pub fn $name<E>(self, ep: E) -> Methods
                where
                    E: IntoEndpoint + Protected,
                    E::Endpoint: 'static,
                {
                    Methods(self.0.$name(ep))
                }
            )+
        }
        $(
            $(#[$doc])*
            #[allow(clippy::disallowed_methods)] // the checked wrapper itself
            pub fn $name<E>(ep: E) -> Methods
            where
                E: IntoEndpoint + Protected,
                E::Endpoint: 'static,
            {
                Methods(RouteMethod::new().$name(ep))
            }
        )+
    };
}

methods!(
    /// Routes GET to a protected endpoint.
    get,
    /// Routes POST to a protected endpoint.
    post,
    /// Routes PUT to a protected endpoint.
    put,
    /// Routes DELETE to a protected endpoint.
    delete,
    /// Routes PATCH to a protected endpoint.
    patch,
    /// Routes HEAD to a protected endpoint.
    head,
    /// Routes OPTIONS to a protected endpoint.
    options
);

/// A [`poem::Route`] that accepts only [`Protected`] endpoints.
///
/// ```compile_fail
/// use secure_runtime::route::{get, Route};
/// #[poem::handler]
/// async fn oops() -> &'static str { "leak" }
/// // error: `oops` is not protected: it has no security declaration
/// let app = Route::new().at("/oops", get(oops));
/// ```
#[derive(Default)]
pub struct Route(poem::Route);

impl Protected for Route {}

impl Route {
    /// An empty route table.
    pub fn new() -> Self {
        Route(poem::Route::new())
    }
    /// Adds a path served by a protected endpoint.
    #[must_use]
    #[allow(clippy::disallowed_methods)] // the checked wrapper itself
    pub fn at<E>(self, path: impl AsRef<str>, ep: E) -> Self
    where
        E: IntoEndpoint + Protected,
        E::Endpoint: 'static,
    {
        Route(self.0.at(path, ep))
    }
    /// Nests a protected endpoint (e.g. an `OpenApiService`) under a prefix.
    #[must_use]
    #[allow(clippy::disallowed_methods)] // the checked wrapper itself
    pub fn nest<E>(self, path: impl AsRef<str>, ep: E) -> Self
    where
        E: IntoEndpoint + Protected,
        E::Endpoint: 'static,
    {
        Route(self.0.nest(path, ep))
    }
    /// Like [`Route::nest`], without stripping the prefix.
    #[must_use]
    #[allow(clippy::disallowed_methods)] // the checked wrapper itself
    pub fn nest_no_strip<E>(self, path: impl AsRef<str>, ep: E) -> Self
    where
        E: IntoEndpoint + Protected,
        E::Endpoint: 'static,
    {
        Route(self.0.nest_no_strip(path, ep))
    }
    /// The underlying poem route.
    pub fn into_inner(self) -> poem::Route {
        self.0
    }
}

impl Endpoint for Route {
    type Output = Response;
    async fn call(&self, req: Request) -> Result<Response> {
        self.0.call(req).await
    }
}
