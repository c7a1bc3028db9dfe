//! Composed requirements: `any(...)` and `all(...)` groups of scopes, roles
//! and permissions, as `#[secure]` compiles them, and their pure evaluation
//! against a [`Principal`].
//!
//! A policy's [`rule`](crate::Policy::rule) holds the groups only; the
//! top-level `scopes`, `roles` and `permissions` of the declaration stay in
//! their own fields, and both must be met.

use std::fmt;

use crate::model::{policy::Roles, principal::Principal};

/// A requirement on the caller's grants, built by `#[secure(any(...))]`.
///
/// ```
/// use secure_runtime::{CredentialKind, Principal, Roles, Rule};
///
/// // any(roles = "admin", permissions = "notes:delete-any")
/// const RULE: Rule = Rule::Any(&[
///     Rule::Roles(Roles::Any(&["admin"])),
///     Rule::Permissions(&["notes:delete-any"]),
/// ]);
/// let moderator = Principal::builder(CredentialKind::Bearer, "m")
///     .permissions(["notes:delete-any"])
///     .build();
/// assert!(RULE.evaluate(&moderator).is_ok());
///
/// let user = Principal::builder(CredentialKind::Bearer, "u").build();
/// let missing = RULE.evaluate(&user).unwrap_err();
/// assert_eq!(missing.to_string(), "role `admin` or permission `notes:delete-any`");
/// assert_eq!(missing.insufficient_scope(), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rule {
    /// Every scope is granted.
    Scopes(&'static [&'static str]),
    /// The role requirement is met.
    Roles(Roles),
    /// Every permission is held.
    Permissions(&'static [&'static str]),
    /// Every member is met (`all(...)`; an empty list is met).
    All(&'static [Rule]),
    /// At least one member is met (`any(...)`; an empty list is not).
    Any(&'static [Rule]),
    /// The declaration's `check` passes (named as written: `owns_note(id, self)`).
    /// [`Rule::evaluate`] counts it as unmet: the decision runs the check only
    /// when the rest of the rule cannot be met without it.
    Check(&'static str),
}

impl Rule {
    /// Evaluates the rule against `principal`: `Ok(())` when it is met, else
    /// what is missing, reduced to the members that failed.
    ///
    /// Pure and allocation-free when the rule is met.
    ///
    /// ```
    /// use secure_runtime::{CredentialKind, Principal, Rule};
    ///
    /// const RULE: Rule = Rule::All(&[Rule::Scopes(&["items:read", "items:write"])]);
    /// let reader = Principal::builder(CredentialKind::Bearer, "r").scopes(["items:read"]).build();
    /// let missing = RULE.evaluate(&reader).unwrap_err();
    /// assert_eq!(missing.insufficient_scope(), Some(vec!["items:write"]));
    /// assert_eq!(missing.to_string(), "scope `items:write`");
    /// ```
    pub fn evaluate(&self, principal: &Principal) -> Result<(), Unmet> {
        match need(self, principal, false) {
            None => Ok(()),
            Some(need) => Err(Unmet { need }),
        }
    }

    /// Whether the rule would be met if its [`Check`](Rule::Check) passed:
    /// `false` means the check cannot help and need not run.
    ///
    /// ```
    /// use secure_runtime::{CredentialKind, Principal, Rule};
    ///
    /// // any(permissions = "notes:delete-any", check = owns_note(id, self))
    /// const RULE: Rule = Rule::Any(&[Rule::Permissions(&["notes:delete-any"]), Rule::Check("owns_note(id, self)")]);
    /// let user = Principal::builder(CredentialKind::Bearer, "u").build();
    /// assert!(RULE.evaluate(&user).is_err());
    /// assert!(RULE.met_if_check_passes(&user));
    /// assert_eq!(RULE.evaluate(&user).unwrap_err().to_string(),
    ///     "permission `notes:delete-any` or check `owns_note(id, self)`");
    /// ```
    pub fn met_if_check_passes(&self, principal: &Principal) -> bool {
        need(self, principal, true).is_none()
    }

    /// Whether a [`Check`](Rule::Check) stands anywhere in the rule.
    pub const fn mentions_check(&self) -> bool {
        match self {
            Rule::Check(_) => true,
            Rule::All(rs) | Rule::Any(rs) => {
                let mut i = 0;
                while i < rs.len() {
                    if rs[i].mentions_check() {
                        return true;
                    }
                    i += 1;
                }
                false
            }
            Rule::Scopes(_) | Rule::Roles(_) | Rule::Permissions(_) => false,
        }
    }
}

/// Everything a rule asks for, in words: `scope `a` and (role `admin` or
/// permission `p`)`.
impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_need(f, &full(self), false)
    }
}

/// What a caller lacks to meet a [`Rule`], from [`Rule::evaluate`].
///
/// Its [`Display`](fmt::Display) names it for a 403: `role `admin` or
/// permission `notes:delete-any``. When only scopes are missing (all of them
/// needed), [`insufficient_scope`](Unmet::insufficient_scope) lists them for
/// an RFC 6750 `insufficient_scope` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmet {
    need: Need,
}

impl Unmet {
    /// The scopes to grant when they alone are missing and granting all of
    /// them meets the rule; `None` when a role, a permission or a choice
    /// between alternatives is missing.
    ///
    /// ```
    /// use secure_runtime::{CredentialKind, Principal, Roles, Rule};
    ///
    /// const EITHER: Rule = Rule::Any(&[Rule::Scopes(&["a"]), Rule::Roles(Roles::Any(&["admin"]))]);
    /// let nobody = Principal::builder(CredentialKind::Bearer, "n").build();
    /// assert_eq!(EITHER.evaluate(&nobody).unwrap_err().insufficient_scope(), None);
    /// ```
    pub fn insufficient_scope(&self) -> Option<Vec<&'static str>> {
        let mut out = Vec::new();
        only_scopes(&self.need, &mut out).then_some(out)
    }
}

impl fmt::Display for Unmet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_need(f, &self.need, false)
    }
}

impl std::error::Error for Unmet {}

/// A requirement in words, as a tree: leaves are single names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Need {
    Scope(&'static str),
    Role(&'static str),
    Permission(&'static str),
    Check(&'static str),
    All(Vec<Need>),
    Any(Vec<Need>),
}

/// `All`/`Any` of one member is that member; nested groups of the same kind
/// are flattened.
fn group(any: bool, members: Vec<Need>) -> Need {
    let mut flat = Vec::with_capacity(members.len());
    for m in members {
        match m {
            Need::Any(inner) if any => flat.extend(inner),
            Need::All(inner) if !any => flat.extend(inner),
            other => flat.push(other),
        }
    }
    if flat.len() == 1 {
        if let Some(one) = flat.pop() {
            return one;
        }
    }
    if any {
        Need::Any(flat)
    } else {
        Need::All(flat)
    }
}

/// What `rule` asks for, whoever the caller.
fn full(rule: &Rule) -> Need {
    let names = |v: &[&'static str], leaf: fn(&'static str) -> Need| {
        group(false, v.iter().map(|n| leaf(n)).collect())
    };
    match rule {
        Rule::Scopes(v) => names(v, Need::Scope),
        Rule::Permissions(v) => names(v, Need::Permission),
        Rule::Roles(Roles::None) => Need::All(Vec::new()),
        Rule::Roles(Roles::Any(v)) => group(true, v.iter().map(|n| Need::Role(n)).collect()),
        Rule::Roles(Roles::All(v)) => names(v, Need::Role),
        Rule::All(rs) => group(false, rs.iter().map(full).collect()),
        Rule::Any(rs) => group(true, rs.iter().map(full).collect()),
        Rule::Check(name) => Need::Check(name),
    }
}

/// What `principal` lacks to meet `rule`; `None` when it is met. A check
/// counts as met only when `check_passes`.
fn need(rule: &Rule, principal: &Principal, check_passes: bool) -> Option<Need> {
    let lacking =
        |v: &[&'static str], has: &dyn Fn(&str) -> bool, leaf: fn(&'static str) -> Need| {
            if v.iter().all(|n| has(n)) {
                return None;
            }
            Some(group(
                false,
                v.iter().filter(|n| !has(n)).map(|n| leaf(n)).collect(),
            ))
        };
    match rule {
        Rule::Scopes(v) => lacking(v, &|n| principal.has_scope(n), Need::Scope),
        Rule::Permissions(v) => lacking(v, &|n| principal.has_permission(n), Need::Permission),
        Rule::Roles(Roles::None) => None,
        Rule::Roles(Roles::Any(v)) => {
            if v.iter().any(|n| principal.has_role(n)) {
                None
            } else {
                Some(group(true, v.iter().map(|n| Need::Role(n)).collect()))
            }
        }
        Rule::Roles(Roles::All(v)) => lacking(v, &|n| principal.has_role(n), Need::Role),
        Rule::All(rs) => {
            let failed: Vec<Need> = rs
                .iter()
                .filter_map(|r| need(r, principal, check_passes))
                .collect();
            (!failed.is_empty()).then(|| group(false, failed))
        }
        Rule::Any(rs) => {
            let mut failed = Vec::new();
            for r in rs.iter() {
                failed.push(need(r, principal, check_passes)?);
            }
            Some(group(true, failed))
        }
        Rule::Check(name) => (!check_passes).then_some(Need::Check(name)),
    }
}

fn only_scopes(need: &Need, out: &mut Vec<&'static str>) -> bool {
    match need {
        Need::Scope(s) => {
            out.push(s);
            true
        }
        Need::All(v) => v.iter().all(|n| only_scopes(n, out)),
        Need::Role(_) | Need::Permission(_) | Need::Check(_) | Need::Any(_) => false,
    }
}

fn write_need(f: &mut fmt::Formatter<'_>, need: &Need, nested: bool) -> fmt::Result {
    let (members, sep) = match need {
        Need::Scope(n) => return write!(f, "scope `{n}`"),
        Need::Role(n) => return write!(f, "role `{n}`"),
        Need::Permission(n) => return write!(f, "permission `{n}`"),
        Need::Check(n) => return write!(f, "check `{n}`"),
        Need::All(v) if v.is_empty() => return f.write_str("nothing"),
        Need::Any(v) if v.is_empty() => return f.write_str("an unsatisfiable `any()`"),
        Need::All(v) => (v, " and "),
        Need::Any(v) => (v, " or "),
    };
    if nested {
        f.write_str("(")?;
    }
    for (i, m) in members.iter().enumerate() {
        if i > 0 {
            f.write_str(sep)?;
        }
        write_need(f, m, true)?;
    }
    if nested {
        f.write_str(")")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CredentialKind;

    fn who(scopes: &[&str], roles: &[&str], permissions: &[&str]) -> Principal {
        Principal::builder(CredentialKind::Bearer, "t")
            .scopes(scopes.iter().copied())
            .roles(roles.iter().copied())
            .permissions(permissions.iter().copied())
            .build()
    }

    // scopes = "items:write", any(roles = "admin", permissions = "notes:delete-any")
    const DELETE: Rule = Rule::All(&[
        Rule::Scopes(&["items:write"]),
        Rule::Any(&[
            Rule::Roles(Roles::Any(&["admin"])),
            Rule::Permissions(&["notes:delete-any"]),
        ]),
    ]);

    #[test]
    fn either_alternative_meets_an_any() {
        assert_eq!(
            DELETE.evaluate(&who(&["items:write"], &["admin"], &[])),
            Ok(())
        );
        assert_eq!(
            DELETE.evaluate(&who(&["items:write"], &[], &["notes:delete-any"])),
            Ok(())
        );
    }

    #[test]
    fn missing_names_only_what_failed() {
        let m = DELETE
            .evaluate(&who(&["items:write"], &["user"], &[]))
            .unwrap_err();
        assert_eq!(
            m.to_string(),
            "role `admin` or permission `notes:delete-any`"
        );
        assert_eq!(m.insufficient_scope(), None);

        let m = DELETE.evaluate(&who(&[], &["admin"], &[])).unwrap_err();
        assert_eq!(m.to_string(), "scope `items:write`");
        assert_eq!(m.insufficient_scope(), Some(vec!["items:write"]));

        let m = DELETE.evaluate(&who(&[], &[], &[])).unwrap_err();
        assert_eq!(
            m.to_string(),
            "scope `items:write` and (role `admin` or permission `notes:delete-any`)"
        );
        assert_eq!(m.insufficient_scope(), None);
    }

    #[test]
    fn nested_groups_and_role_modes() {
        const R: Rule = Rule::Any(&[
            Rule::All(&[
                Rule::Roles(Roles::All(&["a", "b"])),
                Rule::Scopes(&["s1", "s2"]),
            ]),
            Rule::Any(&[Rule::Roles(Roles::Any(&["c", "d"]))]),
        ]);
        assert_eq!(R.evaluate(&who(&["s1", "s2"], &["a", "b"], &[])), Ok(()));
        assert_eq!(R.evaluate(&who(&[], &["d"], &[])), Ok(()));
        let m = R.evaluate(&who(&["s1"], &["a"], &[])).unwrap_err();
        // Flattened: the inner any(...) joins the outer one.
        assert_eq!(
            m.to_string(),
            "(role `b` and scope `s2`) or role `c` or role `d`"
        );
        assert_eq!(
            R.to_string(),
            "(role `a` and role `b` and scope `s1` and scope `s2`) or role `c` or role `d`"
        );
    }

    #[test]
    fn scopes_alone_are_an_insufficient_scope() {
        const R: Rule = Rule::All(&[
            Rule::Scopes(&["a"]),
            Rule::All(&[Rule::Scopes(&["b", "c"])]),
        ]);
        let m = R.evaluate(&who(&["b"], &[], &[])).unwrap_err();
        assert_eq!(m.insufficient_scope(), Some(vec!["a", "c"]));
        assert_eq!(m.to_string(), "scope `a` and scope `c`");
    }

    #[test]
    fn a_check_is_unmet_until_it_passes_and_needed_only_when_it_can_help() {
        // scopes = "w", any(permissions = "any", check = owns(id))
        const R: Rule = Rule::All(&[
            Rule::Scopes(&["w"]),
            Rule::Any(&[Rule::Permissions(&["any"]), Rule::Check("owns(id)")]),
        ]);
        assert!(R.mentions_check());
        assert!(!Rule::Any(&[Rule::Scopes(&["w"])]).mentions_check());
        // The permission meets it without the check.
        assert_eq!(R.evaluate(&who(&["w"], &[], &["any"])), Ok(()));
        // Without the permission only the check can: needed.
        let owner = who(&["w"], &[], &[]);
        let m = R.evaluate(&owner).unwrap_err();
        assert_eq!(m.to_string(), "permission `any` or check `owns(id)`");
        assert_eq!(m.insufficient_scope(), None);
        assert!(R.met_if_check_passes(&owner));
        // Without the scope even a passing check cannot help.
        assert!(!R.met_if_check_passes(&who(&[], &[], &[])));
        assert_eq!(
            R.to_string(),
            "scope `w` and (permission `any` or check `owns(id)`)"
        );
    }

    #[test]
    fn empty_groups_and_no_roles() {
        assert_eq!(Rule::All(&[]).evaluate(&who(&[], &[], &[])), Ok(()));
        assert_eq!(
            Rule::Roles(Roles::None).evaluate(&who(&[], &[], &[])),
            Ok(())
        );
        let m = Rule::Any(&[]).evaluate(&who(&[], &[], &[])).unwrap_err();
        assert_eq!(m.to_string(), "an unsatisfiable `any()`");
    }
}
