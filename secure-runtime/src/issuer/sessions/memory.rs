//! The in-memory [`SessionStore`]: bounded, one record per family.

use std::{collections::HashMap, sync::Mutex};

use super::{
    Peek, Rotation, Session, SessionStore, DEFAULT_SESSION_MAX_SECS, SESSION_REVOCATION_SECS,
};
use crate::{
    model::answer::{Answer, BoxFuture},
    verify::{
        credentials::CredentialError,
        jwt::{now_secs, MAX_LEEWAY_SECS},
    },
};

struct Family {
    session: Session,
    current: String,
    revoked: bool,
    /// When the current token expires (never after `ends_at`).
    expires_at: u64,
    /// The absolute end of the session: login + the maximum lifetime.
    ends_at: u64,
    /// Until when the record is kept (revoked: long enough to refuse the
    /// family's access tokens until they expire).
    keep_until: u64,
}

struct MemState {
    /// One record per family, whatever its number of rotations.
    families: HashMap<String, Family>,
    denied: HashMap<String, u64>,
    writes: u64,
    max_families: usize,
    max_secs: u64,
}

impl MemState {
    fn purge_sometimes(&mut self, now: u64) {
        self.writes += 1;
        if self.writes.is_multiple_of(1024) {
            self.purge(now);
        }
    }

    fn purge(&mut self, now: u64) {
        self.families.retain(|_, f| f.keep_until > now);
        self.denied.retain(|_, exp| *exp > now);
    }

    /// Room for one more family: expired records go first; then the live
    /// family nearest to its end is evicted (its user must log in again:
    /// the store fails closed, never open). Revoked families are never
    /// evicted before their time: `false` when only they are left.
    fn make_room(&mut self, now: u64) -> bool {
        if self.families.len() < self.max_families {
            return true;
        }
        self.purge(now);
        if self.families.len() < self.max_families {
            return true;
        }
        let victim = self
            .families
            .iter()
            .filter(|(_, f)| !f.revoked)
            .min_by_key(|(_, f)| f.expires_at)
            .map(|(k, _)| k.clone());
        match victim {
            Some(k) => {
                self.families.remove(&k);
                tracing::warn!(target: crate::AUDIT_TARGET, event = "session_evicted",
                    reason = "memory session store full");
                true
            }
            None => false,
        }
    }

    fn revoke(f: &mut Family, now: u64) {
        f.revoked = true;
        f.keep_until = f.keep_until.max(now + SESSION_REVOCATION_SECS);
    }

    fn session_revoked(&self, sid: &str, now: u64) -> bool {
        self.families
            .get(sid)
            .is_some_and(|f| f.revoked && f.keep_until > now)
    }
}

/// The embedded in-memory [`SessionStore`] (one process; use the Redis store
/// to share sessions between instances).
///
/// - **Bounded**: one record per family however often it rotates, and at
///   most [`max_families`](Self::max_families) families (default 100 000).
///   When full, expired records go first, then the live family nearest to
///   its end is evicted (its refresh token stops working: fail closed); if
///   only revoked families are left, a login is refused (503) rather than
///   forgetting a revocation.
/// - **Absolute lifetime**: a family ends [`max_secs`](Self::max_secs) after
///   its login (default 30 days), however often it rotates.
/// - **Session-wide revocation**: a revoked family (logout, reuse) refuses
///   every access token whose `sid` names it, answered without I/O; it is
///   remembered for [`SESSION_REVOCATION_SECS`] at least.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use secure_runtime::{MemorySessionStore, Rotation, Session, SessionStore};
/// let store = MemorySessionStore::new();
/// let s = Session { family: "f1".into(), subject: "alice".into(), scopes: vec![], roles: vec![], permissions: vec![] };
/// store.create(&s, "h1", 60).await.unwrap();
/// assert_eq!(store.rotate("f1", "h1", "h2", 60).await.unwrap(), Rotation::Rotated(s.clone()));
/// assert_eq!(store.rotate("f1", "h1", "h3", 60).await.unwrap(), Rotation::Reused); // theft detected
/// assert_eq!(store.rotate("f1", "h2", "h4", 60).await.unwrap(), Rotation::Invalid); // family revoked
/// // Every access token of the session is now refused, without I/O.
/// assert!(matches!(store.is_token_revoked("any-jti", Some("f1")).now(), Ok(Ok(true))));
/// # });
/// ```
pub struct MemorySessionStore(Mutex<MemState>);

impl Default for MemorySessionStore {
    fn default() -> Self {
        MemorySessionStore(Mutex::new(MemState {
            families: HashMap::new(),
            denied: HashMap::new(),
            writes: 0,
            max_families: 100_000,
            max_secs: DEFAULT_SESSION_MAX_SECS,
        }))
    }
}

impl MemorySessionStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The most families kept at once (default 100 000, at least 1).
    #[must_use]
    pub fn max_families(self, n: usize) -> Self {
        self.with(|s| s.max_families = n.max(1));
        self
    }

    /// The absolute lifetime of a family from its login, in seconds
    /// (default 30 days).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use secure_runtime::{MemorySessionStore, Rotation, Session, SessionStore};
    /// let store = MemorySessionStore::new().max_secs(0);
    /// let s = Session { family: "f".into(), subject: "a".into(), scopes: vec![], roles: vec![], permissions: vec![] };
    /// store.create(&s, "h1", 60).await.unwrap();
    /// // Past its absolute end: no rotation, however fresh the token.
    /// assert_eq!(store.rotate("f", "h1", "h2", 60).await.unwrap(), Rotation::Invalid);
    /// # });
    /// ```
    #[must_use]
    pub fn max_secs(self, secs: u64) -> Self {
        self.with(|s| s.max_secs = secs);
        self
    }

    fn with<T>(&self, f: impl FnOnce(&mut MemState) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn revoked(&self, jti: &str, sid: Option<&str>) -> bool {
        let now = now_secs();
        self.with(|s| {
            s.denied.get(jti).is_some_and(|exp| *exp > now)
                || sid.is_some_and(|sid| s.session_revoked(sid, now))
        })
    }
}

impl SessionStore for MemorySessionStore {
    fn create<'a>(
        &'a self,
        session: &'a Session,
        token_hash: &'a str,
        ttl_secs: u64,
    ) -> BoxFuture<'a, Result<(), CredentialError>> {
        let now = now_secs();
        let created = self.with(|s| {
            s.purge_sometimes(now);
            if !s.make_room(now) {
                tracing::error!(target: crate::AUDIT_TARGET, event = "store_unavailable",
                    store = "memory-sessions", reason = "full of revoked sessions");
                return Err(CredentialError::Unavailable);
            }
            let ends_at = now.saturating_add(s.max_secs);
            let expires_at = now.saturating_add(ttl_secs).min(ends_at);
            s.families.insert(
                session.family.clone(),
                Family {
                    session: session.clone(),
                    current: token_hash.to_owned(),
                    revoked: false,
                    expires_at,
                    ends_at,
                    keep_until: expires_at,
                },
            );
            Ok(())
        });
        Box::pin(async move { created })
    }

    fn rotate<'a>(
        &'a self,
        family: &'a str,
        old_hash: &'a str,
        new_hash: &'a str,
        ttl_secs: u64,
    ) -> BoxFuture<'a, Result<Rotation, CredentialError>> {
        let now = now_secs();
        let out = self.with(|s| {
            s.purge_sometimes(now);
            let Some(f) = s.families.get_mut(family) else {
                return Rotation::Invalid;
            };
            if f.revoked || f.expires_at <= now {
                return Rotation::Invalid;
            }
            if f.current != old_hash {
                MemState::revoke(f, now);
                return Rotation::Reused;
            }
            f.current = new_hash.to_owned();
            f.expires_at = now.saturating_add(ttl_secs).min(f.ends_at);
            f.keep_until = f.expires_at;
            Rotation::Rotated(f.session.clone())
        });
        Box::pin(async move { Ok(out) })
    }

    fn peek<'a>(
        &'a self,
        family: &'a str,
        token_hash: &'a str,
    ) -> BoxFuture<'a, Result<Peek, CredentialError>> {
        let now = now_secs();
        let out = self.with(|s| match s.families.get(family) {
            Some(f) if !f.revoked && f.expires_at > now && f.current == token_hash => {
                Peek::Current(f.session.clone())
            }
            _ => Peek::NotCurrent,
        });
        Box::pin(async move { Ok(out) })
    }

    fn revoke_family<'a>(&'a self, family: &'a str) -> BoxFuture<'a, Result<(), CredentialError>> {
        let now = now_secs();
        self.with(|s| {
            if let Some(f) = s.families.get_mut(family) {
                MemState::revoke(f, now);
            }
        });
        Box::pin(async { Ok(()) })
    }

    fn revoke_access<'a>(
        &'a self,
        jti: &'a str,
        exp: u64,
    ) -> BoxFuture<'a, Result<(), CredentialError>> {
        let now = now_secs();
        self.with(|s| {
            s.purge_sometimes(now);
            // Through the leeway a verifier may still grant after `exp`.
            s.denied
                .insert(jti.to_owned(), exp.saturating_add(MAX_LEEWAY_SECS));
        });
        Box::pin(async { Ok(()) })
    }

    fn is_access_revoked<'a>(&'a self, jti: &'a str) -> Answer<'a, Result<bool, CredentialError>> {
        Answer::Ready(Ok(self.revoked(jti, None)))
    }

    fn is_token_revoked<'a>(
        &'a self,
        jti: &'a str,
        sid: Option<&'a str>,
    ) -> Answer<'a, Result<bool, CredentialError>> {
        Answer::Ready(Ok(self.revoked(jti, sid)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(family: &str) -> Session {
        Session {
            family: family.into(),
            subject: "alice".into(),
            scopes: vec![],
            roles: vec![],
            permissions: vec![],
        }
    }

    fn block<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn a_family_is_one_record_however_often_it_rotates() {
        let store = MemorySessionStore::new();
        block(async {
            store.create(&session("f"), "h0", 60).await.unwrap();
            for i in 0..1000 {
                let r = store
                    .rotate("f", &format!("h{i}"), &format!("h{}", i + 1), 60)
                    .await
                    .unwrap();
                assert!(matches!(r, Rotation::Rotated(_)));
            }
            // Any of the 1000 rotated tokens is recognised as reuse.
            assert_eq!(
                store.rotate("f", "h17", "x", 60).await.unwrap(),
                Rotation::Reused
            );
        });
        store.with(|s| assert_eq!(s.families.len(), 1));
    }

    #[test]
    fn reuse_and_logout_end_every_access_token_of_the_session_without_io() {
        let store = MemorySessionStore::new();
        block(async {
            store.create(&session("f1"), "a", 60).await.unwrap();
            store.create(&session("f2"), "b", 60).await.unwrap();
            store.create(&session("f3"), "c", 60).await.unwrap();
            store.rotate("f1", "a", "a2", 60).await.unwrap();
            assert_eq!(
                store.rotate("f1", "a", "x", 60).await.unwrap(),
                Rotation::Reused
            );
            store.revoke_family("f2").await.unwrap();
        });
        for sid in ["f1", "f2"] {
            assert!(matches!(
                store.is_token_revoked("j", Some(sid)).now(),
                Ok(Ok(true))
            ));
        }
        assert!(matches!(
            store.is_token_revoked("j", Some("f3")).now(),
            Ok(Ok(false))
        ));
        assert!(matches!(
            store.is_token_revoked("j", None).now(),
            Ok(Ok(false))
        ));
        // Remembered long enough for the access tokens issued in it.
        store.with(|s| {
            let f = &s.families["f2"];
            assert!(f.keep_until >= now_secs() + SESSION_REVOCATION_SECS - 1);
        });
    }

    #[test]
    fn a_denied_jti_lives_through_the_leeway() {
        let store = MemorySessionStore::new();
        let exp = now_secs() - 5; // expired 5 s ago, still inside a 60 s leeway
        block(store.revoke_access("j", exp)).unwrap();
        assert!(matches!(store.is_access_revoked("j").now(), Ok(Ok(true))));
    }

    #[test]
    fn no_rotation_past_the_absolute_lifetime() {
        let store = MemorySessionStore::new().max_secs(100);
        block(async {
            store.create(&session("f"), "h1", 1000).await.unwrap();
            store.rotate("f", "h1", "h2", 1000).await.unwrap();
        });
        store.with(|s| {
            let f = &s.families["f"];
            assert!(f.expires_at <= f.ends_at && f.ends_at <= now_secs() + 100);
            // As if the login were 100 s ago.
            let f = s.families.get_mut("f").unwrap();
            f.ends_at = now_secs();
            f.expires_at = f.ends_at;
        });
        assert_eq!(
            block(store.rotate("f", "h2", "h3", 1000)).unwrap(),
            Rotation::Invalid
        );
    }

    #[test]
    fn a_full_store_evicts_the_live_family_nearest_its_end_and_never_a_revocation() {
        let store = MemorySessionStore::new().max_families(2);
        block(async {
            store.create(&session("old"), "o", 10).await.unwrap();
            store.create(&session("new"), "n", 1000).await.unwrap();
            store.create(&session("third"), "t", 1000).await.unwrap();
            // "old" was evicted: its token fails (closed), the others work.
            assert_eq!(
                store.rotate("old", "o", "o2", 10).await.unwrap(),
                Rotation::Invalid
            );
            assert_eq!(
                store.peek("new", "n").await.unwrap(),
                Peek::Current(session("new"))
            );
            // Two revoked families fill the store: a new login is refused
            // rather than a revocation forgotten.
            store.revoke_family("new").await.unwrap();
            store.revoke_family("third").await.unwrap();
            assert_eq!(
                store.create(&session("fourth"), "f", 1000).await,
                Err(CredentialError::Unavailable)
            );
        });
        assert!(matches!(
            store.is_token_revoked("j", Some("new")).now(),
            Ok(Ok(true))
        ));
    }
}
