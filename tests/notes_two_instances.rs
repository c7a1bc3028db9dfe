//! Two processes of `examples/notes.rs` sharing one real `redis-server`
//! (`REDIS_URL`) and one `JWT_SECRET`: refresh sessions, revocations, API
//! keys and rate limits are shared, so what happens on one instance holds on
//! the other at once. The same on a TLS-only server (`rediss://` and
//! `REDIS_CA_FILE`) and on a Redis Cluster (`REDIS_URL` = the seed nodes).
//! Fails (never skips) when Redis cannot start.

#[path = "support/redis_server.rs"]
mod redis_server;

#[path = "support/notes_service.rs"]
mod notes_service;

use notes_service::{Grant, Resp, Service};
use redis_server::{RedisCluster, RedisServer};
use serde_json::json;

const SECRET: &str = "notes-two-instances-secret-0123456789abcdef";

/// The Redis the instances share.
enum Backend {
    Server(RedisServer),
    Cluster(RedisCluster),
}

/// A Redis deployment and two notes instances A and B on it.
struct Pair {
    a: Service,
    b: Service,
    // Dropped last: the instances go first.
    _redis: Backend,
}

fn pair() -> Pair {
    pair_on(Backend::Server(RedisServer::start()))
}

fn pair_on(redis: Backend) -> Pair {
    let (url, ca) = match &redis {
        Backend::Server(s) => (
            s.url(),
            s.ca_file().map(|p| p.to_string_lossy().into_owned()),
        ),
        Backend::Cluster(c) => (c.seeds(), None),
    };
    let mut env = vec![("REDIS_URL", url.as_str()), ("JWT_SECRET", SECRET)];
    if let Some(ca) = &ca {
        env.push(("REDIS_CA_FILE", ca.as_str()));
    }
    let a = Service::start_with(&env);
    let b = Service::start_with(&env);
    assert_ne!(a.port(), b.port());
    Pair {
        a,
        b,
        _redis: redis,
    }
}

#[track_caller]
fn assert_invalid_token(r: &Resp) {
    r.assert_problem(401);
    let c = r.challenge();
    assert!(
        c.starts_with("Bearer") && c.contains(r#"error="invalid_token""#),
        "{}: challenge {c:?}",
        r.what
    );
}

#[test]
fn login_on_a_refresh_on_b() {
    let p = pair();
    let g1 = p.a.tokens("alice", None);
    // The shared secret: A's token is good on B.
    assert_eq!(
        p.b.get_bearer("/users/me", &g1.access).expect(200).json()["username"],
        "alice"
    );
    // The session lives in Redis: B rotates A's refresh token.
    let g2 = Grant::from_json(&p.b.refresh(&g1.refresh).expect(200).json());
    assert_ne!(g2.refresh, g1.refresh);
    p.a.get_bearer("/users/me", &g2.access).expect(200);
    // The rotated token is dead on A too; reusing it revokes the family on both.
    p.a.refresh(&g1.refresh).expect(400);
    p.b.refresh(&g2.refresh).expect(400);
}

#[test]
fn logout_on_b_refuses_the_access_token_on_a_at_once() {
    let p = pair();
    let g = p.a.tokens("alice", None);
    p.a.get_bearer("/users/me", &g.access).expect(200);
    let r = p.b.call("POST", "/auth/logout", Some(&g.access), None);
    assert!(
        matches!(r.status, 200 | 204),
        "logout on B: {} {}",
        r.status,
        r.body
    );
    // No wait: the revocation is shared.
    assert_invalid_token(&p.a.get_bearer("/users/me", &g.access));
    assert_invalid_token(&p.b.get_bearer("/users/me", &g.access));
    p.a.refresh(&g.refresh).expect(400);
}

#[test]
fn api_keys_are_shared_and_revoked_everywhere_at_once() {
    let p = pair();
    let admin = p.a.tokens("admin", None).access;
    let v =
        p.a.call(
            "POST",
            "/admin/api-keys",
            Some(&admin),
            Some(&json!({"name": "shared", "scopes": ["stats:read"]})),
        )
        .expect(201)
        .json();
    let (id, key) = (
        v["id"].as_str().unwrap().to_owned(),
        v["key"].as_str().unwrap().to_owned(),
    );
    // Made on A, works on B (and A), listed on B.
    p.b.send("GET", "/service/stats", &[("x-api-key", &key)], None)
        .expect(200);
    p.a.send("GET", "/service/stats", &[("x-api-key", &key)], None)
        .expect(200);
    let list = p.b.get_bearer("/admin/api-keys", &admin).expect(200).json();
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|k| k["id"] == id.as_str()),
        "B does not list A's key: {list}"
    );
    // Revoked on B, stops on A at once.
    p.b.call(
        "DELETE",
        &format!("/admin/api-keys/{id}"),
        Some(&admin),
        None,
    )
    .expect(204);
    p.a.send("GET", "/service/stats", &[("x-api-key", &key)], None)
        .assert_problem(401);
    p.b.send("GET", "/service/stats", &[("x-api-key", &key)], None)
        .assert_problem(401);
}

#[test]
fn the_login_limit_counts_across_both_instances() {
    let p = pair();
    // Five attempts from one client IP, split 3 on A and 2 on B; none alone
    // reaches the limit of 5 per minute.
    let attempts = [
        (&p.a, "alice", "alice-password-1"),
        (&p.b, "alice", "wrong-password"),
        (&p.a, "zed-unknown", "x"),
        (&p.b, "carol", "carol-password-1"),
        (&p.a, "bob", "bob-password-1"),
    ];
    for (i, (svc, user, password)) in attempts.iter().enumerate() {
        let r = svc.login(user, password, None);
        assert_ne!(
            r.status,
            429,
            "attempt {} ({user}) limited too early: {}",
            i + 1,
            r.body
        );
    }
    // The 6th, on either instance, is refused.
    for svc in [&p.a, &p.b] {
        let r = svc.login("alice", "alice-password-1", None);
        r.assert_problem(429);
        let secs = r.retry_after();
        assert!((1..=60).contains(&secs), "Retry-After {secs}");
    }
}

/// Sessions, logout and API keys across the two instances, in one go.
fn sessions_logout_and_keys_are_shared(p: &Pair) {
    let g1 = p.a.tokens("alice", None);
    let g2 = Grant::from_json(&p.b.refresh(&g1.refresh).expect(200).json());
    p.a.get_bearer("/users/me", &g2.access).expect(200);
    let r = p.b.call("POST", "/auth/logout", Some(&g2.access), None);
    assert!(
        matches!(r.status, 200 | 204),
        "logout: {} {}",
        r.status,
        r.body
    );
    assert_invalid_token(&p.a.get_bearer("/users/me", &g2.access));
    // Every access token of the session ends, not only the presented one.
    assert_invalid_token(&p.a.get_bearer("/users/me", &g1.access));
    p.a.refresh(&g2.refresh).expect(400);

    let admin = p.a.tokens("admin", None).access;
    let v =
        p.a.call(
            "POST",
            "/admin/api-keys",
            Some(&admin),
            Some(&json!({"name": "shared", "scopes": ["stats:read"]})),
        )
        .expect(201)
        .json();
    let key = v["key"].as_str().unwrap().to_owned();
    p.b.send("GET", "/service/stats", &[("x-api-key", &key)], None)
        .expect(200);
}

#[test]
fn on_a_tls_redis_the_instances_share_everything() {
    let p = pair_on(Backend::Server(RedisServer::start_tls()));
    sessions_logout_and_keys_are_shared(&p);
}

#[test]
fn on_a_redis_cluster_the_instances_share_everything() {
    let p = pair_on(Backend::Cluster(RedisCluster::start()));
    sessions_logout_and_keys_are_shared(&p);
}
