//! The marker `#[deny_unprotected]` leaves on an operation it has rewritten:
//! `#[::poem_secure::__private::checked(__secure_Api_op)]`, naming the
//! operation's requirement type. It stands in place of the `#[secure]` /
//! `#[public]` that was read, so that neither expands a second time.
//!
//! Generated code alone writes it. Anywhere else — without the requirement
//! type, or on anything but an operation (a method taking `self`) — it is a
//! compile error spanned at it; a forged requirement name does not resolve.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::quote;
use syn::{FnArg, ImplItemFn};

const MISUSE: &str = "`checked` is written by `#[deny_unprotected]` on the operations it has rewritten, never by hand: remove it and declare the handler with `#[secure(...)]` or `#[public]`";

/// The requirement type named by the marker's arguments, if they are
/// exactly one generated name.
fn requirement(args: TokenStream) -> Option<proc_macro2::Ident> {
    let mut it = args.into_iter();
    match (it.next(), it.next()) {
        (Some(TokenTree::Ident(i)), None) if i.to_string().starts_with("__secure_") => Some(i),
        _ => None,
    }
}

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let req = requirement(args);
    let method = syn::parse2::<ImplItemFn>(item.clone())
        .ok()
        .filter(|m| matches!(m.sig.inputs.first(), Some(FnArg::Receiver(_))));
    match (req, method) {
        (Some(req), Some(mut m)) => {
            // The requirement type must exist beside the impl: a marker copied
            // by hand with a made-up name fails here.
            m.block.stmts.insert(
                0,
                syn::parse_quote!(let _: ::core::marker::PhantomData<#req> = ::core::marker::PhantomData;),
            );
            quote!(#m)
        }
        _ => {
            let e = syn::Error::new(Span::call_site(), MISUSE).into_compile_error();
            quote!(#e #item)
        }
    }
}
