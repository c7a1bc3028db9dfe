//! Extractors: the generated per-handler guard and [`Principal`].

use std::marker::PhantomData;

use poem::{FromRequest, Request, RequestBody, Result};

use crate::{security, Principal, Requirement};

/// The guard `#[secure]`/`#[public]` inject as a plain poem handler's first
/// parameter: it runs the handler's policy before any other extractor, so no
/// body is read for a refused caller.
pub struct Guard<R>(PhantomData<fn() -> R>);

impl<'a, R: Requirement> FromRequest<'a> for Guard<R> {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> Result<Self> {
        security::guard(req, R::POLICY).await?;
        Ok(Guard(PhantomData))
    }
}

/// The verified caller, as checked by the handler's guard. Without a guard (a
/// handler that is neither `#[secure]` nor `#[public]`) it is a 401: it never
/// invents a caller. `Option<Principal>` on a `#[public]` handler is `None`
/// when no credential was presented.
impl<'a> FromRequest<'a> for Principal {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> Result<Self> {
        Ok(security::verified_principal(req)?)
    }
}
