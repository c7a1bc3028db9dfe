//! `crate_catalogue!(PATH)`: the catalogue every `#[secure]` of the crate is
//! checked against, file modules included.
//!
//! How `#[secure]` finds it without naming it: a declaration expands to a
//! hidden `const __POEM_SECURE_CRATE_CATALOGUE` at the crate root. The checks
//! a `#[secure]` without `catalogue = ..` writes (`expand::catalogue_checks`)
//! look that name up inside two nested blocks: the outer one glob-imports a
//! fallback (`None`) from `__private::no_crate_catalogue`, the inner one
//! glob-imports `crate::*`. Names resolve from the innermost block outwards,
//! so the crate's declaration wins when there is one and the fallback is
//! used otherwise; both are values, so no macro or import ambiguity arises.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{
    parse::{Parse, ParseStream},
    Path, Token,
};

use crate::errors::Errors;

/// The name generated code looks up.
pub(crate) const NAME: &str = "__POEM_SECURE_CRATE_CATALOGUE";

const USAGE: &str = "unexpected argument: `crate_catalogue!` takes the catalogue's path and, optionally, `crate = path::to::poem_secure`";

struct Args {
    catalogue: Path,
    krate: Option<Path>,
}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let catalogue: Path = input.parse().map_err(|e| {
            syn::Error::new(
                e.span(),
                "expected the path of a `const Catalogue`: `poem_secure::crate_catalogue!(access::ACCESS);`",
            )
        })?;
        let mut krate = None;
        if input.parse::<Option<Token![,]>>()?.is_some() && !input.is_empty() {
            let _: Token![crate] = input
                .parse()
                .map_err(|e| syn::Error::new(e.span(), USAGE))?;
            let _: Token![=] = input.parse().map_err(|e| {
                syn::Error::new(e.span(), "expected `crate = path::to::poem_secure`")
            })?;
            krate = Some(input.parse()?);
            let _: Option<Token![,]> = input.parse()?;
        }
        if !input.is_empty() {
            return Err(input.error(USAGE));
        }
        Ok(Args { catalogue, krate })
    }
}

pub(crate) fn expand(input: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let args = match syn::parse2::<Args>(input) {
        Ok(a) => a,
        Err(e) => {
            errors.push(e);
            return errors.into_compile_error();
        }
    };
    let k = args
        .krate
        .unwrap_or_else(|| syn::parse_quote!(::poem_secure));
    let cat = &args.catalogue;
    let shown = quote!(#cat).to_string().replace(' ', "");
    let name = syn::Ident::new(NAME, proc_macro2::Span::call_site());
    quote! {
        #[doc(hidden)]
        #[allow(dead_code)]
        const #name: ::core::option::Option<#k::__private::CrateCatalogue> =
            ::core::option::Option::Some(#k::__private::CrateCatalogue {
                catalogue: &#cat,
                name: #shown,
            });
        // Only a declaration at the crate root is found by every `#[secure]`.
        const _: () = {
            #[allow(unused_imports)]
            use #k::__private::no_crate_catalogue::*;
            const _: () = {
                #[allow(unused_imports)]
                use crate::*;
                if #name.is_none() {
                    ::core::panic!("`crate_catalogue!` must be called at the crate root (`lib.rs` or `main.rs`), where every `#[secure]` of the crate finds it")
                }
            };
        };
    }
}
