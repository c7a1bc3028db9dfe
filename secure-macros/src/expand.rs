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
    if let Some(c) = &d.check {
        if c.args.is_none() {
            calls.push(quote!(.with_check(#req::__check as #p::CheckFn)));
        }
        let name = c.name();
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
    let policy = quote!(#ctor(#id) #(#calls)*);
    if d.catalogue.is_some() || public {
        return policy;
    }
    // The crate's `crate_catalogue!`, if it declares one, found as the
    // checks find it (see `catalogue_checks`): the OpenAPI scheme then has
    // its token URL and scope descriptions too.
    let found = format_ident!("{}", crate::crate_catalogue::NAME);
    quote! {{
        #[allow(unused_imports)]
        use #p::no_crate_catalogue::*;
        {
            #[allow(unused_imports)]
            use crate::*;
            match #found {
                ::core::option::Option::Some(__secure_cat) => #policy.with_catalogue(__secure_cat.catalogue),
                ::core::option::Option::None => #policy,
            }
        }
    }}
}

/// Const assertions that every scope, role and permission is in the catalogue,
/// each spanned at its literal, with the nearest declared name in the message
/// ("did you mean"). Without `catalogue = ..`, the crate's `crate_catalogue!`
/// is looked up (see `crate_catalogue.rs`), and nothing is checked when the
/// crate declares none.
fn catalogue_checks(d: &Decl) -> TokenStream {
    let p = {
        let k = &d.krate;
        quote!(#k::__private)
    };
    let mut out = TokenStream::new();
    for (what, n) in d.all_names() {
        let kind = match what {
            "scope" => format_ident!("Scope"),
            "role" => format_ident!("Role"),
            _ => format_ident!("Permission"),
        };
        let lit = LitStr::new(&n.value, n.span);
        // `cat`: a `&Catalogue`; `name`: its name as written.
        let assert = |cat: TokenStream, name: TokenStream| {
            quote_spanned! {n.span=>
                if !#cat.declares(#p::NameKind::#kind, #lit) {
                    let __secure_msg = #p::undeclared(#cat, #p::NameKind::#kind, #lit, #name);
                    ::core::panic!("{}", __secure_msg.as_str())
                }
            }
        };
        out.extend(match &d.catalogue {
            Some(cat) => {
                let cat_name = cat
                    .segments
                    .last()
                    .map(|s| s.ident.to_string())
                    .unwrap_or_default();
                let check = assert(quote!((&#cat)), quote!(#cat_name));
                quote_spanned! {n.span=> const _: () = #check; }
            }
            None => {
                let found = format_ident!("{}", crate::crate_catalogue::NAME);
                let check = assert(quote!(__secure_cat.catalogue), quote!(__secure_cat.name));
                quote_spanned! {n.span=>
                    const _: () = {
                        #[allow(unused_imports)]
                        use #p::no_crate_catalogue::*;
                        const _: () = {
                            #[allow(unused_imports)]
                            use crate::*;
                            if let ::core::option::Option::Some(__secure_cat) = #found {
                                #check
                            }
                        };
                    };
                }
            }
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
fn rule(p: &TokenStream, groups: &[Group], check: &str) -> TokenStream {
    fn group(p: &TokenStream, g: &Group, check: &str) -> TokenStream {
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
            Grant::Group(g) => group(p, g, check),
            Grant::Check => quote!(#p::Rule::Check(#check)),
        });
        match g.mode {
            GroupMode::Any => quote!(#p::Rule::Any(&[#(#members),*])),
            GroupMode::All => quote!(#p::Rule::All(&[#(#members),*])),
        }
    }
    match groups {
        [one] => group(p, one, check),
        _ => {
            let all = groups.iter().map(|g| group(p, g, check));
            quote!(#p::Rule::All(&[#(#all),*]))
        }
    }
}

/// The requirement type of one declaration and everything attached to it.
fn requirement(d: &Decl, req: &Ident, vis: &Visibility, id: &TokenStream) -> TokenStream {
    let k = &d.krate;
    let p = quote!(#k::__private);
    let policy = policy(d, id, req);
    let mut inherent = TokenStream::new();
    if !d.groups.is_empty() {
        let check = d.check.as_ref().map(|c| c.name()).unwrap_or_default();
        let rule = rule(&p, &d.groups, &check);
        inherent.extend(quote!(const __RULE: #p::Rule = #rule;));
    }
    if let Some(RateKey::Custom(path)) = d.rate_key.as_ref().map(|k| &k.value) {
        inherent.extend(
            quote_spanned! {path.segments.last().map_or(Span::call_site(), |s| s.ident.span())=>
                const __RATE_KEY: #p::RateKeyFn = #path;
            },
        );
    }
    if let Some(c) = d.check.as_ref().filter(|c| c.args.is_none()) {
        let (path, span) = (&c.path, c.span());
        inherent.extend(quote_spanned! {span=>
            fn __check<'a>(principal: &'a #p::Principal, request: &'a #p::Request) -> #p::CheckFuture<'a> {
                #p::check_future(#path(principal, request))
            }
        });
    }
    let checks = catalogue_checks(d);
    let forbidden = crate::docs::forbidden_doc(d);
    let rate_doc = crate::docs::rate_doc(d);
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
    let typed = d
        .check
        .as_ref()
        .and_then(|c| c.args.as_ref().map(|a| (c, a)));
    let (Some(at), true) = (bare, f.sig.generics.params.is_empty()) else {
        let error = typed.map(|(c, _)| {
            let msg = format!(
                "`check = {}` needs a non-generic handler under a bare `#[handler]`: the check runs between the extraction of its arguments and the handler's code, which only the endpoint `#[secure]` writes for such a handler can do",
                c.name()
            );
            syn::Error::new(c.span(), msg).into_compile_error()
        });
        let guard: FnArg = parse_quote!(_: #k::__private::Guard<#req>);
        f.sig.inputs.insert(0, guard);
        return quote! {
            #error
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
    let mut errors = crate::errors::Errors::default();
    // The check's arguments are extracted first, then the check runs, then
    // the other parameters (a body among them) are extracted.
    let sources = typed
        .and_then(|(c, a)| crate::typed_check::resolve(c, a, &f.sig.inputs, &name, &mut errors));
    let asserts = typed
        .zip(sources.as_ref())
        .map(|((_, a), s)| crate::typed_check::assert_arguments(k, s, a, &f.sig.inputs));
    let named: Vec<usize> = sources
        .iter()
        .flatten()
        .filter_map(|s| match s {
            crate::typed_check::Source::Input(i) => Some(*i),
            crate::typed_check::Source::Receiver => None,
        })
        .collect();
    let mut extract_named = Vec::new();
    let mut extract = Vec::new();
    let mut args = Vec::new();
    for (i, input) in f.sig.inputs.iter().enumerate() {
        if let FnArg::Typed(pat) = input {
            let ty = &pat.ty;
            let arg = format_ident!("p{}", i);
            let step = quote! {
                let #arg = <#ty as #poem::FromRequest>::from_request(&req, &mut body).await?;
            };
            if named.contains(&i) {
                extract_named.push(step);
            } else {
                extract.push(step);
            }
            args.push(arg);
        }
    }
    let run_check = typed.filter(|_| sources.is_some()).map(|(c, a)| {
        let who = format_ident!("__secure_who");
        let binds = named.iter().filter_map(|i| match &f.sig.inputs[*i] {
            FnArg::Typed(t) => {
                let pat = crate::typed_check::by_ref(&t.pat);
                let arg = format_ident!("p{}", i);
                Some(quote!(#[allow(unused_variables)] let #pat = &#arg;))
            }
            FnArg::Receiver(_) => None,
        });
        let call_args: Vec<TokenStream> = a.iter().map(|a| quote!(#a)).collect();
        let call = crate::typed_check::call(c, &who, &call_args);
        quote! {
            if let ::core::option::Option::Some(#who) = #p::check_due(&req, <#req as #p::Requirement>::POLICY) {
                #asserts
                #(#binds)*
                #p::typed_check(<#req as #p::Requirement>::POLICY, #who, #call).await?;
            }
        }
    });
    let errors = (!errors.is_empty()).then(|| errors.into_compile_error());
    let call_await = f.sig.asyncness.is_some().then(|| quote!(.await));
    quote! {
        #errors
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
                #(#extract_named)*
                #run_check
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
    let mut errors = crate::errors::Errors::default();
    let run_check = d
        .check
        .as_ref()
        .and_then(|c| c.args.as_ref().map(|a| (c, a)))
        .and_then(|(c, a)| {
            let sources = crate::typed_check::resolve(c, a, &m.sig.inputs, name, &mut errors)?;
            let asserts = crate::typed_check::assert_arguments(k, &sources, a, &m.sig.inputs);
            let args: Vec<TokenStream> = sources
                .iter()
                .zip(a)
                .map(|(s, id)| match s {
                    crate::typed_check::Source::Receiver => quote!(#id),
                    crate::typed_check::Source::Input(_) => quote!(&#id),
                })
                .collect();
            let who = format_ident!("__secure_who");
            let call = crate::typed_check::call(c, &who, &args);
            Some(quote! {
                if let ::core::option::Option::Some(#who) = __secure_guard.check_due() {
                    #asserts
                    if let ::core::result::Result::Err(e) = #p::typed_check(<#req as #p::Requirement>::POLICY, #who, #call).await {
                        return #p::Secured::<#ret, #req>::refused(e);
                    }
                }
            })
        });
    m.sig.output = parse_quote!(-> #p::Secured<#ret, #req>);
    let body = &m.block;
    m.block = parse_quote!({
        #run_check
        #p::Secured::<#ret, #req>::new(async move #body.await)
    });
    let errors = (!errors.is_empty()).then(|| errors.into_compile_error());

    quote! {
        #errors
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
