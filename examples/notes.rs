//! The reference service: a small notes API that uses every feature of
//! poem-secure. Its HTTP contract is `shared/contracts/notes-demo.md`.
//!
//! `cargo run --example notes`, then open http://127.0.0.1:3000/docs and log
//! in through "Authorize" as alice / alice-password-1.

use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
};

use poem::{listener::TcpListener, Server};
use poem_openapi::{param::Path, payload::Json, ApiResponse, Object, OpenApi};
use poem_secure::{
    deny_unprotected,
    openapi::service,
    public,
    route::{self, Route},
    secure,
    tokens::{AuthCatalogue, LoginKey, TokenService},
    ApiKeys, Authenticator, Catalogue, CorsPolicy, Denied, Hardening, JwtConfig, LoginLimits,
    MemoryApiKeyStore, MemorySessionStore, MemoryUserStore, PasswordHasher, Principal, Rate,
    Security, SessionStore, StrictString, UserRecord,
};

/// Every scope, role and permission the service knows; declarations naming
/// anything else do not compile.
pub const ACCESS: Catalogue = Catalogue::new()
    .token_url("/auth/token")
    .refresh_url("/auth/refresh")
    .scopes(&[
        ("me", "Read your own profile"),
        ("notes:read", "Read your notes"),
        ("notes:write", "Create and delete your notes"),
        ("admin", "Administer users and API keys"),
        ("stats:read", "Read service statistics (API keys)"),
    ])
    .roles(&["user", "admin"])
    .permissions(&["notes:delete-any"]);

/// The scopes an API key may carry.
const API_KEY_SCOPES: &[&str] = &["stats:read"];

struct Access;
impl AuthCatalogue for Access {
    const CATALOGUE: Option<&'static Catalogue> = Some(&ACCESS);
}

#[derive(Object, Clone)]
struct Note {
    id: u64,
    title: String,
    body: String,
    owner: String,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
struct NewNote {
    #[oai(validator(min_length = 1, max_length = 200))]
    title: StrictString,
    #[oai(validator(max_length = 10000))]
    body: StrictString,
}

#[derive(Object)]
struct User {
    username: String,
    roles: Vec<String>,
}

#[derive(Object)]
struct AdminUser {
    username: String,
    roles: Vec<String>,
    disabled: bool,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
struct NewApiKey {
    #[oai(validator(min_length = 1, max_length = 100))]
    name: StrictString,
    scopes: Vec<StrictString>,
}

#[derive(Object)]
struct CreatedApiKey {
    id: String,
    /// The secret: shown only here.
    key: String,
}

#[derive(Object)]
struct ApiKeyInfo {
    id: String,
    name: String,
    owner: String,
    scopes: Vec<String>,
    created_at: u64,
    revoked: bool,
}

#[derive(Object)]
struct Stats {
    notes: u64,
    users: u64,
}

#[derive(ApiResponse)]
enum Created<T: poem_openapi::types::ToJSON> {
    /// Created.
    #[oai(status = 201)]
    Created(Json<T>),
}

#[derive(ApiResponse)]
enum KeyCreated {
    /// The key; its secret is shown only here.
    #[oai(status = 201)]
    Created(Json<CreatedApiKey>),
    /// An unknown scope or a store error.
    #[oai(status = 400)]
    BadScope,
    /// The key store is unreachable.
    #[oai(status = 503)]
    Unavailable,
}

#[derive(ApiResponse)]
enum Found<T: poem_openapi::types::ToJSON> {
    /// Found.
    #[oai(status = 200)]
    Ok(Json<T>),
    /// Missing, or not yours.
    #[oai(status = 404)]
    NotFound,
}

#[derive(ApiResponse)]
enum Deleted {
    /// Deleted.
    #[oai(status = 204)]
    Done,
    /// Missing, or not yours.
    #[oai(status = 404)]
    NotFound,
    /// A store is unreachable.
    #[oai(status = 503)]
    Unavailable,
}

struct Notes {
    next: AtomicU64,
    notes: Mutex<BTreeMap<u64, Note>>,
    users: Arc<MemoryUserStore>,
    keys: ApiKeys,
}

impl Notes {
    fn with<T>(&self, f: impl FnOnce(&mut BTreeMap<u64, Note>) -> T) -> T {
        f(&mut self.notes.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// The owner rule of `DELETE /notes/{id}`, run with the operation's own
/// `id` once it is extracted: someone else's note is 404, exactly like a
/// missing one.
async fn owns_note(who: &Principal, id: &u64, notes: &Notes) -> Result<(), Denied> {
    match notes.with(|n| n.get(id).map(|note| note.owner == who.subject())) {
        Some(true) => Ok(()),
        _ => Err(Denied::not_found().because("not the note's owner")),
    }
}

#[deny_unprotected(catalogue = ACCESS)]
#[OpenApi]
impl Notes {
    #[public]
    #[oai(path = "/health", method = "get")]
    async fn health(&self) -> Json<&'static str> {
        Json("ok")
    }

    #[secure(scopes = "me")]
    #[oai(path = "/users/me", method = "get")]
    async fn me(&self, who: Principal) -> Json<User> {
        Json(User {
            username: who.subject().to_owned(),
            roles: who.roles().to_vec(),
        })
    }

    #[secure(scopes = "notes:read")]
    #[oai(path = "/notes", method = "get")]
    async fn list(&self, who: Principal) -> Json<Vec<Note>> {
        Json(self.with(|n| {
            n.values()
                .filter(|n| n.owner == who.subject())
                .cloned()
                .collect()
        }))
    }

    #[secure(scopes = "notes:write", rate = "60/min")]
    #[oai(path = "/notes", method = "post")]
    async fn create(&self, who: Principal, note: Json<NewNote>) -> Created<Note> {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let note = Note {
            id,
            title: note.0.title.into(),
            body: note.0.body.into(),
            owner: who.subject().to_owned(),
        };
        self.with(|n| n.insert(id, note.clone()));
        Created::Created(Json(note))
    }

    #[secure(scopes = "notes:read")]
    #[oai(path = "/notes/:id", method = "get")]
    async fn get(&self, who: Principal, id: Path<u64>) -> Found<Note> {
        // Someone else's note is 404, exactly like a missing one.
        match self.with(|n| n.get(&id.0).filter(|n| n.owner == who.subject()).cloned()) {
            Some(note) => Found::Ok(Json(note)),
            None => Found::NotFound,
        }
    }

    /// Deletes a note: its owner may, and so may a caller holding the
    /// permission `notes:delete-any` (an administrator), who skips the owner
    /// check. Someone else's note is 404 to everyone else.
    #[secure(
        scopes = "notes:write",
        any(permissions = "notes:delete-any", check = owns_note(id, self))
    )]
    #[oai(path = "/notes/:id", method = "delete")]
    async fn delete(&self, id: Path<u64>) -> Deleted {
        match self.with(|n| n.remove(&id.0)) {
            Some(_) => Deleted::Done,
            None => Deleted::NotFound,
        }
    }

    #[secure(roles = "admin", scopes = "admin")]
    #[oai(path = "/admin/users", method = "get")]
    async fn users(&self) -> Json<Vec<AdminUser>> {
        Json(
            self.users
                .list()
                .into_iter()
                .map(|u| AdminUser {
                    username: u.username,
                    roles: u.roles,
                    disabled: u.disabled,
                })
                .collect(),
        )
    }

    #[secure(roles = "admin", scopes = "admin")]
    #[oai(path = "/admin/api-keys", method = "post")]
    async fn create_key(&self, who: Principal, req: Json<NewApiKey>) -> KeyCreated {
        if req
            .0
            .scopes
            .iter()
            .any(|s| !API_KEY_SCOPES.contains(&s.as_str()))
        {
            return KeyCreated::BadScope;
        }
        let scopes: Vec<&str> = req.0.scopes.iter().map(|s| s.as_str()).collect();
        match self
            .keys
            .issue(&req.0.name, who.subject(), &scopes, None)
            .await
        {
            Ok(k) => KeyCreated::Created(Json(CreatedApiKey {
                id: k.record.id,
                key: k.key,
            })),
            Err(_) => KeyCreated::Unavailable,
        }
    }

    #[secure(roles = "admin", scopes = "admin")]
    #[oai(path = "/admin/api-keys", method = "get")]
    async fn list_keys(&self) -> poem::Result<Json<Vec<ApiKeyInfo>>> {
        let keys =
            self.keys.list().await.map_err(|_| {
                poem::Error::from_status(poem::http::StatusCode::SERVICE_UNAVAILABLE)
            })?;
        Ok(Json(
            keys.into_iter()
                .map(|k| ApiKeyInfo {
                    id: k.id,
                    name: k.name,
                    owner: k.owner,
                    scopes: k.scopes,
                    created_at: k.created_at,
                    revoked: k.revoked,
                })
                .collect(),
        ))
    }

    #[secure(roles = "admin", scopes = "admin")]
    #[oai(path = "/admin/api-keys/:id", method = "delete")]
    async fn revoke_key(&self, id: Path<String>) -> Deleted {
        match self.keys.revoke(&id.0).await {
            Ok(true) => Deleted::Done,
            Ok(false) => Deleted::NotFound,
            Err(_) => Deleted::Unavailable,
        }
    }

    #[secure(auth = api_key, scopes = "stats:read")]
    #[oai(path = "/service/stats", method = "get")]
    async fn stats(&self) -> Json<Stats> {
        Json(Stats {
            notes: self.with(|n| n.len() as u64),
            users: self.users.list().len() as u64,
        })
    }
}

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn env_secs(name: &str, default: u64) -> Result<u64, Box<dyn std::error::Error>> {
    match std::env::var(name) {
        Ok(v) => Ok(v
            .parse()
            .map_err(|_| format!("{name} must be a whole number of seconds"))?),
        Err(_) => Ok(default),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_target(false).init();
    let (app, _security, addr) = app().await?;
    println!("notes listening on http://{addr}");
    println!("  Swagger UI:   http://{addr}/docs   (Authorize → alice / alice-password-1)");
    println!("  demo users:   alice, carol (user), admin (admin) — passwords <name>-password-1; bob is disabled");
    Server::new(TcpListener::bind(addr)).run(app).await?;
    Ok(())
}

/// The service as the environment configures it: the app, its `Security`
/// (tests mint tokens with its key: `tests/notes_security.rs`) and the
/// listen address.
pub async fn app() -> Result<
    (
        impl poem::Endpoint + poem_secure::Protected + 'static,
        Security,
        String,
    ),
    Box<dyn std::error::Error>,
> {
    let addr = env("NOTES_ADDR", "127.0.0.1:3000");
    let jwt = match std::env::var("JWT_SECRET") {
        Ok(secret) => JwtConfig::hs256(secret)?,
        Err(_) => {
            tracing::warn!(
                "JWT_SECRET is not set: using a random key, valid for this process only"
            );
            JwtConfig::hs256_random()?
        }
    };
    let jwt = jwt
        .issuer(env("JWT_ISSUER", "notes-demo"))
        .audience(env("JWT_AUDIENCE", "notes-api"))
        .access_ttl_secs(env_secs("ACCESS_TOKEN_TTL_SECS", 900)?);

    // In memory by default; with REDIS_URL, sessions, revocations, API keys
    // and rate limits are shared by every instance. REDIS_URL is one server
    // (`redis://`), one over TLS (`rediss://`), or a Redis Cluster given as a
    // comma-separated list of seed nodes; REDIS_CA_FILE replaces the system's
    // roots for TLS with a private CA.
    let mut builder = Security::builder().jwt(jwt);
    // The absolute lifetime of a session from its login, however often it
    // rotates.
    let session_max = env_secs("SESSION_MAX_SECS", poem_secure::DEFAULT_SESSION_MAX_SECS)?;
    let (sessions, keys): (Arc<dyn SessionStore>, ApiKeys) = match std::env::var("REDIS_URL") {
        Ok(url) => {
            let mut target = poem_secure::RedisTarget::parse(&url)?;
            if let Ok(ca) = std::env::var("REDIS_CA_FILE") {
                target = target.ca_file(ca)?;
            }
            builder = builder.rate_limiter(
                poem_secure::RedisRateLimiter::builder_for(target.clone())
                    .prefix("notes:rl:")
                    .build()?,
            );
            // One connection (per server) for both credential stores.
            let conn = target.connect(std::time::Duration::from_secs(5)).await?;
            (
                Arc::new(
                    poem_secure::RedisSessionStore::new(conn.clone(), "notes:")?
                        .max_secs(session_max),
                ),
                ApiKeys::new(poem_secure::RedisApiKeyStore::new(conn, "notes:")?),
            )
        }
        Err(_) => (
            Arc::new(MemorySessionStore::new().max_secs(session_max)),
            ApiKeys::new(MemoryApiKeyStore::new()),
        ),
    };
    if let Ok(proxies) = std::env::var("TRUSTED_PROXIES") {
        builder =
            builder.trusted_proxies(proxies.split(',').map(str::trim).filter(|s| !s.is_empty()));
    }
    let security = builder
        .sessions(sessions.clone())
        .api_keys(keys.clone())
        .build()?;

    let records: Vec<UserRecord> = serde_json::from_str(include_str!("data/notes-users.json"))?;
    let users = Arc::new(MemoryUserStore::new(records));
    let tokens = TokenService::new(
        security.clone(),
        Authenticator::new(users.clone(), PasswordHasher::new()),
    )?
    .refresh_ttl_secs(env_secs("REFRESH_TOKEN_TTL_SECS", 1_209_600)?)
    // The seeded accounts are shared by many clients: the login limit is
    // per client IP alone (5/min, every attempt), never per user name.
    .failure_limits(LoginLimits::new().per_ip(None).per_ip_and_username(None))
    .attempt_limit(LoginKey::Ip, Rate::per_minute(5))
    // Contract v2: refresh grants, 10/min per client IP (IPv6: per /64).
    .refresh_limit(Some(Rate::per_minute(10)));

    let notes = Notes {
        next: AtomicU64::new(0),
        notes: Mutex::new(BTreeMap::new()),
        users,
        keys,
    };
    let api =
        service((notes, tokens.api::<Access>()), "notes", "1.0").server(format!("http://{addr}"));
    let origins: Vec<String> = env("CORS_ORIGINS", "http://localhost:5173")
        .split(',')
        .map(|s| s.trim().to_owned())
        .collect();
    let app = Route::new()
        // The document with every requirement (`x-poem-secure`) in it.
        .at("/openapi.json", poem_secure::openapi::spec_endpoint(&api))
        .nest("/docs", route::public(api.swagger_ui()))
        .nest("/", api)
        .with(Hardening::new().cors(CorsPolicy::new().allow_origins(origins).build()?))
        // Either order works: the request log sees the client IP through
        // the trusted proxies both ways.
        .with(security.clone());
    Ok((app, security, addr))
}
