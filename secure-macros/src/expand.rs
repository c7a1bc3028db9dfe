//! Turns a validated declaration into tokens: a static policy, a zero-sized
//! requirement type, and one guard parameter. All logic stays in the runtime.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::{
    parse_quote, FnArg, Generics, Ident, ImplItemFn, ItemFn, LitStr, ReturnType, Type, Visibility,
};

use crate::model::{Decl, Kind, RateKey, RoleMode};

fn strs(names: &[crate::model::Name]) -> TokenStream {
    let v = names.iter().map(|n| LitStr::new(&n.value, n.span));
    quote!(&[#(#v),*])
}

/// The policy, built with the runtime's `const fn` constructors.
fn policy(d: &Decl, id: &TokenStream, req: &Ident) -> TokenStream {
    let k = &d.krate;
    let p = quote!(#k::__private);
    let public = d.kind == Kind::Public;
    let auth = {
        let mut parts = Vec::new();
        if d.auth.0.bearer {
            parts.push(quote!(#p::AuthKinds::BEARER));
        }
        if d.auth.0.api_key {
            parts.push(quote!(#p::AuthKinds::API_KEY));
        }
        if d.auth.0.basic {
            parts.push(quote!(#p::AuthKinds::BASIC));
        }
        let first = parts.remove(0);
        quote!(#first #(.or(#parts))*)
    };
    let scopes = strs(&d.scopes);
    let permissions = strs(&d.permissions);
    let roles = match (&d.roles.0, d.roles.1.is_empty()) {
        (_, true) => quote!(#p::Roles::None),
        (RoleMode::Any, false) => {
            let r = strs(&d.roles.1);
            quote!(#p::Roles::Any(#r))
        }
        (RoleMode::All, false) => {
            let r = strs(&d.roles.1);
            quote!(#p::Roles::All(#r))
        }
    };
    let mut calls = Vec::new();
    calls.push(quote!(.with_auth(#auth)));
    if !d.scopes.is_empty() {
        calls.push(quote!(.with_scopes(#scopes)));
    }
    if !d.roles.1.is_empty() {
        calls.push(quote!(.with_roles(#roles)));
    }
    if !d.permissions.is_empty() {
        calls.push(quote!(.with_permissions(#permissions)));
    }
    if let Some((r, _)) = &d.rate {
        let (c, s) = (r.count, r.period_secs);
        let burst = r.burst.map(|b| quote!(.with_burst(#b)));
        calls.push(quote!(.with_rate(#p::Rate::new(#c, #s) #burst)));
    }
    let rate_key = match &d.rate_key {
        None => None,
        Some((RateKey::Ip, _)) => Some(quote!(#p::RateKey::Ip)),
        Some((RateKey::User, _)) => Some(quote!(#p::RateKey::User)),
        Some((RateKey::ApiKey, _)) => Some(quote!(#p::RateKey::ApiKey)),
        Some((RateKey::IpUser, _)) => Some(quote!(#p::RateKey::IpUser)),
        Some((RateKey::Custom(_), _)) => Some(quote!(#p::RateKey::Custom(#req::__RATE_KEY))),
    };
    if let Some(k) = rate_key {
        calls.push(quote!(.with_rate_key(#k)));
    }
    if let Some((g, span)) = &d.rate_group {
        let g = LitStr::new(g, *span);
        calls.push(quote!(.with_rate_group(#g)));
    }
    if d.check.is_some() {
        calls.push(quote!(.with_check(#req::__check as #p::CheckFn)));
    }
    if let Some(c) = &d.catalogue {
        calls.push(quote!(.with_catalogue(&#c)));
    }
    let ctor = if public {
        quote!(#p::Policy::public)
    } else {
        quote!(#p::Policy::secured)
    };
    quote!(#ctor(#id) #(#calls)*)
}

/// Const assertions that every scope, role and permission is in the catalogue,
/// each spanned at its string literal.
fn catalogue_checks(d: &Decl) -> TokenStream {
    let Some(cat) = &d.catalogue else {
        return TokenStream::new();
    };
    let cat_name = cat
        .segments
        .last()
        .map(|s| s.ident.to_string())
        .unwrap_or_default();
    let mut out = TokenStream::new();
    let groups: [(&[crate::model::Name], &str, &str); 3] = [
        (&d.scopes, "declares_scope", "scope"),
        (&d.roles.1, "declares_role", "role"),
        (&d.permissions, "declares_permission", "permission"),
    ];
    for (names, method, what) in groups {
        let method = Ident::new(method, Span::call_site());
        for n in names {
            let value = &n.value;
            let msg = format!(
                "{what} `{value}` is not declared in the catalogue `{cat_name}`: fix the spelling or declare it there"
            )
            .replace('{', "{{")
            .replace('}', "}}");
            let lit = LitStr::new(value, n.span);
            out.extend(quote_spanned! {n.span=>
                const _: () = if !#cat.#method(#lit) { ::core::panic!(#msg) };
            });
        }
    }
    out
}

/// The documented meaning of a 403 for this declaration.
fn forbidden_doc(d: &Decl) -> String {
    let list = |v: &[crate::model::Name]| {
        v.iter()
            .map(|n| format!("`{}`", n.value))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut parts = Vec::new();
    if !d.scopes.is_empty() {
        parts.push(format!("all of the scopes {}", list(&d.scopes)));
    }
    if !d.roles.1.is_empty() {
        let mode = match d.roles.0 {
            RoleMode::Any if d.roles.1.len() > 1 => "one of the roles",
            RoleMode::Any => "the role",
            RoleMode::All => "all of the roles",
        };
        parts.push(format!("{mode} {}", list(&d.roles.1)));
    }
    if !d.permissions.is_empty() {
        parts.push(format!("all of the permissions {}", list(&d.permissions)));
    }
    let mut doc = if parts.is_empty() {
        "Forbidden.".to_owned()
    } else {
        format!("Forbidden unless the caller has {}.", parts.join("; "))
    };
    if d.check.is_some() {
        doc.push_str(" An object-level check also applies.");
    }
    doc
}

/// The requirement type of one declaration and everything attached to it.
fn requirement(d: &Decl, req: &Ident, vis: &Visibility, id: &TokenStream) -> TokenStream {
    let k = &d.krate;
    let p = quote!(#k::__private);
    let policy = policy(d, id, req);
    let mut inherent = TokenStream::new();
    if let Some((RateKey::Custom(path), _)) = &d.rate_key {
        inherent.extend(
            quote_spanned! {path.segments.last().map_or(Span::call_site(), |s| s.ident.span())=>
                const __RATE_KEY: #p::RateKeyFn = #path;
            },
        );
    }
    if let Some(path) = &d.check {
        let span = path
            .segments
            .last()
            .map_or(Span::call_site(), |s| s.ident.span());
        inherent.extend(quote_spanned! {span=>
            fn __check<'a>(principal: &'a #p::Principal, request: &'a #p::Request) -> #p::CheckFuture<'a> {
                #p::check_future(#path(principal, request))
            }
        });
    }
    let checks = catalogue_checks(d);
    let forbidden = forbidden_doc(d);
    quote! {
        #[doc(hidden)]
        #[allow(non_camel_case_types)]
        #vis struct #req;
        #[allow(clippy::needless_lifetimes)]
        impl #req { #inherent }
        impl #p::Requirement for #req {
            const POLICY: &'static #p::Policy = &#policy;
            const FORBIDDEN_DOC: &'static str = #forbidden;
        }
        #checks
    }
}

fn protected_impl(krate: &syn::Path, ident: &Ident, generics: &Generics) -> TokenStream {
    let (ig, tg, wc) = generics.split_for_impl();
    quote!(impl #ig #krate::Protected for #ident #tg #wc {})
}

/// Plain poem. A non-generic handler under a bare `#[handler]` gets its
/// endpoint written here, the expansion poem's `#[handler]` would produce
/// with the guard run first: `guard_check` returns one future type for
/// every handler, so a handler costs the compiler one call, not a generic
/// extractor (the compile-time benchmark in `BENCHMARKS.md`). Generic
/// handlers and `#[handler(...)]` with arguments keep poem's expansion, with
/// the guard as the first parameter (poem extracts parameters in order).
/// Either way the guard runs before any other extractor, so no body is read
/// for a refused caller, and the handler struct becomes `Protected`.
pub(crate) fn handler(d: &Decl, mut f: ItemFn) -> TokenStream {
    let k = &d.krate;
    let name = f.sig.ident.clone();
    let req = format_ident!("__secure_{}", name);
    let id = {
        let n = name.to_string();
        quote!(::core::concat!(::core::module_path!(), "::", #n))
    };
    let items = requirement(d, &req, &f.vis, &id);
    let protected = protected_impl(k, &name, &f.sig.generics);
    let bare = f
        .attrs
        .iter()
        .position(|a| crate::secure::is_attr(a, "handler") && matches!(a.meta, syn::Meta::Path(_)));
    let (Some(at), true) = (bare, f.sig.generics.params.is_empty()) else {
        let guard: FnArg = parse_quote!(_: #k::__private::Guard<#req>);
        f.sig.inputs.insert(0, guard);
        return quote! {
            #items
            #f
            #protected
        };
    };
    // The user's `use poem::handler;` must still count as used.
    let handler_path = f.attrs.remove(at).path().clone();
    let p = quote!(#k::__private);
    let poem = quote!(#p::poem);
    let docs = f.attrs.iter().filter(|a| a.path().is_ident("doc"));
    let vis = &f.vis;
    let mut extract = Vec::new();
    let mut args = Vec::new();
    for (i, input) in f.sig.inputs.iter().enumerate() {
        if let FnArg::Typed(pat) = input {
            let ty = &pat.ty;
            let arg = format_ident!("p{}", i);
            extract.push(quote! {
                let #arg = <#ty as #poem::FromRequest>::from_request(&req, &mut body).await?;
            });
            args.push(arg);
        }
    }
    let call_await = f.sig.asyncness.is_some().then(|| quote!(.await));
    quote! {
        #items
        #[allow(unused_imports)]
        use #handler_path as _;
        #(#docs)*
        #[allow(non_camel_case_types)]
        #vis struct #name;
        impl #poem::Endpoint for #name {
            type Output = #poem::Response;
            #[allow(unused_mut)]
            async fn call(&self, mut req: #poem::Request) -> #poem::Result<Self::Output> {
                let (req, mut body) = req.split();
                #p::guard_check(&req, <#req as #p::Requirement>::POLICY).await?;
                #(#extract)*
                #f
                let res = #name(#(#args),*)#call_await;
                let res = #poem::error::IntoResult::into_result(res);
                ::core::result::Result::map(res, #poem::IntoResponse::into_response)
            }
        }
        #protected
    }
}

/// poem-openapi: rewrites one operation in place and returns the items that
/// must stand beside the impl.
pub(crate) fn operation(d: &Decl, m: &mut ImplItemFn, self_name: &Ident) -> TokenStream {
    let k = &d.krate;
    let p = quote!(#k::__private);
    let name = &m.sig.ident;
    let req = format_ident!("__secure_{}_{}", self_name, name);
    let id = {
        let n = format!("{self_name}::{name}");
        quote!(::core::concat!(::core::module_path!(), "::", #n))
    };
    let items = requirement(d, &req, &m.vis, &id);

    // The guard: a security-scheme parameter for `#[secure]` (documented, with
    // its scopes), a plain extractor for `#[public]` (nothing to document).
    let guards: Vec<FnArg> = match d.kind {
        Kind::Secure => {
            let paths = (0..d.scopes.len())
                .map(|i| LitStr::new(&format!("{req}::__S{i}"), Span::call_site()));
            // One `#[oai]` per parameter: poem-openapi reads only the first.
            let scopes_attr = (!d.scopes.is_empty()).then(|| quote!(#[oai(#(scope = #paths),*)]));
            vec![
                parse_quote!(#scopes_attr __secure_scopes: #p::OaiScopes<#req>),
                parse_quote!(__secure_guard: #p::OaiGuard<#req>),
            ]
        }
        Kind::Public => vec![parse_quote!(__secure_guard: #p::Guard<#req>)],
    };
    let at = usize::from(matches!(m.sig.inputs.first(), Some(FnArg::Receiver(_))));
    for (i, g) in guards.into_iter().enumerate() {
        m.sig.inputs.insert(at + i, g);
    }

    let scope_consts = d.scopes.iter().enumerate().map(|(i, s)| {
        let c = format_ident!("__S{}", i);
        let v = &s.value;
        quote!(pub const #c: #p::ScopeName = #p::ScopeName(#v);)
    });

    // The return type gains the 401/403/429 documentation.
    let ret: Type = match &m.sig.output {
        ReturnType::Default => parse_quote!(()),
        ReturnType::Type(_, t) => (**t).clone(),
    };
    m.sig.output = parse_quote!(-> #p::Secured<#ret, #req>);
    let body = &m.block;
    m.block = parse_quote!({
        #p::Secured::<#ret, #req>::new(async move #body.await)
    });

    quote! {
        #items
        impl #req { #(#scope_consts)* }
        impl #p::OperationOutput<#ret> for #req {
            fn convert(value: #ret) -> #p::PoemResult<#p::Response> {
                ::core::result::Result::map(
                    #p::IntoResult::into_result(value),
                    #p::IntoResponse::into_response,
                )
            }
        }
    }
}

/// `impl Protected` for an `#[OpenApi]` type.
pub(crate) fn protected_type(
    krate: &syn::Path,
    self_ty: &Type,
    generics: &Generics,
) -> TokenStream {
    let (ig, _, wc) = generics.split_for_impl();
    quote!(impl #ig #krate::Protected for #self_ty #wc {})
}
