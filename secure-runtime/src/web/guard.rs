//! Extractors: the generated per-handler guard and [`Principal`].

use std::{
    future::Future,
    marker::PhantomData,
    pin::Pin,
    task::{Context, Poll},
};

use poem::{FromRequest, Request, RequestBody, Result};

use crate::{
    web::middleware::{self, GuardStep},
    Principal, Requirement,
};

/// The guard `#[secure]`/`#[public]` inject as the first parameter of a
/// generic poem handler (other handlers call [`guard_check`] from the
/// endpoint they generate): it runs the handler's policy before any other
/// extractor, so no body is read for a refused caller.
pub struct Guard<R>(PhantomData<fn() -> R>);

impl<'a, R: Requirement> FromRequest<'a> for Guard<R> {
    fn from_request(
        req: &'a Request,
        _body: &mut RequestBody,
    ) -> impl Future<Output = Result<Self>> + Send {
        GuardFuture::new(req, R::POLICY)
    }
}

/// What a guard extractor yields once its policy admits the request.
pub(crate) trait Admitted: Sized {
    fn admitted(req: &Request, policy: &'static crate::Policy) -> Self;
}

impl<R> Admitted for Guard<R> {
    fn admitted(_: &Request, _: &'static crate::Policy) -> Self {
        Guard(PhantomData)
    }
}

/// The future of a guard extractor: [`GuardCheck`], yielding the extractor.
/// A written-out future rather than an `async fn`: it is instantiated once per
/// handler that uses it, and all it adds there is one call to the shared
/// poll.
pub(crate) struct GuardFuture<'a, T> {
    check: GuardCheck<'a>,
    req: &'a Request,
    policy: &'static crate::Policy,
    _out: PhantomData<fn() -> T>,
}

impl<'a, T> GuardFuture<'a, T> {
    pub(crate) fn new(req: &'a Request, policy: &'static crate::Policy) -> Self {
        GuardFuture {
            check: guard_check(req, policy),
            req,
            policy,
            _out: PhantomData,
        }
    }
}

impl<T: Admitted> Future for GuardFuture<'_, T> {
    type Output = Result<T>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let (req, policy) = (this.req, this.policy);
        Pin::new(&mut this.check)
            .poll(cx)
            .map(|r| r.map(|()| T::admitted(req, policy)))
    }
}

/// The verified caller, as checked by the handler's guard. Without a guard (a
/// handler that is neither `#[secure]` nor `#[public]`) it is a 401: it never
/// invents a caller. `Option<Principal>` on a `#[public]` handler is `None`
/// when no credential was presented.
impl<'a> FromRequest<'a> for Principal {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> Result<Self> {
        Ok(middleware::verified_principal(req)?)
    }
}

/// The guard of a handler whose endpoint `#[secure]`/`#[public]` generate:
/// one future type for every handler, so a handler adds only one call.
/// Generated code only.
#[doc(hidden)]
pub struct GuardCheck<'a>(GuardStep<'a>);

impl Future for GuardCheck<'_> {
    type Output = Result<()>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().0.poll_step(cx)
    }
}

/// Runs `policy` for `req` (see [`GuardCheck`]). Generated code only.
#[doc(hidden)]
pub fn guard_check<'a>(req: &'a Request, policy: &'static crate::Policy) -> GuardCheck<'a> {
    GuardCheck(middleware::guard(req, policy))
}

/// The admitted caller when `policy`'s typed `check` is still to run on
/// `req` (the rest of the declaration cannot be met without it). Generated
/// code only.
#[doc(hidden)]
pub fn check_due<'r>(req: &'r Request, policy: &'static crate::Policy) -> Option<&'r Principal> {
    middleware::check_due(req, policy)
}

/// Awaits a typed `check = f(args..)` and turns its refusal into the
/// response (403, or 404 for [`Denied::not_found`](crate::Denied::not_found)),
/// logged like every refusal. Generated code only: it is called with the
/// user's check, so a check with the wrong output type is reported there.
///
/// A plain function returning a boxed future, so that a check of the wrong
/// type is one error at the call, not a second one where it is awaited.
#[doc(hidden)]
pub fn typed_check<'a, F>(
    policy: &'static crate::Policy,
    who: &'a Principal,
    check: F,
) -> Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>>
where
    F: Future<Output = std::result::Result<(), crate::Denied>> + Send + 'a,
{
    Box::pin(async move {
        crate::decision::check_answered(policy, who, check.await).map_err(Into::into)
    })
}
