//! What a typed `check = f(a, b)` may take from its handler: parameters that
//! are extracted without reading the request body.

/// A handler parameter a typed `check` may be given: path, query and header
/// parameters, `Data<&T>` state, request metadata and references to the
/// request's parts. A body (`Json`, `Form`, `Multipart`, a `String`…) is not
/// one: a check decides from what identifies the object, never from what the
/// caller sends. On a plain handler the check runs before the body is read,
/// so a refused caller never gets the server to read it; on a poem-openapi
/// operation it runs once poem-openapi has extracted every parameter (the
/// body within the configured size limit), before the operation's code.
///
/// Implemented by this crate; generated code asserts it for every argument
/// of a check, so naming a body is a compile error at that argument.
///
/// ```
/// use poem::web::{Data, Path};
/// use secure_runtime::CheckArgument;
/// fn may_take<T: CheckArgument>() {}
/// may_take::<Path<u64>>();
/// may_take::<Data<&String>>();
/// ```
///
/// ```compile_fail
/// use secure_runtime::CheckArgument;
/// fn may_take<T: CheckArgument>() {}
/// may_take::<poem::web::Json<String>>(); // a body
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be passed to a check: a check takes path, query and header parameters and `Data<&T>` state, never the request body",
    label = "not a parameter a check may take",
    note = "a check decides from what identifies the object, not from what the caller sends; read the body in the handler"
)]
pub trait CheckArgument {}

macro_rules! generic {
    ($($t:ty),* $(,)?) => { $(impl<T> CheckArgument for $t {})* };
}
macro_rules! plain {
    ($($t:ty),* $(,)?) => { $(impl CheckArgument for $t {})* };
}

generic!(
    poem::web::Path<T>,
    poem::web::Query<T>,
    poem::web::Data<T>,
    poem::web::TypedHeader<T>,
    poem_openapi::param::Path<T>,
    poem_openapi::param::Query<T>,
    poem_openapi::param::Header<T>,
);
plain!(
    poem::web::RealIp,
    poem::web::RemoteAddr,
    poem::web::LocalAddr,
    poem::http::Method,
    poem::http::Uri,
    poem::http::Version,
    poem::http::HeaderMap,
    crate::Principal,
);

/// A reference to a request part (`&Request`, `&HeaderMap`, `&Uri`…) reads
/// no body.
impl<T: ?Sized> CheckArgument for &T {}

impl<T: CheckArgument> CheckArgument for Option<T> {}

/// Asserts at compile time that `T` may be passed to a check. Generated code
/// only.
#[doc(hidden)]
pub const fn check_argument<T: CheckArgument + ?Sized>() {}
