//! Crate-wide enforcement on stable Rust: the [`Protected`] marker and routing
//! functions that accept only protected endpoints.

use poem::{Endpoint, IntoEndpoint, Middleware, Request, Response, Result, RouteMethod};
use poem_openapi::OpenApiService;

use crate::web::matrix::{Declared, SecurityMatrix};

/// Implemented only by what `#[secure]`, `#[public]` and `#[deny_unprotected]`
/// generate (and by the wrappers here): poem-secure's routing functions and
/// OpenAPI builder accept nothing else, so a handler that slipped past every
/// declaration does not compile where it is routed.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not protected: it has no security declaration",
    label = "this endpoint has no `#[secure]` or `#[public]` declaration",
    note = "add `#[secure(...)]` or `#[public]` above `#[handler]`, put `#[deny_unprotected]` above `#[OpenApi]`, or wrap a deliberately open endpoint in `poem_secure::route::public(...)`"
)]
pub trait Protected {
    /// What this type serves, for the [security matrix](crate::matrix): the
    /// generated impls list each handler's or operation's policy. The
    /// default lists nothing.
    ///
    /// ```
    /// use secure_runtime::{route::{public, Public}, Protected};
    /// assert_eq!(Public::<()>::declarations().len(), 1); // one unguarded entry
    /// ```
    fn declarations() -> Vec<Declared>
    where
        Self: Sized,
    {
        Vec::new()
    }
    /// What this value serves: [`declarations`](Protected::declarations),
    /// or for a router what was recorded as routes were added.
    fn declared(&self) -> Vec<Declared>
    where
        Self: Sized,
    {
        Self::declarations()
    }
}

impl<T: Protected> Protected for &T {
    fn declarations() -> Vec<Declared> {
        T::declarations()
    }
    fn declared(&self) -> Vec<Declared> {
        (*self).declared()
    }
}
impl<T: Protected, W> Protected for OpenApiService<T, W> {
    fn declarations() -> Vec<Declared> {
        T::declarations()
    }
}

macro_rules! tuple_protected {
    ($($t:ident),+) => {
        impl<$($t: Protected),+> Protected for ($($t,)+) {
            fn declarations() -> Vec<Declared> {
                let mut v = Vec::new();
                $(v.extend($t::declarations());)+
                v
            }
            #[allow(non_snake_case)]
            fn declared(&self) -> Vec<Declared> {
                let ($($t,)+) = self;
                let mut v = Vec::new();
                $(v.extend($t.declared());)+
                v
            }
        }
    };
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

impl<E> Protected for Public<E> {
    fn declarations() -> Vec<Declared> {
        vec![Declared::unguarded()]
    }
}

impl<E: Endpoint> Endpoint for Public<E> {
    type Output = E::Output;
    async fn call(&self, req: Request) -> Result<Self::Output> {
        self.0.call(req).await
    }
}

/// A [`poem::RouteMethod`] whose every endpoint is [`Protected`].
pub struct Methods(RouteMethod, Vec<Declared>);

impl Protected for Methods {
    fn declared(&self) -> Vec<Declared> {
        self.1.clone()
    }
}

impl Endpoint for Methods {
    type Output = Response;
    async fn call(&self, req: Request) -> Result<Response> {
        self.0.call(req).await
    }
}

/// A protected endpoint wrapped by a middleware (`get(h).with(AddData::new(..))`):
/// as protected as what it wraps, since every guard runs inside the handler,
/// below any middleware.
pub struct Wrapped<E>(E, Vec<Declared>);

impl<E> Protected for Wrapped<E> {
    fn declared(&self) -> Vec<Declared> {
        self.1.clone()
    }
}

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
                let declared = self.declared();
                Wrapped(middleware.transform(self), declared)
            }
        }
    )+};
}

protected_with!(Methods, Route);

impl<E: Endpoint> Wrapped<E> {
    /// Wraps it once more; still protected.
    #[must_use]
    pub fn with<M: Middleware<Self>>(self, middleware: M) -> Wrapped<M::Output> {
        let declared = self.1.clone();
        Wrapped(middleware.transform(self), declared)
    }
}

fn on_method(declared: Vec<Declared>, method: &str) -> Vec<Declared> {
    declared.into_iter().map(|d| d.or_method(method)).collect()
}

/// Entries added at `path`: handlers take the path; entries with their own
/// paths (operations, a nested router's routes) are joined below it, or
/// kept as they are when the prefix is not stripped.
fn at_path(declared: Vec<Declared>, path: &str, nested: bool, strip: bool) -> Vec<Declared> {
    declared
        .into_iter()
        .map(|d| match (d.path().is_some(), nested, strip) {
            (true, _, false) => d,
            (true, _, true) => d.prefixed(path),
            (false, false, _) => d.prefixed(path),
            (false, true, _) => d.prefixed(&format!("{}/*", path.trim_end_matches('/'))),
        })
        .collect()
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
                    let mut declared = self.1;
                    declared.extend(on_method(ep.declared(), stringify!($name)));
                    Methods(self.0.$name(ep), declared)
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
                let declared = on_method(ep.declared(), stringify!($name));
                Methods(RouteMethod::new().$name(ep), declared)
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
pub struct Route(poem::Route, Vec<Declared>);

impl Protected for Route {
    fn declared(&self) -> Vec<Declared> {
        self.1.clone()
    }
}

impl Route {
    /// An empty route table.
    pub fn new() -> Self {
        Route(poem::Route::new(), Vec::new())
    }
    /// The [security matrix](crate::matrix) of every route added so far:
    /// method, full path, and what each requires.
    ///
    /// ```
    /// use secure_runtime::route::{public, Route};
    /// let app = Route::new().nest("/static", public(poem::endpoint::make_sync(|_| "file")));
    /// let matrix = app.security_matrix();
    /// assert_eq!(matrix.rows()[0].path, "/static/*");
    /// assert_eq!(matrix.rows()[0].access, "public");
    /// ```
    pub fn security_matrix(&self) -> SecurityMatrix {
        SecurityMatrix::from_declared(self.1.clone())
    }
    /// Adds a path served by a protected endpoint.
    #[must_use]
    #[allow(clippy::disallowed_methods)] // the checked wrapper itself
    pub fn at<E>(self, path: impl AsRef<str>, ep: E) -> Self
    where
        E: IntoEndpoint + Protected,
        E::Endpoint: 'static,
    {
        let mut rows = self.1;
        rows.extend(at_path(ep.declared(), path.as_ref(), false, true));
        Route(self.0.at(path, ep), rows)
    }
    /// Nests a protected endpoint (e.g. an `OpenApiService`) under a prefix.
    #[must_use]
    #[allow(clippy::disallowed_methods)] // the checked wrapper itself
    pub fn nest<E>(self, path: impl AsRef<str>, ep: E) -> Self
    where
        E: IntoEndpoint + Protected,
        E::Endpoint: 'static,
    {
        let mut rows = self.1;
        rows.extend(at_path(ep.declared(), path.as_ref(), true, true));
        Route(self.0.nest(path, ep), rows)
    }
    /// Like [`Route::nest`], without stripping the prefix.
    #[must_use]
    #[allow(clippy::disallowed_methods)] // the checked wrapper itself
    pub fn nest_no_strip<E>(self, path: impl AsRef<str>, ep: E) -> Self
    where
        E: IntoEndpoint + Protected,
        E::Endpoint: 'static,
    {
        let mut rows = self.1;
        rows.extend(at_path(ep.declared(), path.as_ref(), true, false));
        Route(self.0.nest_no_strip(path, ep), rows)
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
