//! What the security matrix and the OpenAPI document learn from the macros:
//! `impl Protected` blocks that list each handler's or operation's policy
//! (with the operation's method and path), and the line each secured
//! operation's description gains.

use proc_macro2::{TokenStream, TokenTree};
use quote::{format_ident, quote};
use syn::{Attribute, Expr, Generics, Ident, ImplItem, ImplItemFn, ItemImpl, LitStr, Meta, Path};

use crate::{
    docs::{forbidden_doc, rate_doc},
    model::{Decl, Kind},
    secure::is_attr,
};

/// `impl Protected` for a handler struct: one entry, its requirement
/// `__secure_<name>`; the router gives the method and path.
pub(crate) fn handler_impl(krate: &Path, ident: &Ident, generics: &Generics) -> TokenStream {
    let (ig, tg, wc) = generics.split_for_impl();
    let req = format_ident!("__secure_{}", ident);
    let p = quote!(#krate::__private);
    quote! {
        impl #ig #krate::Protected for #ident #tg #wc {
            fn declarations() -> ::std::vec::Vec<#p::Declared> {
                ::std::vec![#p::Declared::handler::<#req>()]
            }
        }
    }
}

/// `key = value` pairs of an attribute's arguments, split at top-level commas
/// (values stay tokens: `#[oai]` and `#[OpenApi]` take more than `Meta`).
fn pairs(attr: &Attribute) -> Vec<(String, TokenStream)> {
    let Meta::List(list) = &attr.meta else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut chunk: Vec<TokenTree> = Vec::new();
    let mut flush = |chunk: &mut Vec<TokenTree>| {
        if let [TokenTree::Ident(k), TokenTree::Punct(eq), rest @ ..] = chunk.as_slice() {
            if eq.as_char() == '=' && !rest.is_empty() {
                out.push((k.to_string(), rest.iter().cloned().collect()));
            }
        }
        chunk.clear();
    };
    for tt in list.tokens.clone() {
        match &tt {
            TokenTree::Punct(p) if p.as_char() == ',' => flush(&mut chunk),
            _ => chunk.push(tt),
        }
    }
    flush(&mut chunk);
    out
}

fn string(tokens: &TokenStream) -> Option<String> {
    syn::parse2::<LitStr>(tokens.clone())
        .ok()
        .map(|l| l.value())
}

/// The requirement type named by the hidden `checked(...)` marker that
/// `#[deny_unprotected]` leaves on each operation it rewrote.
fn requirement(m: &ImplItemFn) -> Option<Path> {
    m.attrs.iter().find_map(|a| match &a.meta {
        Meta::List(l) if is_attr(a, "checked") => syn::parse2::<Path>(l.tokens.clone()).ok(),
        _ => None,
    })
}

/// `impl Protected` for an `#[OpenApi]` type: one entry per rewritten
/// operation and method, with its `#[oai(path)]` joined to the impl's
/// `prefix_path`.
pub(crate) fn api_impl(krate: &Path, imp: &ItemImpl) -> TokenStream {
    let p = quote!(#krate::__private);
    let prefix: Option<Expr> = imp
        .attrs
        .iter()
        .filter(|a| is_attr(a, "OpenApi"))
        .flat_map(pairs)
        .find(|(k, _)| k == "prefix_path")
        .and_then(|(_, v)| syn::parse2(v).ok());
    let prefix = prefix.map(|e| quote!(.prefixed(#e)));
    let mut entries = Vec::new();
    for item in &imp.items {
        let ImplItem::Fn(m) = item else { continue };
        let Some(req) = requirement(m) else { continue };
        let args: Vec<(String, TokenStream)> = m
            .attrs
            .iter()
            .filter(|a| is_attr(a, "oai"))
            .flat_map(pairs)
            .collect();
        let Some(path) = args
            .iter()
            .find(|(k, _)| k == "path")
            .and_then(|(_, v)| string(v))
        else {
            continue; // poem-openapi reports the missing path
        };
        for (_, method) in args.iter().filter(|(k, _)| k == "method") {
            if let Some(method) = string(method) {
                entries.push(quote!(#p::Declared::operation::<#req>(#method, #path) #prefix));
            }
        }
    }
    let (ig, _, wc) = imp.generics.split_for_impl();
    let self_ty = &imp.self_ty;
    quote! {
        impl #ig #krate::Protected for #self_ty #wc {
            fn declarations() -> ::std::vec::Vec<#p::Declared> {
                ::std::vec![#(#entries),*]
            }
        }
    }
}

/// The credential kinds in words.
fn auth_text(d: &Decl) -> String {
    let kinds: Vec<&str> = [
        (d.auth.bearer, "a bearer token (JWT)"),
        (d.auth.api_key, "an API key"),
        (d.auth.basic, "HTTP Basic credentials"),
    ]
    .into_iter()
    .filter_map(|(on, s)| on.then_some(s))
    .collect();
    kinds.join(" or ")
}

/// `60 requests per minute per caller`, from the documented 429.
fn rate_text(d: &Decl) -> Option<String> {
    d.rate.as_ref()?;
    let doc = rate_doc(d);
    let rest = doc.strip_prefix("Rate limit exceeded: ")?;
    Some(
        rest.split_once(". `Retry-After`")
            .map_or(rest, |(a, _)| a)
            .to_owned(),
    )
}

/// The sentence the operation's description gains: what it accepts, what
/// the caller must hold (the documented 403), the check by name, the rate.
pub(crate) fn security_line(d: &Decl) -> Option<String> {
    let rate = rate_text(d).map(|r| format!(" Rate limit: {r}."));
    if d.kind == Kind::Public {
        return rate.map(|r| format!("**Security:** public (no credential required).{r}"));
    }
    let forbidden = forbidden_doc(d);
    let needs = match forbidden.strip_prefix("Forbidden unless the caller has ") {
        Some(rest) => format!(" The caller must have {rest}"),
        None => " Any authenticated caller.".to_owned(),
    };
    // The check is named in the requirement; the 404 it may answer is
    // documented as a response of its own.
    let needs = needs.replace(
        " A refused check may answer 404 instead, to hide whether the object exists.",
        "",
    );
    Some(format!(
        "**Security:** requires {}.{needs}{}",
        auth_text(d),
        rate.unwrap_or_default()
    ))
}

/// Appends the security line to the operation's doc comment, as its own
/// paragraph, so poem-openapi puts it in the description (the user's first
/// paragraph stays the summary).
pub(crate) fn describe(d: &Decl, m: &mut ImplItemFn) {
    let Some(line) = security_line(d) else {
        return;
    };
    if m.attrs.iter().any(|a| a.path().is_ident("doc")) {
        m.attrs.push(syn::parse_quote!(#[doc = ""]));
    }
    m.attrs.push(syn::parse_quote!(#[doc = #line]));
}
