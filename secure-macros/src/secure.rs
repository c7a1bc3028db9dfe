//! `#[secure]` and `#[public]` on a plain poem handler.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::{Attribute, FnArg, ItemFn};

use crate::{
    args::RawArgs,
    check::check,
    errors::Errors,
    expand,
    model::{Decl, Kind},
};

/// Whether `attr` is `#[name]`, `#[path::to::name]` or `#[name(...)]`.
pub(crate) fn is_attr(attr: &Attribute, name: &str) -> bool {
    attr.path().segments.last().is_some_and(|s| s.ident == name)
}

pub(crate) fn is_decl(attr: &Attribute) -> Option<Kind> {
    if is_attr(attr, "secure") {
        Some(Kind::Secure)
    } else if is_attr(attr, "public") {
        Some(Kind::Public)
    } else {
        None
    }
}

pub(crate) fn expand(kind: Kind, args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let raw = match syn::parse2::<RawArgs>(args) {
        Ok(r) => r.0,
        Err(e) => {
            errors.push(e);
            Vec::new()
        }
    };
    let decl = Decl::from_args(kind, &raw, &mut errors);
    check(&decl, &mut errors);

    let mut f: ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(_) => {
            errors.at(
                Span::call_site(),
                format!("{} applies to a handler function: place it above `#[handler]` on an `async fn`", kind.attr()),
            );
            let e = errors.into_compile_error();
            return quote!(#e #item);
        }
    };

    let has_handler = f.attrs.iter().any(|a| is_attr(a, "handler"));
    let is_operation = matches!(f.sig.inputs.first(), Some(FnArg::Receiver(_)))
        || f.attrs.iter().any(|a| is_attr(a, "oai"));
    if is_operation {
        errors.at(
            Span::call_site(),
            format!(
                "{} on a poem-openapi operation is read by `#[deny_unprotected]`, which must stand above `#[OpenApi]` on the impl: add `#[deny_unprotected]` there",
                kind.attr()
            ),
        );
    } else if !has_handler {
        errors.at(
            Span::call_site(),
            format!(
                "{} must stand directly above `#[handler]`, but no `#[handler]` follows it: if `#[handler]` is above, swap the two; poem's `#[handler]` must expand after it",
                kind.attr()
            ),
        );
    }
    // A second declaration on the same function.
    f.attrs.retain(|a| match is_decl(a) {
        Some(other) => {
            let (a_name, b_name) = (kind.attr(), other.attr());
            let msg = if other == kind {
                format!("{a_name} is given twice: keep one")
            } else {
                format!("{a_name} and {b_name} on one handler contradict each other: keep one")
            };
            errors.push(syn::Error::new_spanned(a, msg));
            false
        }
        None => true,
    });

    if !errors.is_empty() {
        // Re-emit the item so one mistake does not cascade; the build fails
        // anyway, so marking it `Protected` hides no missing declaration.
        let e = errors.into_compile_error();
        let protected = if has_handler && !is_operation {
            let k = &decl.krate;
            let name = &f.sig.ident;
            let (ig, tg, wc) = f.sig.generics.split_for_impl();
            quote!(impl #ig #k::Protected for #name #tg #wc {})
        } else {
            TokenStream::new()
        };
        return quote!(#e #f #protected);
    }
    expand::handler(&decl, f)
}
