//! Turns a validated declaration into tokens: a static policy, a zero-sized
//! requirement type, and one guard parameter. All logic stays in the runtime.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::{
    parse_quote, FnArg, Generics, Ident, ImplItemFn, ItemFn, LitStr, ReturnType, Type, Visibility,
};

use crate::model::{Decl, Grant, Group, GroupMode, Kind, Name, RateKey, RoleMode, Roles};

fn strs(names: &[Name]) -> TokenStream {
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
        if d.auth.bearer {
            parts.push(quote!(#p::AuthKinds::BEARER));
        }
        if d.auth.api_key {
            parts.push(quote!(#p::AuthKinds::API_KEY));
        }
        if d.auth.basic {
            parts.push(quote!(#p::AuthKinds::BASIC));
        }
        let first = parts.remove(0);
        quote!(#first #(.or(#parts))*)
    };
    let scopes = strs(&d.scopes);
    let permissions = strs(&d.permissions);
    let mut calls = Vec::new();
    calls.push(quote!(.with_auth(#auth)));
    if !d.scopes.is_empty() {
        calls.push(quote!(.with_scopes(#scopes)));
    }
    if let Some(r) = &d.roles {
        let roles = roles(&p, r);
        calls.push(quote!(.with_roles(#roles)));
    }
    if !d.permissions.is_empty() {
        calls.push(quote!(.with_permissions(#permissions)));
    }
    if let Some(r) = &d.rate {
        let (c, s) = (r.value.count, r.value.period_secs);
        let burst = r.value.burst.map(|b| quote!(.with_burst(#b)));
        calls.push(quote!(.with_rate(#p::Rate::new(#c, #s) #burst)));
    }
    let rate_key = d.rate_key.as_ref().map(|k| match &k.value {
        RateKey::Ip => quote!(#p::RateKey::Ip),
        RateKey::User => quote!(#p::RateKey::User),
        RateKey::ApiKey => quote!(#p::RateKey::ApiKey),
        RateKey::IpUser => quote!(#p::RateKey::IpUser),
        RateKey::Custom(_) => quote!(#p::RateKey::Custom(#req::__RATE_KEY)),
    });
    if let Some(k) = rate_key {
        calls.push(quote!(.with_rate_key(#k)));
    }
    if let Some(g) = &d.rate_group {
        let g = LitStr::new(&g.value, g.span);
        calls.push(quote!(.with_rate_group(#g)));
    }
    if !d.groups.is_empty() {
        calls.push(quote!(.with_rule(&#req::__RULE)));
    }
    if let Some(path) = &d.check {
        calls.push(quote!(.with_check(#req::__check as #p::CheckFn)));
        let name = quote!(#path).to_string().replace(' ', "");
        calls.push(quote!(.with_check_name(#name)));
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
    for (what, n) in d.all_names() {
        let method = format_ident!("declares_{}", what);
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
    out
}

/// `Roles::Any(&[..])` / `Roles::All(&[..])`.
fn roles(p: &TokenStream, r: &Roles) -> TokenStream {
    let names = strs(&r.names);
    match r.mode {
        RoleMode::Any => quote!(#p::Roles::Any(#names)),
        RoleMode::All => quote!(#p::Roles::All(#names)),
    }
}

/// The runtime `Rule` of the top-level groups (ANDed when several).
fn rule(p: &TokenStream, groups: &[Group]) -> TokenStream {
    fn group(p: &TokenStream, g: &Group) -> TokenStream {
        let members = g.members.iter().map(|m| match m {
            Grant::Scopes(v) => {
                let v = strs(v);
                quote!(#p::Rule::Scopes(#v))
            }
            Grant::Roles(r) => {
                let r = roles(p, r);
                quote!(#p::Rule::Roles(#r))
            }
            Grant::Permissions(v) => {
                let v = strs(v);
                quote!(#p::Rule::Permissions(#v))
            }
            Grant::Group(g) => group(p, g),
        });
        match g.mode {
            GroupMode::Any => quote!(#p::Rule::Any(&[#(#members),*])),
            GroupMode::All => quote!(#p::Rule::All(&[#(#members),*])),
        }
    }
    match groups {
        [one] => group(p, one),
        _ => {
            let all = groups.iter().map(|g| group(p, g));
            quote!(#p::Rule::All(&[#(#all),*]))
        }
    }
}

fn list(v: &[Name]) -> String {
    v.iter()
        .map(|n| format!("`{}`", n.value))
        .collect::<Vec<_>>()
        .join(", ")
}

fn roles_text(r: &Roles) -> String {
    let mode = match r.mode {
        RoleMode::Any if r.names.len() > 1 => "one of the roles",
        RoleMode::Any => "the role",
        RoleMode::All => "all of the roles",
    };
    format!("{mode} {}", list(&r.names))
}

/// "the scope `a`" or "all of the scopes `a`, `b`".
fn all_of(what: &str, v: &[Name]) -> String {
    match v {
        [one] => format!("the {what} `{}`", one.value),
        _ => format!("all of the {what}s {}", list(v)),
    }
}

/// A group in words; nested groups are parenthesised.
fn group_text(g: &Group, nested: bool) -> String {
    let parts: Vec<String> = g
        .members
        .iter()
        .map(|m| match m {
            Grant::Scopes(v) => all_of("scope", v),
            Grant::Roles(r) => roles_text(r),
            Grant::Permissions(v) => all_of("permission", v),
            Grant::Group(g) => group_text(g, true),
        })
        .collect();
    if let [one] = parts.as_slice() {
        return one.clone();
    }
    let body = parts.join(match g.mode {
        GroupMode::Any => " or ",
        GroupMode::All => " and ",
    });
    match (nested, g.mode) {
        (true, _) => format!("({body})"),
        (false, GroupMode::Any) => format!("either {body}"),
        (false, GroupMode::All) => body,
    }
}

/// The documented meaning of a 403 for this declaration, composition included.
pub(crate) fn forbidden_doc(d: &Decl) -> String {
    let mut parts = Vec::new();
    if !d.scopes.is_empty() {
        parts.push(format!("all of the scopes {}", list(&d.scopes)));
    }
    if let Some(r) = &d.roles {
        parts.push(roles_text(r));
    }
    if !d.permissions.is_empty() {
        parts.push(format!("all of the permissions {}", list(&d.permissions)));
    }
    parts.extend(d.groups.iter().map(|g| group_text(g, false)));
    let sep = if d.groups.is_empty() { "; " } else { "; and " };
    let mut doc = if parts.is_empty() {
        "Forbidden.".to_owned()
    } else {
        format!("Forbidden unless the caller has {}.", parts.join(sep))
    };
    if d.check.is_some() {
        doc.push_str(" An object-level check also applies.");
    }
    doc
}

/// The documented 429: the limit, what it counts per, and the headers.
pub(crate) fn rate_doc(d: &Decl) -> String {
    let Some(rate) = &d.rate else {
        return "Rate limit exceeded; see `Retry-After`.".to_owned();
    };
    let r = &rate.value;
    let unit = match r.period_secs {
        1 => "second".to_owned(),
        60 => "minute".to_owned(),
        3600 => "hour".to_owned(),
        86_400 => "day".to_owned(),
        s => format!("{s} s"),
    };
    let per = match d.rate_key.as_ref().map(|k| &k.value) {
        None if d.kind == Kind::Public => "per client IP".to_owned(),
        None | Some(RateKey::User) => "per caller".to_owned(),
        Some(RateKey::Ip) => "per client IP".to_owned(),
        Some(RateKey::ApiKey) => "per API key".to_owned(),
        Some(RateKey::IpUser) => "per client IP and caller".to_owned(),
        Some(RateKey::Custom(p)) => format!(
            "per `{}`",
            p.segments
                .last()
                .map(|s| s.ident.to_string())
                .unwrap_or_default()
        ),
    };
    let burst = r
        .burst
        .map(|b| format!(", bursts of {b}"))
        .unwrap_or_default();
    format!(
        "Rate limit exceeded: {} requests per {unit} {per}{burst}. `Retry-After` says when to retry; `RateLimit-Policy` and `RateLimit` describe the limit.",
        r.count
    )
}

/// The requirement type of one declaration and everything attached to it.
fn requirement(d: &Decl, req: &Ident, vis: &Visibility, id: &TokenStream) -> TokenStream {
    let k = &d.krate;
    let p = quote!(#k::__private);
    let policy = policy(d, id, req);
    let mut inherent = TokenStream::new();
    if !d.groups.is_empty() {
        let rule = rule(&p, &d.groups);
        inherent.extend(quote!(const __RULE: #p::Rule = #rule;));
    }
    if let Some(RateKey::Custom(path)) = d.rate_key.as_ref().map(|k| &k.value) {
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
    let rate_doc = rate_doc(d);
    quote! {
        #[doc(hidden)]
        #[allow(non_camel_case_types)]
        #vis struct #req;
        #[allow(clippy::needless_lifetimes)]
        impl #req { #inherent }
        impl #p::Requirement for #req {
            const POLICY: &'static #p::Policy = &#policy;
            const FORBIDDEN_DOC: &'static str = #forbidden;
            const RATE_DOC: &'static str = #rate_doc;
        }
        #checks
    }
}

fn protected_impl(krate: &syn::Path, ident: &Ident, generics: &Generics) -> TokenStream {
    crate::table::handler_impl(krate, ident, generics)
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

/// The requirement type of an operation.
pub(crate) fn operation_requirement(self_name: &Ident, name: &Ident) -> Ident {
    format_ident!("__secure_{}_{}", self_name, name)
}

/// poem-openapi: rewrites one operation in place and returns the items that
/// must stand beside the impl.
pub(crate) fn operation(d: &Decl, m: &mut ImplItemFn, self_name: &Ident) -> TokenStream {
    let k = &d.krate;
    let p = quote!(#k::__private);
    let name = &m.sig.ident;
    let req = operation_requirement(self_name, name);
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
