//! `check = f(a, b)`: a check on the handler's own parameters. The macro
//! finds each named parameter, refuses a body, and writes the call that runs
//! the check once those parameters are extracted and before the handler's
//! code, only when the guard left word that it is due. The `check = ...`
//! value itself (`path` or `path(a, b)`) is parsed here too.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::{
    punctuated::Punctuated, spanned::Spanned as _, token::Comma, Expr, FnArg, Ident, Pat, Path,
};

use crate::errors::Errors;

/// `check = path` (a rule on the caller and the request) or
/// `check = path(a, b)` (a rule on the caller and the handler's own
/// parameters `a` and `b`, run once they are extracted).
pub(crate) struct Check {
    pub(crate) path: Path,
    /// `None` for `check = path`; the parameter names otherwise.
    pub(crate) args: Option<Vec<syn::Ident>>,
}

impl Check {
    /// The check as written, for documentation: `owns_note(id, self)`.
    pub(crate) fn name(&self) -> String {
        let path = self
            .path
            .segments
            .iter()
            .map(|s| s.ident.to_string())
            .collect::<Vec<_>>()
            .join("::");
        match &self.args {
            None => path,
            Some(a) => format!(
                "{path}({})",
                a.iter()
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
    /// The span of the check's function name.
    pub(crate) fn span(&self) -> Span {
        self.path
            .segments
            .last()
            .map_or_else(Span::call_site, |s| s.ident.span())
    }
}

/// Parses `check = ...` into `slot`: a declaration has one check.
pub(crate) fn set_check(slot: &mut Option<Check>, e: &Expr, errors: &mut Errors) -> bool {
    let Some(c) = check(e, errors) else {
        return false;
    };
    if slot.is_some() {
        errors.at(
            e.span(),
            "a declaration has one `check`: combine the rules in one function, or name the same check once",
        );
        return false;
    }
    *slot = Some(c);
    true
}

/// `path` or `path(a, b, self)`.
fn check(e: &Expr, errors: &mut Errors) -> Option<Check> {
    const EXAMPLE: &str =
        "expected a path to an async fn, e.g. `check = owns_item` or `check = owns_item(id, store)`";
    match e {
        Expr::Path(p) => Some(Check {
            path: p.path.clone(),
            args: None,
        }),
        Expr::Call(call) => {
            let Expr::Path(f) = &*call.func else {
                errors.at(call.func.span(), EXAMPLE);
                return None;
            };
            let mut args = Vec::new();
            for a in &call.args {
                match a {
                    Expr::Path(p)
                        if p.qself.is_none()
                            && p.path.segments.len() == 1
                            && p.path.segments[0].arguments.is_none() =>
                    {
                        let id = p.path.segments[0].ident.clone();
                        if args.contains(&id) {
                            errors.at(id.span(), format!("`{id}` is passed to the check twice"));
                            return None;
                        }
                        args.push(id);
                    }
                    _ => {
                        errors.at(
                            a.span(),
                            "a check argument names one of the handler's parameters (or `self`), e.g. `check = owns_item(id, store)`",
                        );
                        return None;
                    }
                }
            }
            Some(Check {
                path: f.path.clone(),
                args: Some(args),
            })
        }
        _ => {
            errors.at(e.span(), EXAMPLE);
            None
        }
    }
}

/// The prefix of the parameters generated code adds to an operation.
const GENERATED: &str = "__secure_";

/// Where a check argument comes from.
pub(crate) enum Source {
    /// `self`: the API value of a poem-openapi impl.
    Receiver,
    /// The parameter at this index of the function's inputs.
    Input(usize),
}

/// Whether `pat` binds `name`.
fn binds(pat: &Pat, name: &Ident) -> bool {
    let mut names = Vec::new();
    bound_names(pat, &mut names);
    names.iter().any(|n| name == n)
}

/// Every name `pat` binds, in order.
fn bound_names(pat: &Pat, out: &mut Vec<String>) {
    match pat {
        Pat::Ident(p) => {
            out.push(p.ident.to_string());
            if let Some((_, s)) = &p.subpat {
                bound_names(s, out);
            }
        }
        Pat::TupleStruct(p) => p.elems.iter().for_each(|e| bound_names(e, out)),
        Pat::Tuple(p) => p.elems.iter().for_each(|e| bound_names(e, out)),
        Pat::Struct(p) => p.fields.iter().for_each(|f| bound_names(&f.pat, out)),
        Pat::Reference(p) => bound_names(&p.pat, out),
        Pat::Type(p) => bound_names(&p.pat, out),
        Pat::Paren(p) => bound_names(&p.pat, out),
        _ => {}
    }
}

/// The pattern with every `mut` removed, to bind it by reference.
pub(crate) fn by_ref(pat: &Pat) -> Pat {
    let mut pat = pat.clone();
    fn strip(p: &mut Pat) {
        match p {
            Pat::Ident(i) => {
                i.mutability = None;
                i.by_ref = None;
                if let Some((_, s)) = &mut i.subpat {
                    strip(s);
                }
            }
            Pat::TupleStruct(t) => t.elems.iter_mut().for_each(strip),
            Pat::Tuple(t) => t.elems.iter_mut().for_each(strip),
            Pat::Struct(s) => s.fields.iter_mut().for_each(|f| strip(&mut f.pat)),
            Pat::Reference(r) => strip(&mut r.pat),
            Pat::Type(t) => strip(&mut t.pat),
            Pat::Paren(p) => strip(&mut p.pat),
            _ => {}
        }
    }
    strip(&mut pat);
    pat
}

/// Finds each argument of `check` among `inputs`; an error spanned at the
/// argument when it is not a parameter or is `self` outside an API impl
/// (`None` then). Whether a parameter reads the body is for the compiler to
/// say: see [`assert_arguments`].
pub(crate) fn resolve(
    check: &Check,
    args: &[Ident],
    inputs: &Punctuated<FnArg, Comma>,
    fn_name: &Ident,
    errors: &mut Errors,
) -> Option<Vec<Source>> {
    let mut out = Vec::new();
    let mut ok = true;
    let mut names: Vec<String> = Vec::new();
    for i in inputs {
        if let FnArg::Typed(t) = i {
            bound_names(&t.pat, &mut names);
        }
    }
    // The guard parameters `#[deny_unprotected]` adds are not the user's.
    names.retain(|n| !n.starts_with(GENERATED));
    for arg in args {
        if arg == "self" {
            if matches!(inputs.first(), Some(FnArg::Receiver(_))) {
                out.push(Source::Receiver);
            } else {
                errors.at(
                    arg.span(),
                    format!(
                        "`{}` takes `self`, but `{fn_name}` has no `self`: pass state as a `Data<&T>` parameter",
                        check.name()
                    ),
                );
                ok = false;
            }
            continue;
        }
        let found = inputs
            .iter()
            .enumerate()
            .find_map(|(i, input)| match input {
                FnArg::Typed(t)
                    if binds(&t.pat, arg) && !arg.to_string().starts_with(GENERATED) =>
                {
                    Some((i, t))
                }
                _ => None,
            });
        let Some((i, t)) = found else {
            let have = if names.is_empty() {
                "it has none".to_owned()
            } else {
                format!("its parameters are `{}`", names.join("`, `"))
            };
            errors.at(
                arg.span(),
                format!("`{arg}` is not a parameter of `{fn_name}`: a check argument names a parameter of the handler; {have}"),
            );
            ok = false;
            continue;
        };
        let _ = t;
        out.push(Source::Input(i));
    }
    ok.then_some(out)
}

/// Compile-time proof that every parameter passed to the check is one it
/// may take (path, query, header, cookie, `Data<&T>` state, never a body):
/// each is a `CheckArgument`, whose message says so, spanned at the
/// argument.
pub(crate) fn assert_arguments(
    krate: &syn::Path,
    sources: &[Source],
    args: &[Ident],
    inputs: &Punctuated<FnArg, Comma>,
) -> TokenStream {
    let asserts = sources.iter().zip(args).filter_map(|(s, arg)| match s {
        Source::Input(i) => match &inputs[*i] {
            FnArg::Typed(t) => {
                let ty = &t.ty;
                Some(quote_spanned!(arg.span()=> #krate::__private::check_argument::<#ty>();))
            }
            FnArg::Receiver(_) => None,
        },
        Source::Receiver => None,
    });
    quote!(#(#asserts)*)
}

/// The call of the check with the principal `who` and `args`, spanned at the
/// check's name so that a wrong signature is reported there.
pub(crate) fn call(check: &Check, who: &Ident, args: &[TokenStream]) -> TokenStream {
    let path = &check.path;
    quote_spanned!(check.span()=> #path(#who, #(#args),*))
}
