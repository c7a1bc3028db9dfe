//! "Did you mean": the nearest declared name to a misspelt one, computed in
//! const evaluation, and the compile-time message that names it.
//!
//! Generated code calls [`undeclared`] inside a `const` item when a name is
//! missing from the catalogue, and panics with [`Message::as_str`]: rustc
//! prints the assembled text, spanned at the user's string literal. Test
//! helpers (feature `testing`) call the same functions at run time.

use super::catalogue::{str_eq, Catalogue};

/// What a name is declared as.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    /// A scope.
    Scope,
    /// A role.
    Role,
    /// A permission.
    Permission,
}

impl NameKind {
    /// `scope`, `role` or `permission`.
    pub const fn noun(self) -> &'static str {
        match self {
            NameKind::Scope => "scope",
            NameKind::Role => "role",
            NameKind::Permission => "permission",
        }
    }
}

/// Names compared by [`edit_distance`] beyond this many bytes are cut there
/// (declared names are short tokens; the bound keeps the work constant).
const MAX: usize = 64;

/// The edit distance between the first [`MAX`] bytes of `a` and `b`
/// (insertions, deletions, substitutions and transpositions of neighbours
/// each count one: Damerau's optimal string alignment), usable in const
/// evaluation.
///
/// ```
/// # use secure_runtime::__suggest::edit_distance;
/// assert_eq!(edit_distance("notes:raed", "notes:read"), 1);
/// assert_eq!(edit_distance("itmes", "items"), 1);
/// assert_eq!(edit_distance("admn", "admin"), 1);
/// assert_eq!(edit_distance("admin", "admin"), 0);
/// ```
#[doc(hidden)]
pub const fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let n = if a.len() < MAX { a.len() } else { MAX };
    let m = if b.len() < MAX { b.len() } else { MAX };
    // Three rows of the matrix: i-2, i-1 and i.
    let mut before = [0usize; MAX + 1];
    let mut prev = [0usize; MAX + 1];
    let mut cur = [0usize; MAX + 1];
    let mut j = 0;
    while j <= m {
        prev[j] = j;
        j += 1;
    }
    let mut i = 1;
    while i <= n {
        cur[0] = i;
        let mut j = 1;
        while j <= m {
            let cost = if a[i - 1] == b[j - 1] { 0 } else { 1 };
            let mut best = prev[j - 1] + cost;
            if prev[j] + 1 < best {
                best = prev[j] + 1;
            }
            if cur[j - 1] + 1 < best {
                best = cur[j - 1] + 1;
            }
            if i > 1
                && j > 1
                && a[i - 1] == b[j - 2]
                && a[i - 2] == b[j - 1]
                && before[j - 2] + 1 < best
            {
                best = before[j - 2] + 1;
            }
            cur[j] = best;
            j += 1;
        }
        let mut k = 0;
        while k <= m {
            before[k] = prev[k];
            prev[k] = cur[k];
            k += 1;
        }
        i += 1;
    }
    prev[m]
}

/// Whether `candidate` is near enough to `name` to be suggested: at most a
/// third of the longer name's length apart (at least one edit).
const fn near(name: &str, candidate: &str, d: usize) -> bool {
    let longer = if name.len() > candidate.len() {
        name.len()
    } else {
        candidate.len()
    };
    let limit = if longer / 3 > 1 { longer / 3 } else { 1 };
    d <= limit
}

impl Catalogue {
    /// The declared name of kind `what` nearest to `name` (by edit
    /// distance), when one is near enough to be a likely misspelling.
    ///
    /// ```
    /// use secure_runtime::Catalogue;
    /// use secure_runtime::__suggest::NameKind;
    /// const ACCESS: Catalogue = Catalogue::new()
    ///     .scopes(&[("notes:read", "Read"), ("notes:write", "Write")])
    ///     .roles(&["admin"]);
    /// assert_eq!(ACCESS.nearest(NameKind::Scope, "notes:raed"), Some("notes:read"));
    /// assert_eq!(ACCESS.nearest(NameKind::Role, "admn"), Some("admin"));
    /// assert_eq!(ACCESS.nearest(NameKind::Role, "billing"), None);
    /// ```
    #[doc(hidden)]
    pub const fn nearest(&self, what: NameKind, name: &str) -> Option<&'static str> {
        let count = match what {
            NameKind::Scope => self.scopes.len(),
            NameKind::Role => self.roles.len(),
            NameKind::Permission => self.permissions.len(),
        };
        let mut best: Option<&'static str> = None;
        let mut best_d = usize::MAX;
        let mut i = 0;
        while i < count {
            let candidate = match what {
                NameKind::Scope => self.scopes[i].0,
                NameKind::Role => self.roles[i],
                NameKind::Permission => self.permissions[i],
            };
            let d = edit_distance(name, candidate);
            if d < best_d && !str_eq(name, candidate) && near(name, candidate, d) {
                best = Some(candidate);
                best_d = d;
            }
            i += 1;
        }
        best
    }

    /// Whether a name of kind `what` is declared.
    #[doc(hidden)]
    pub const fn declares(&self, what: NameKind, name: &str) -> bool {
        match what {
            NameKind::Scope => self.declares_scope(name),
            NameKind::Role => self.declares_role(name),
            NameKind::Permission => self.declares_permission(name),
        }
    }
}

/// Capacity of a [`Message`]; longer text is cut at a piece boundary.
const CAPACITY: usize = 480;

/// A message assembled in const evaluation.
#[doc(hidden)]
#[derive(Clone, Copy)]
pub struct Message {
    buf: [u8; CAPACITY],
    len: usize,
}

impl Message {
    /// An empty message.
    pub const fn new() -> Message {
        Message {
            buf: [0; CAPACITY],
            len: 0,
        }
    }
    /// Appends `piece` whole, or nothing when it does not fit.
    pub const fn push(mut self, piece: &str) -> Message {
        let b = piece.as_bytes();
        if self.len + b.len() > CAPACITY {
            return self;
        }
        let mut i = 0;
        while i < b.len() {
            self.buf[self.len + i] = b[i];
            i += 1;
        }
        self.len += b.len();
        self
    }
    /// The text (pieces are whole `str`s, so it is always UTF-8).
    pub const fn as_str(&self) -> &str {
        match core::str::from_utf8(self.buf.split_at(self.len).0) {
            Ok(s) => s,
            Err(_) => "",
        }
    }
}

impl Default for Message {
    fn default() -> Self {
        Message::new()
    }
}

/// The message for a `what` named `name` that `catalogue` (called
/// `catalogue_name` in the source) does not declare, with the nearest
/// declared name when there is one.
///
/// ```
/// use secure_runtime::Catalogue;
/// use secure_runtime::__suggest::{undeclared, NameKind};
/// const ACCESS: Catalogue = Catalogue::new().scopes(&[("items", "Read items")]);
/// const MSG: &str = undeclared(&ACCESS, NameKind::Scope, "itmes", "ACCESS").as_str();
/// # let _ = MSG;
/// let m = undeclared(&ACCESS, NameKind::Scope, "itmes", "ACCESS");
/// assert_eq!(
///     m.as_str(),
///     "scope `itmes` is not declared in the catalogue `ACCESS`: did you mean `items`? \
///      Otherwise declare it there"
/// );
/// ```
#[doc(hidden)]
pub const fn undeclared(
    catalogue: &Catalogue,
    what: NameKind,
    name: &str,
    catalogue_name: &str,
) -> Message {
    let m = Message::new()
        .push(what.noun())
        .push(" `")
        .push(name)
        .push("` is not declared in the catalogue `")
        .push(catalogue_name)
        .push("`");
    match catalogue.nearest(what, name) {
        Some(near) => m
            .push(": did you mean `")
            .push(near)
            .push("`? Otherwise declare it there"),
        None => m.push(": fix the spelling or declare it there"),
    }
}

/// The catalogue a crate declared with `poem_secure::crate_catalogue!`, and
/// the name it has in the source (for messages).
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct CrateCatalogue {
    /// The catalogue.
    pub catalogue: &'static Catalogue,
    /// Its path as written, e.g. `access::ACCESS`.
    pub name: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCESS: Catalogue = Catalogue::new()
        .scopes(&[("notes:read", ""), ("notes:write", ""), ("me", "")])
        .roles(&["admin", "user"])
        .permissions(&["notes:delete-any"]);

    #[test]
    fn nearest_prefers_the_closest_and_ignores_far_names() {
        assert_eq!(
            ACCESS.nearest(NameKind::Scope, "notes:wrte"),
            Some("notes:write")
        );
        assert_eq!(ACCESS.nearest(NameKind::Scope, "mee"), Some("me"));
        assert_eq!(ACCESS.nearest(NameKind::Scope, "billing:read"), None);
        assert_eq!(ACCESS.nearest(NameKind::Role, "usr"), Some("user"));
        assert_eq!(
            ACCESS.nearest(NameKind::Permission, "notes:delete_any"),
            Some("notes:delete-any")
        );
        // A declared name is never suggested for itself.
        assert_eq!(ACCESS.nearest(NameKind::Role, "admin"), None);
    }

    #[test]
    fn the_message_is_cut_at_a_piece_and_stays_utf8() {
        let long = "é".repeat(300);
        let m = Message::new().push("a").push(&long).push("b");
        assert_eq!(m.as_str(), "ab");
    }

    #[test]
    fn without_a_near_name_the_message_says_how_to_fix() {
        let m = undeclared(&ACCESS, NameKind::Role, "billing", "ACCESS");
        assert_eq!(
            m.as_str(),
            "role `billing` is not declared in the catalogue `ACCESS`: fix the spelling or declare it there"
        );
    }

    #[test]
    fn long_names_are_compared_on_their_first_bytes() {
        let a = "x".repeat(200);
        assert_eq!(edit_distance(&a, &a), 0);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
