//! Token parsing of the attribute arguments: `key = value` pairs and
//! `group(...)` lists, kept with their spans. Meaning is given in `model.rs`.

use proc_macro2::Span;
use syn::{
    ext::IdentExt,
    parenthesized,
    parse::{Parse, ParseStream},
    punctuated::Punctuated,
    spanned::Spanned,
    token, Expr, Ident, Token,
};

/// One argument: `key = value`, a bare `key`, or `key(arg, ...)`.
pub(crate) struct RawArg {
    pub(crate) key: Ident,
    pub(crate) value: RawValue,
}

pub(crate) enum RawValue {
    /// A bare `key`.
    None,
    /// `key = value`.
    Expr(Expr),
    /// `key(args...)`, with the span of the parentheses.
    Group(Vec<RawArg>, Span),
}

impl RawArg {
    /// The key and its value, for an error about the whole argument.
    pub(crate) fn span(&self) -> Span {
        let end = match &self.value {
            RawValue::None => return self.key.span(),
            RawValue::Expr(v) => v.span(),
            RawValue::Group(_, s) => *s,
        };
        self.key.span().join(end).unwrap_or_else(|| self.key.span())
    }
    /// The key's name without `r#`.
    pub(crate) fn name(&self) -> String {
        self.key.unraw().to_string()
    }
}

impl Parse for RawArg {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        // `Ident::parse_any` also takes `crate`.
        let key = Ident::parse_any(input)?;
        let value = if input.peek(Token![=]) {
            input.parse::<Token![=]>()?;
            RawValue::Expr(input.parse::<Expr>()?)
        } else if input.peek(token::Paren) {
            let content;
            let parens = parenthesized!(content in input);
            let list = Punctuated::<RawArg, Token![,]>::parse_terminated(&content)?;
            RawValue::Group(list.into_iter().collect(), parens.span.join())
        } else {
            RawValue::None
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

/// Enforces "at most once" for every key of one list (the top level or one
/// group): the first occurrence is kept, each repetition is an error at the
/// repeated key. Groups (`any(...)`, `all(...)`) may repeat.
pub(crate) fn once<'a>(
    args: &'a [RawArg],
    repeatable: impl Fn(&str) -> bool,
    where_: &str,
    errors: &mut crate::errors::Errors,
) -> Vec<&'a RawArg> {
    let mut seen: Vec<&RawArg> = Vec::new();
    for a in args {
        let name = a.name();
        if !repeatable(&name) && seen.iter().any(|s| s.name() == name) {
            errors.at(
                a.key.span(),
                format!("duplicate key `{name}`{where_}: give it once"),
            );
        } else {
            seen.push(a);
        }
    }
    seen
}
