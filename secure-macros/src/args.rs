//! Token parsing of the attribute arguments: `key = value` pairs, kept with
//! their spans. Meaning is given in `model.rs`.

use proc_macro2::Span;
use syn::{
    ext::IdentExt,
    parse::{Parse, ParseStream},
    punctuated::Punctuated,
    spanned::Spanned,
    Expr, Ident, Token,
};

/// One `key = value` argument (`value` absent for a bare `key`).
pub(crate) struct RawArg {
    pub(crate) key: Ident,
    pub(crate) value: Option<Expr>,
}

impl RawArg {
    pub(crate) fn span(&self) -> Span {
        match &self.value {
            Some(v) => self
                .key
                .span()
                .join(v.span())
                .unwrap_or_else(|| self.key.span()),
            None => self.key.span(),
        }
    }
}

impl Parse for RawArg {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        // `Ident::parse_any` also takes `crate`.
        let key = Ident::parse_any(input)?;
        let value = if input.peek(Token![=]) {
            input.parse::<Token![=]>()?;
            Some(input.parse::<Expr>()?)
        } else {
            None
        };
        Ok(RawArg { key, value })
    }
}

/// The whole argument list of `#[secure(...)]`, `#[public(...)]` or
/// `#[deny_unprotected(...)]`.
pub(crate) struct RawArgs(pub(crate) Vec<RawArg>);

impl Parse for RawArgs {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let list = Punctuated::<RawArg, Token![,]>::parse_terminated(input)?;
        Ok(RawArgs(list.into_iter().collect()))
    }
}

/// Enforces "at most once" for every key: the first occurrence is kept, each
/// repetition is an error at the repeated key.
pub(crate) fn once<'a>(args: &'a [RawArg], errors: &mut crate::errors::Errors) -> Vec<&'a RawArg> {
    let mut seen: Vec<&RawArg> = Vec::new();
    for a in args {
        if let Some(first) = seen.iter().find(|s| s.key == a.key) {
            let _ = first;
            errors.at(
                a.key.span(),
                format!("duplicate key `{}`: give it once", a.key.unraw()),
            );
        } else {
            seen.push(a);
        }
    }
    seen
}
