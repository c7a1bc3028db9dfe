//! The Redis-backed credential stores against a real `redis-server`: refresh
//! sessions (atomic rotation in Lua, theft detection, family revocation,
//! expiry), the access-token denylist, API keys, sharing between instances,
//! and failing closed when Redis is unreachable.
//!
//! Every test starts its own `redis-server` on a free loopback port, in a
//! temporary directory, and kills it at the end. A missing or failing
//! `redis-server` FAILS the test (it is never skipped): CI installs it
//! (`scripts/test.sh`).

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use poem::{
    handler,
    http::{header, StatusCode},
    test::{TestClient, TestResponse},
    Endpoint,
};
use poem_secure::{
    openapi::service,
    route::{get, Route},
    secure,
    tokens::{NoCatalogue, TokenService},
    ApiKeyVerifier, ApiKeys, Authenticator, CredentialError, JwtConfig, MemoryUserStore,
    PasswordHasher, Principal, RedisApiKeyStore, RedisSessionStore, Rotation, Security, Session,
    SessionStore, UserRecord,
};
use serde_json::Value;

// ---------------------------------------------------------------------------
// A private redis-server
// ---------------------------------------------------------------------------

struct RedisServer {
    child: Child,
    port: u16,
    dir: PathBuf,
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

impl RedisServer {
    /// Starts `redis-server` (no persistence) and waits until it answers PING.
    /// Panics when it cannot: these tests must not pass without Redis.
    fn start() -> RedisServer {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        for attempt in 0..5 {
            let port = free_port();
            let dir = std::env::temp_dir().join(format!(
                "poem-secure-credentials-redis-{}-{port}-{nanos}-{attempt}",
                std::process::id()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            let mut child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                .arg("--dir")
                .arg(&dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server must be installed (scripts/test.sh installs it)");
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if child.try_wait().unwrap().is_some() {
                    // Most likely the port was taken meanwhile: try another.
                    let _ = std::fs::remove_dir_all(&dir);
                    break;
                }
                if matches!(command(port, &["PING"]), Ok(Resp::Simple(s)) if s == "PONG") {
                    return RedisServer { child, port, dir };
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    let _ = std::fs::remove_dir_all(&dir);
                    panic!("redis-server did not answer PING within 10 s");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("redis-server could not be started");
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Runs one command on the server (for inspection).
    fn cmd(&self, args: &[&str]) -> Resp {
        command(self.port, args).unwrap()
    }

    /// Every key with `prefix` and, for each, its value rendered as text and
    /// its TTL.
    fn dump(&self, prefix: &str) -> Vec<(String, String, i64)> {
        let Resp::Array(keys) = self.cmd(&["KEYS", &format!("{prefix}*")]) else {
            panic!("KEYS")
        };
        keys.into_iter()
            .map(|k| {
                let Resp::Bulk(Some(k)) = k else {
                    panic!("key")
                };
                let ty = match self.cmd(&["TYPE", &k]) {
                    Resp::Simple(t) => t,
                    other => panic!("{other:?}"),
                };
                let value = match ty.as_str() {
                    "string" => format!("{:?}", self.cmd(&["GET", &k])),
                    "hash" => format!("{:?}", self.cmd(&["HGETALL", &k])),
                    "set" => format!("{:?}", self.cmd(&["SMEMBERS", &k])),
                    other => format!("<{other}>"),
                };
                let Resp::Int(ttl) = self.cmd(&["TTL", &k]) else {
                    panic!("TTL")
                };
                (k, value, ttl)
            })
            .collect()
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A RESP reply.
#[derive(Debug, Clone, PartialEq)]
enum Resp {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<String>),
    Array(Vec<Resp>),
}

fn command(port: u16, args: &[&str]) -> std::io::Result<Resp> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut req = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        req.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        req.extend_from_slice(a.as_bytes());
        req.extend_from_slice(b"\r\n");
    }
    s.write_all(&req)?;
    read_reply(&mut BufReader::new(s))
}

fn read_reply(r: &mut BufReader<TcpStream>) -> std::io::Result<Resp> {
    let mut line = String::new();
    r.read_line(&mut line)?;
    let line = line.trim_end_matches("\r\n");
    let (kind, rest) = line.split_at(1);
    Ok(match kind {
        "+" => Resp::Simple(rest.to_owned()),
        "-" => Resp::Error(rest.to_owned()),
        ":" => Resp::Int(rest.parse().unwrap()),
        "$" => {
            let n: i64 = rest.parse().unwrap();
            if n < 0 {
                Resp::Bulk(None)
            } else {
                let mut buf = vec![0u8; n as usize + 2];
                r.read_exact(&mut buf)?;
                buf.truncate(n as usize);
                Resp::Bulk(Some(String::from_utf8(buf).unwrap()))
            }
        }
        "*" => {
            let n: i64 = rest.parse().unwrap();
            let mut items = Vec::new();
            for _ in 0..n.max(0) {
                items.push(read_reply(r)?);
            }
            Resp::Array(items)
        }
        other => panic!("unexpected RESP type {other:?}"),
    })
}

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

const SECRET: &[u8; 32] = b"credentials-redis-secret-32byte!";
const ISS: &str = "notes-demo";
const AUD: &str = "notes-api";
const PREFIX: &str = "test:";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn sessions(redis: &RedisServer) -> RedisSessionStore {
    tokio::time::timeout(
        Duration::from_secs(10),
        RedisSessionStore::connect(&redis.url(), PREFIX),
    )
    .await
    .expect("connect must be bounded")
    .expect("connect to the test redis-server")
}

async fn key_store(redis: &RedisServer) -> RedisApiKeyStore {
    tokio::time::timeout(
        Duration::from_secs(10),
        RedisApiKeyStore::connect(&redis.url(), PREFIX),
    )
    .await
    .expect("connect must be bounded")
    .expect("connect to the test redis-server")
}

fn session(family: &str) -> Session {
    Session {
        family: family.into(),
        subject: "alice".into(),
        scopes: vec!["me".into(), "notes:read".into()],
        roles: vec!["user".into()],
        permissions: vec![],
    }
}

/// One instance of the service: its own connections to the shared Redis.
struct Instance {
    security: Security,
    service: TokenService,
}

async fn users() -> MemoryUserStore {
    let h = PasswordHasher::with_params(1024, 1, 1).unwrap();
    MemoryUserStore::new([UserRecord {
        username: "alice".into(),
        password_hash: h.hash("alice-password-1").await.unwrap(),
        roles: vec!["user".into()],
        permissions: vec![],
        scopes: vec!["me".into(), "notes:read".into(), "stats:read".into()],
        disabled: false,
    }])
}

async fn instance(redis: &RedisServer) -> Instance {
    let store: Arc<dyn SessionStore> = Arc::new(sessions(redis).await);
    let keys = ApiKeys::new(key_store(redis).await);
    let security = Security::builder()
        .jwt(JwtConfig::hs256(SECRET).unwrap().issuer(ISS).audience(AUD))
        .sessions(store.clone())
        .api_keys(keys)
        .build()
        .unwrap();
    let hasher = PasswordHasher::with_params(1024, 1, 1).unwrap();
    let service =
        TokenService::new(security.clone(), Authenticator::new(users().await, hasher)).unwrap();
    Instance { security, service }
}

#[secure(scopes = "me")]
#[handler]
async fn me(who: Principal) -> String {
    who.subject().to_owned()
}

#[secure(auth = api_key, scopes = "stats:read")]
#[handler]
async fn stats(who: Principal) -> String {
    who.subject().to_owned()
}

fn app(i: &Instance) -> impl Endpoint {
    Route::new()
        .at("/api/me", get(me))
        .at("/api/stats", get(stats))
        .nest("/", service(i.service.api::<NoCatalogue>(), "t", "1"))
        .with(i.security.clone())
}

async fn login(cli: &TestClient<impl Endpoint>) -> TestResponse {
    cli.post("/auth/token")
        .form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "alice-password-1"),
        ])
        .send()
        .await
}

async fn refresh(cli: &TestClient<impl Endpoint>, rt: &str) -> TestResponse {
    cli.post("/auth/refresh")
        .form(&[("refresh_token", rt)])
        .send()
        .await
}

async fn json(resp: TestResponse) -> (StatusCode, Value) {
    let status = resp.0.status();
    let body = resp.0.into_body().into_string().await.unwrap();
    (
        status,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    )
}

async fn tokens(resp: TestResponse) -> Value {
    let (status, v) = json(resp).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v
}

fn s(v: &Value, k: &str) -> String {
    v[k].as_str().unwrap().to_owned()
}

// ---------------------------------------------------------------------------
// RedisSessionStore
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_refresh_token_rotates_once_and_its_reuse_revokes_the_family() {
    let redis = RedisServer::start();
    let store = sessions(&redis).await;
    let sess = session("fam-1");
    store.create(&sess, "h1", 60).await.unwrap();
    assert_eq!(
        store.rotate("fam-1", "h1", "h2", 60).await.unwrap(),
        Rotation::Rotated(sess.clone())
    );
    assert_eq!(
        store.rotate("fam-1", "h2", "h3", 60).await.unwrap(),
        Rotation::Rotated(sess.clone())
    );
    // h1 was rotated long ago: theft assumed, the family dies.
    assert_eq!(
        store.rotate("fam-1", "h1", "x", 60).await.unwrap(),
        Rotation::Reused
    );
    assert_eq!(
        store.rotate("fam-1", "h3", "h4", 60).await.unwrap(),
        Rotation::Invalid
    );
    assert_eq!(
        store.rotate("fam-1", "h2", "h5", 60).await.unwrap(),
        Rotation::Invalid
    );
    assert_eq!(
        store
            .rotate("no-such-family", "h1", "h6", 60)
            .await
            .unwrap(),
        Rotation::Invalid
    );
    // Another family is not affected.
    let other = session("fam-2");
    store.create(&other, "g1", 60).await.unwrap();
    assert_eq!(
        store.rotate("fam-2", "g1", "g2", 60).await.unwrap(),
        Rotation::Rotated(other)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_rotations_of_one_token_have_exactly_one_winner() {
    let redis = RedisServer::start();
    // Several connections, as several instances would have.
    let mut stores = Vec::new();
    for _ in 0..4 {
        stores.push(Arc::new(sessions(&redis).await));
    }
    for round in 0..5 {
        let fam = format!("fam-{round}");
        let first = format!("r{round}-h1");
        stores[0].create(&session(&fam), &first, 60).await.unwrap();
        let tasks: Vec<_> = (0..24)
            .map(|i| {
                let store = stores[i % stores.len()].clone();
                let (old, new) = (first.clone(), format!("r{round}-n{i}"));
                let fam = fam.clone();
                tokio::spawn(async move { store.rotate(&fam, &old, &new, 60).await.unwrap() })
            })
            .collect();
        let mut outcomes = Vec::new();
        for t in tasks {
            outcomes.push(
                tokio::time::timeout(Duration::from_secs(30), t)
                    .await
                    .unwrap()
                    .unwrap(),
            );
        }
        let winners = outcomes
            .iter()
            .filter(|o| matches!(o, Rotation::Rotated(_)))
            .count();
        assert_eq!(winners, 1, "round {round}: {outcomes:?}");
        assert!(outcomes.contains(&Rotation::Reused), "{outcomes:?}");
    }
}

#[tokio::test]
async fn revoking_a_family_kills_its_current_token() {
    let redis = RedisServer::start();
    let store = sessions(&redis).await;
    store.create(&session("fam-1"), "h1", 60).await.unwrap();
    store.rotate("fam-1", "h1", "h2", 60).await.unwrap();
    store.revoke_family("fam-1").await.unwrap();
    assert_eq!(
        store.rotate("fam-1", "h2", "h3", 60).await.unwrap(),
        Rotation::Invalid
    );
    // Revoking an unknown family leaves no stray key behind.
    store.revoke_family("no-such-family").await.unwrap();
    assert!(redis.dump(&format!("{PREFIX}fam:no-such")).is_empty());
}

#[tokio::test]
async fn every_session_key_expires_and_an_expired_token_is_refused() {
    let redis = RedisServer::start();
    let store = sessions(&redis).await;
    store
        .create(&session("fam-short"), "short", 2)
        .await
        .unwrap();
    store
        .create(&session("fam-long"), "long1", 600)
        .await
        .unwrap();
    store
        .rotate("fam-long", "long1", "long2", 600)
        .await
        .unwrap();
    let dump = redis.dump(PREFIX);
    assert!(!dump.is_empty());
    for (k, _, ttl) in &dump {
        assert!(*ttl > 0, "{k} has no expiry (TTL {ttl})");
    }
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert_eq!(
        store
            .rotate("fam-short", "short", "short2", 60)
            .await
            .unwrap(),
        Rotation::Invalid
    );
    assert!(matches!(
        store
            .rotate("fam-long", "long2", "long3", 600)
            .await
            .unwrap(),
        Rotation::Rotated(_)
    ));
}

#[tokio::test]
async fn a_denied_jti_expires_with_its_token_and_the_leeway() {
    let redis = RedisServer::start();
    let store = sessions(&redis).await;
    // Denied until exp + the largest leeway (60 s) a verifier may grant:
    // this one expired 58 s ago, so 2 s are left.
    store.revoke_access("jti-short", now() - 58).await.unwrap();
    store.revoke_access("jti-long", now() + 3600).await.unwrap();
    assert!(store.is_access_revoked("jti-short").await.unwrap());
    assert!(store.is_access_revoked("jti-long").await.unwrap());
    assert!(!store.is_access_revoked("jti-never").await.unwrap());
    for (k, _, ttl) in redis.dump(&format!("{PREFIX}jti:")) {
        let max = if k.ends_with("jti-short") { 2 } else { 3660 };
        assert!((1..=max).contains(&ttl), "{k}: TTL {ttl}");
    }
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert!(!store.is_access_revoked("jti-short").await.unwrap());
    assert!(store.is_access_revoked("jti-long").await.unwrap());
}

#[tokio::test]
async fn stores_with_different_prefixes_do_not_see_each_other() {
    let redis = RedisServer::start();
    let a = sessions(&redis).await;
    let b = RedisSessionStore::connect(&redis.url(), "other:")
        .await
        .unwrap();
    a.create(&session("fam"), "h1", 60).await.unwrap();
    a.revoke_access("jti", now() + 60).await.unwrap();
    assert_eq!(
        b.rotate("fam", "h1", "h2", 60).await.unwrap(),
        Rotation::Invalid
    );
    assert!(!b.is_access_revoked("jti").await.unwrap());
    assert!(matches!(
        a.rotate("fam", "h1", "h2", 60).await.unwrap(),
        Rotation::Rotated(_)
    ));
}

// ---------------------------------------------------------------------------
// The token endpoint on Redis, shared by two instances
// ---------------------------------------------------------------------------

#[tokio::test]
async fn two_instances_share_sessions_rotation_reuse_detection_and_logout() {
    let redis = RedisServer::start();
    let a = instance(&redis).await;
    let b = instance(&redis).await;
    let (ca, cb) = (TestClient::new(app(&a)), TestClient::new(app(&b)));

    // Log in on A, rotate on B, then replay the first token on A.
    let t1 = tokens(login(&ca).await).await;
    let t2 = tokens(refresh(&cb, &s(&t1, "refresh_token")).await).await;
    assert_ne!(s(&t2, "refresh_token"), s(&t1, "refresh_token"));
    let (status, err) = json(refresh(&ca, &s(&t1, "refresh_token")).await).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    // The family is revoked everywhere.
    let (_, err) = json(refresh(&cb, &s(&t2, "refresh_token")).await).await;
    assert_eq!(err["error"], "invalid_grant");

    // A fresh session: logout on B is effective on A at once.
    let t = tokens(login(&ca).await).await;
    let bearer = format!("Bearer {}", s(&t, "access_token"));
    ca.get("/api/me")
        .header(header::AUTHORIZATION, &bearer)
        .send()
        .await
        .assert_status_is_ok();
    cb.post("/auth/logout")
        .header(header::AUTHORIZATION, &bearer)
        .send()
        .await
        .assert_status(StatusCode::NO_CONTENT);
    let resp = ca
        .get("/api/me")
        .header(header::AUTHORIZATION, &bearer)
        .send()
        .await;
    resp.assert_status(StatusCode::UNAUTHORIZED);
    assert_eq!(
        resp.0.headers().get(header::WWW_AUTHENTICATE).unwrap(),
        "Bearer error=\"invalid_token\""
    );
    let (_, err) = json(refresh(&ca, &s(&t, "refresh_token")).await).await;
    assert_eq!(err["error"], "invalid_grant");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_http_refreshes_on_two_instances_have_one_winner() {
    let redis = RedisServer::start();
    let a = Arc::new(app(&instance(&redis).await));
    let b = Arc::new(app(&instance(&redis).await));
    let t = tokens(login(&TestClient::new(a.clone())).await).await;
    let rt = s(&t, "refresh_token");
    let mut tasks = Vec::new();
    for i in 0..12 {
        let rt = rt.clone();
        let (a, b) = (a.clone(), b.clone());
        tasks.push(tokio::spawn(async move {
            let resp = if i % 2 == 0 {
                refresh(&TestClient::new(a), &rt).await
            } else {
                refresh(&TestClient::new(b), &rt).await
            };
            resp.0.status()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(
            tokio::time::timeout(Duration::from_secs(30), t)
                .await
                .unwrap()
                .unwrap(),
        );
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        1,
        "{statuses:?}"
    );
    assert!(statuses
        .iter()
        .all(|s| *s == StatusCode::OK || *s == StatusCode::BAD_REQUEST));
}

#[tokio::test]
async fn redis_holds_no_refresh_token_or_api_key_secret() {
    let redis = RedisServer::start();
    let i = instance(&redis).await;
    let cli = TestClient::new(app(&i));
    let t1 = tokens(login(&cli).await).await;
    let t2 = tokens(refresh(&cli, &s(&t1, "refresh_token")).await).await;
    let keys = ApiKeys::new(key_store(&redis).await);
    let issued = keys
        .issue("exporter", "svc", &["stats:read"], None)
        .await
        .unwrap();
    let (_, secret) = issued.key.split_once('.').unwrap();

    let dump = redis.dump(PREFIX);
    // The family record, the API key and the key index.
    assert!(dump.len() >= 3, "{dump:?}");
    let everything = format!("{dump:?}");
    // A refresh token is `family.secret`: the family id is its public part.
    let secret_of = |t: &Value| s(t, "refresh_token").split_once('.').unwrap().1.to_owned();
    for plaintext in [secret_of(&t1), secret_of(&t2), secret.to_owned()] {
        assert!(
            !everything.contains(&plaintext),
            "a secret is stored in clear"
        );
    }
}

#[tokio::test]
async fn with_redis_gone_everything_that_needs_it_fails_closed_with_503() {
    let mut redis = RedisServer::start();
    let i = instance(&redis).await;
    let cli = TestClient::new(app(&i));
    let t = tokens(login(&cli).await).await;
    let keys = ApiKeys::new(key_store(&redis).await);
    let key = keys.issue("k", "svc", &["stats:read"], None).await.unwrap();
    // Controls while Redis is up.
    let bearer = format!("Bearer {}", s(&t, "access_token"));
    cli.get("/api/me")
        .header(header::AUTHORIZATION, &bearer)
        .send()
        .await
        .assert_status_is_ok();

    redis.kill();

    let bounded = |what: &'static str| {
        move |r: Result<TestResponse, tokio::time::error::Elapsed>| {
            r.unwrap_or_else(|_| panic!("{what}: no answer within 10 s"))
        }
    };
    let t10 = Duration::from_secs(10);
    let cases = [
        (
            "login",
            bounded("login")(tokio::time::timeout(t10, login(&cli)).await),
        ),
        (
            "refresh",
            bounded("refresh")(
                tokio::time::timeout(t10, refresh(&cli, &s(&t, "refresh_token"))).await,
            ),
        ),
        (
            "bearer (revocation list unreachable)",
            bounded("bearer")(
                tokio::time::timeout(
                    t10,
                    cli.get("/api/me")
                        .header(header::AUTHORIZATION, &bearer)
                        .send(),
                )
                .await,
            ),
        ),
        (
            "logout",
            bounded("logout")(
                tokio::time::timeout(
                    t10,
                    cli.post("/auth/logout")
                        .header(header::AUTHORIZATION, &bearer)
                        .send(),
                )
                .await,
            ),
        ),
    ];
    for (what, resp) in cases {
        assert_eq!(resp.0.status(), StatusCode::SERVICE_UNAVAILABLE, "{what}");
    }
    // API keys: the shared store is unreachable.
    assert_eq!(
        tokio::time::timeout(t10, keys.verify(&key.key))
            .await
            .unwrap()
            .unwrap_err(),
        CredentialError::Unavailable
    );
    let resp = tokio::time::timeout(
        t10,
        cli.get("/api/stats").header("X-API-Key", &key.key).send(),
    )
    .await
    .unwrap();
    resp.assert_status(StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn connecting_to_a_missing_redis_is_a_bounded_startup_error() {
    let url = format!("redis://127.0.0.1:{}/0", free_port());
    let r = tokio::time::timeout(
        Duration::from_secs(15),
        RedisSessionStore::connect(&url, PREFIX),
    )
    .await
    .expect("connect must give up on its own");
    assert!(r.is_err());
    let r = tokio::time::timeout(
        Duration::from_secs(15),
        RedisApiKeyStore::connect(&url, PREFIX),
    )
    .await
    .expect("connect must give up on its own");
    assert!(r.is_err());
    assert!(RedisSessionStore::connect("not a url", PREFIX)
        .await
        .is_err());
}

// ---------------------------------------------------------------------------
// RedisApiKeyStore
// ---------------------------------------------------------------------------

#[tokio::test]
async fn api_keys_in_redis_are_shared_and_revocation_is_immediate_everywhere() {
    let redis = RedisServer::start();
    let a = ApiKeys::new(key_store(&redis).await);
    let b = ApiKeys::new(key_store(&redis).await);
    let k = a
        .issue("exporter", "svc-stats", &["stats:read"], Some(3600))
        .await
        .unwrap();
    let keep = a
        .issue("other", "svc-other", &["stats:read"], None)
        .await
        .unwrap();
    let who = b.verify(&k.key).await.unwrap();
    assert_eq!(who.subject(), "svc-stats");
    assert_eq!(who.scopes(), ["stats:read"]);
    assert_eq!(who.key_id(), Some(k.record.id.as_str()));
    // A wrong secret for a known prefix is refused.
    let (prefix, _) = k.key.split_once('.').unwrap();
    assert_eq!(
        b.verify(&format!("{prefix}.{}", "A".repeat(43)))
            .await
            .unwrap_err(),
        CredentialError::Invalid
    );

    assert!(b.revoke(&k.record.id).await.unwrap());
    assert_eq!(
        a.verify(&k.key).await.unwrap_err(),
        CredentialError::Invalid
    );
    assert_eq!(
        b.verify(&k.key).await.unwrap_err(),
        CredentialError::Invalid
    );
    assert!(a.verify(&keep.key).await.is_ok());
    assert!(!a.revoke("no-such-key").await.unwrap());

    let listed = a.list().await.unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    let rec = listed.iter().find(|r| r.id == k.record.id).unwrap();
    assert!(rec.revoked);
    assert_eq!(rec.scopes, ["stats:read"]);
    assert_eq!(rec.expires_at, k.record.expires_at);
    assert_eq!(rec.secret_hash, k.record.secret_hash);
}

#[tokio::test]
async fn an_expired_api_key_in_redis_is_refused() {
    let redis = RedisServer::start();
    let keys = ApiKeys::new(key_store(&redis).await);
    let k = keys
        .issue("short", "svc", &["stats:read"], Some(2))
        .await
        .unwrap();
    assert!(keys.verify(&k.key).await.is_ok());
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert_eq!(
        keys.verify(&k.key).await.unwrap_err(),
        CredentialError::Invalid
    );
}

#[tokio::test]
async fn the_api_key_route_works_with_the_redis_store() {
    let redis = RedisServer::start();
    let i = instance(&redis).await;
    let cli = TestClient::new(app(&i));
    let keys = ApiKeys::new(key_store(&redis).await);
    let k = keys
        .issue("k", "svc-stats", &["stats:read"], None)
        .await
        .unwrap();
    let resp = cli
        .get("/api/stats")
        .header("X-API-Key", &k.key)
        .send()
        .await;
    resp.assert_status_is_ok();
    resp.assert_text("svc-stats").await;
    keys.revoke(&k.record.id).await.unwrap();
    cli.get("/api/stats")
        .header("X-API-Key", &k.key)
        .send()
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
}

/// Redis' cjson turns an empty JSON array into `{}`: the revocation script
/// rewrites `"scopes":[]` as `"scopes":{}`, which no longer deserialises, so
/// the revoked key silently disappears from `list()`.
#[tokio::test]
async fn a_revoked_key_without_scopes_stays_listed_as_revoked() {
    let redis = RedisServer::start();
    let keys = ApiKeys::new(key_store(&redis).await);
    let k = keys.issue("no scopes", "svc", &[], None).await.unwrap();
    assert!(keys.revoke(&k.record.id).await.unwrap());
    let listed = keys.list().await.unwrap();
    let rec = listed.iter().find(|r| r.id == k.record.id);
    assert!(
        rec.is_some_and(|r| r.revoked && r.scopes.is_empty()),
        "{listed:?}"
    );
}
