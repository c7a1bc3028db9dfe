//! `#[deny_unprotected]`: every handler and operation inside must be declared.
//! On `#[OpenApi]` impls it also performs the rewrite of each operation, since
//! method attributes below `#[OpenApi]` would expand too late.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::{
    parse_quote, spanned::Spanned, Attribute, ImplItem, Item, ItemImpl, ItemMod, Meta, Path, Type,
};

use crate::{
    args::{RawArg, RawArgs, RawValue},
    check::{check, gives},
    errors::Errors,
    expand,
    keys::{self, Key, Places},
    model::{Decl, Kind},
    secure::{is_attr, is_decl},
};

#[derive(Clone)]
struct Ctx {
    catalogue: Option<Path>,
    krate: Option<Path>,
}

fn parse_ctx(tokens: TokenStream, base: &Ctx, errors: &mut Errors) -> Ctx {
    let mut ctx = base.clone();
    let raw = match syn::parse2::<RawArgs>(tokens) {
        Ok(r) => r.0,
        Err(e) => {
            errors.push(e);
            return ctx;
        }
    };
    for arg in crate::args::once(&raw, |_| false, "", errors) {
        let name = arg.name();
        let key = match Key::lookup(&name) {
            Some(k) if k.allowed(Places::DENY) => k,
            Some(_) => {
                errors.at(
                    arg.key.span(),
                    format!(
                        "`{name}` belongs on each `#[secure(...)]`, not on `#[deny_unprotected]`, which takes only {}",
                        keys::names_at(Places::DENY)
                    ),
                );
                continue;
            }
            None => {
                errors.at(
                    arg.key.span(),
                    keys::unknown(&name, Places::DENY, "`#[deny_unprotected]`"),
                );
                continue;
            }
        };
        let value = match (&arg.value, key) {
            (RawValue::Expr(syn::Expr::Path(p)), _) => p.path.clone(),
            (
                RawValue::Expr(syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
                })),
                Key::Crate,
            ) => match s.parse() {
                Ok(p) => p,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            },
            _ => {
                errors.at(arg.span(), format!("expected a path: {}", key.example()));
                continue;
            }
        };
        if key == Key::Catalogue {
            ctx.catalogue = Some(value);
        } else {
            ctx.krate = Some(value);
        }
    }
    ctx
}

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let ctx = parse_ctx(
        args,
        &Ctx {
            catalogue: None,
            krate: None,
        },
        &mut errors,
    );
    let out = match syn::parse2::<Item>(item.clone()) {
        Ok(Item::Mod(mut m)) => {
            if m.content.is_none() {
                errors.at(
                    m.ident.span(),
                    "`#[deny_unprotected]` needs an inline `mod name { ... }`; for file modules rely on `poem_secure::route` (see `Protected`)",
                );
            } else {
                module(&mut m, &ctx, &mut errors);
            }
            quote!(#m)
        }
        Ok(Item::Impl(mut imp)) => {
            if imp.attrs.iter().any(|a| is_attr(a, "OpenApi")) {
                let extra = openapi_impl(&mut imp, &ctx, &mut errors);
                quote!(#extra #imp)
            } else {
                errors.at(
                    Span::call_site(),
                    "`#[deny_unprotected]` must stand above `#[OpenApi]` on the impl (no `#[OpenApi]` follows it: if it is above, swap the two)",
                );
                quote!(#imp)
            }
        }
        _ => {
            errors.at(Span::call_site(), "`#[deny_unprotected]` applies to an inline `mod { ... }` or to an `#[OpenApi]` impl");
            item
        }
    };
    let e = errors.into_compile_error();
    quote!(#e #out)
}

fn module(m: &mut ItemMod, ctx: &Ctx, errors: &mut Errors) {
    let Some((_, items)) = &mut m.content else {
        return;
    };
    let mut out = Vec::with_capacity(items.len());
    for mut item in std::mem::take(items) {
        match &mut item {
            Item::Fn(f) if f.attrs.iter().any(|a| is_attr(a, "handler")) => {
                let decls: Vec<usize> = f
                    .attrs
                    .iter()
                    .enumerate()
                    .filter(|(_, a)| is_decl(a).is_some())
                    .map(|(i, _)| i)
                    .collect();
                if decls.is_empty() {
                    errors.at(
                        f.sig.ident.span(),
                        format!(
                            "handler `{}` has no security declaration: add `#[secure(...)]` or `#[public]` above `#[handler]`",
                            f.sig.ident
                        ),
                    );
                }
                for i in decls {
                    if is_decl(&f.attrs[i]) == Some(Kind::Secure) {
                        inject(&mut f.attrs[i], ctx);
                    }
                }
            }
            Item::Mod(inner) if inner.content.is_none() => {
                let name = &inner.ident;
                errors.at(
                    name.span(),
                    format!(
                        "file module `{name}` inside a `#[deny_unprotected]` module: a macro cannot read its file, so its handlers would go unchecked; write `mod {name} {{ ... }}` inline here, or declare `mod {name};` outside the checked module and put `#[deny_unprotected]` on an inline module inside its file"
                    ),
                );
            }
            Item::Mod(inner) => {
                let mut sub = ctx.clone();
                inner.attrs.retain(|a| {
                    if is_attr(a, "deny_unprotected") {
                        let tokens = match &a.meta {
                            Meta::List(l) => l.tokens.clone(),
                            _ => TokenStream::new(),
                        };
                        sub = parse_ctx(tokens, &sub, errors);
                        false
                    } else {
                        true
                    }
                });
                module(inner, &sub, errors);
            }
            Item::Impl(imp) if imp.attrs.iter().any(|a| is_attr(a, "OpenApi")) => {
                let mut sub = ctx.clone();
                imp.attrs.retain(|a| {
                    if is_attr(a, "deny_unprotected") {
                        let tokens = match &a.meta {
                            Meta::List(l) => l.tokens.clone(),
                            _ => TokenStream::new(),
                        };
                        sub = parse_ctx(tokens, &sub, errors);
                        false
                    } else {
                        true
                    }
                });
                let extra = openapi_impl(imp, &sub, errors);
                out.push(Item::Verbatim(extra));
            }
            _ => {}
        }
        out.push(item);
    }
    *items = out;
}

/// Adds the enclosing `catalogue`/`crate` to a `#[secure]` that names none.
fn inject(attr: &mut Attribute, ctx: &Ctx) {
    let existing = match &attr.meta {
        Meta::List(l) => match syn::parse2::<RawArgs>(l.tokens.clone()) {
            Ok(r) => r.0,
            Err(_) => return, // `#[secure]` itself reports the parse error
        },
        Meta::Path(_) => Vec::new(),
        Meta::NameValue(_) => return,
    };
    let has = |k: Key| existing.iter().any(|a: &RawArg| a.name() == k.name());
    let mut add = Vec::new();
    if let (Some(c), false) = (&ctx.catalogue, has(Key::Catalogue)) {
        add.push(quote!(catalogue = #c));
    }
    if let (Some(k), false) = (&ctx.krate, has(Key::Crate)) {
        add.push(quote!(crate = #k));
    }
    if add.is_empty() {
        return;
    }
    let path = attr.path().clone();
    let old = match &attr.meta {
        Meta::List(l) if !l.tokens.is_empty() => {
            let t = &l.tokens;
            quote!(#t,)
        }
        _ => TokenStream::new(),
    };
    *attr = parse_quote!(#[#path(#old #(#add),*)]);
}

fn openapi_impl(imp: &mut ItemImpl, ctx: &Ctx, errors: &mut Errors) -> TokenStream {
    let krate: Path = ctx
        .krate
        .clone()
        .unwrap_or_else(|| parse_quote!(::poem_secure));
    let self_name = match &*imp.self_ty {
        Type::Path(p) => p.path.segments.last().map(|s| s.ident.clone()),
        _ => None,
    };
    let Some(self_name) = self_name else {
        errors.at(
            imp.self_ty.span(),
            "`#[deny_unprotected]` needs a named API type (`impl Api { ... }`)",
        );
        return TokenStream::new();
    };
    let mut extra = TokenStream::new();
    let mut used: Vec<String> = Vec::new();
    for item in &mut imp.items {
        let ImplItem::Fn(m) = item else { continue };
        if !m.attrs.iter().any(|a| is_attr(a, "oai")) {
            continue;
        }
        // Each declaration is read here and removed; the operation gets the
        // hidden marker instead (below), and the declaration's path is kept
        // used (`use poem_secure::secure` must not turn into a warning).
        let mut found: Vec<(Kind, Attribute)> = Vec::new();
        m.attrs.retain(|a| match is_decl(a) {
            Some(k) => {
                found.push((k, a.clone()));
                false
            }
            None => true,
        });
        for (_, a) in &found {
            let path = a.path();
            let key = quote!(#path).to_string();
            if !used.contains(&key) {
                used.push(key);
                extra.extend(quote!(#[allow(unused_imports)] use #path as _;));
            }
        }
        let Some((kind, attr)) = found.first().cloned() else {
            errors.at(
                m.sig.ident.span(),
                format!(
                    "operation `{}` has no security declaration: add `#[secure(...)]` or `#[public]` above `#[oai(...)]`",
                    m.sig.ident
                ),
            );
            continue;
        };
        for (k, a) in &found[1..] {
            let msg = if *k == kind {
                format!("{} is given twice: keep one", k.attr())
            } else {
                format!(
                    "{} and {} on one operation contradict each other: keep one",
                    kind.attr(),
                    k.attr()
                )
            };
            errors.push(syn::Error::new_spanned(a, msg));
        }
        let tokens = match &attr.meta {
            Meta::List(l) => l.tokens.clone(),
            _ => TokenStream::new(),
        };
        let mut local = Errors::default();
        let raw = match syn::parse2::<RawArgs>(tokens) {
            Ok(r) => r.0,
            Err(e) => {
                local.push(e);
                Vec::new()
            }
        };
        let mut decl = Decl::from_args(kind, &raw, &mut local);
        check(&decl, &mut local);
        if decl.catalogue.is_none() && kind == Kind::Secure {
            decl.catalogue = ctx.catalogue.clone();
        }
        if !gives(&decl, Key::Crate) {
            decl.krate = krate.clone();
        }
        if local.is_empty() {
            extra.extend(expand::operation(&decl, m, &self_name));
            crate::table::describe(&decl, m);
            let req = expand::operation_requirement(&self_name, &m.sig.ident);
            let k = &decl.krate;
            m.attrs.push(parse_quote!(#[#k::__private::checked(#req)]));
        } else {
            errors.append(local);
        }
    }
    extra.extend(crate::table::api_impl(&krate, imp));
    extra
}
