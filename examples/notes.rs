//! The reference service, core stage: notes behind `#[secure]` under
//! `#[deny_unprotected]`, with OpenAPI and Swagger UI. The token endpoint,
//! refresh rotation, API keys and hardening arrive with their issues; until
//! then the service prints short-lived demo tokens at startup.
//!
//! `cargo run --example notes`, then open http://127.0.0.1:3000/docs.

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Mutex,
};

use poem::{listener::TcpListener, EndpointExt, Server};
use poem_openapi::{param::Path, payload::Json, ApiResponse, Object, OpenApi};
use poem_secure::{
    deny_unprotected,
    openapi::service,
    public,
    route::{self, Route},
    secure, Catalogue, JwtConfig, Principal, Security,
};

pub const ACCESS: Catalogue = Catalogue::new()
    .token_url("/auth/token")
    .scopes(&[
        ("me", "Read your own profile"),
        ("notes:read", "Read your notes"),
        ("notes:write", "Create and delete your notes"),
        ("admin", "Administer the service"),
    ])
    .roles(&["user", "admin"])
    .permissions(&["notes:delete-any"]);

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
    title: String,
    #[oai(validator(max_length = 10000))]
    body: String,
}

#[derive(Object)]
struct Me {
    username: String,
    roles: Vec<String>,
}

#[derive(ApiResponse)]
enum Created {
    #[oai(status = 201)]
    Note(Json<Note>),
}

#[derive(ApiResponse)]
enum Found {
    #[oai(status = 200)]
    Note(Json<Note>),
    #[oai(status = 404)]
    NotFound,
}

#[derive(ApiResponse)]
enum Deleted {
    #[oai(status = 204)]
    Done,
    #[oai(status = 404)]
    NotFound,
}

#[derive(Default)]
struct Notes {
    next: AtomicU64,
    notes: Mutex<Vec<Note>>,
}

impl Notes {
    fn with<T>(&self, f: impl FnOnce(&mut Vec<Note>) -> T) -> T {
        f(&mut self.notes.lock().unwrap_or_else(|p| p.into_inner()))
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
    async fn me(&self, who: Principal) -> Json<Me> {
        Json(Me {
            username: who.subject().to_owned(),
            roles: who.roles().to_vec(),
        })
    }

    #[secure(scopes = "notes:read")]
    #[oai(path = "/notes", method = "get")]
    async fn list(&self, who: Principal) -> Json<Vec<Note>> {
        Json(self.with(|n| {
            n.iter()
                .filter(|n| n.owner == who.subject())
                .cloned()
                .collect()
        }))
    }

    #[secure(scopes = "notes:write", rate = "60/min")]
    #[oai(path = "/notes", method = "post")]
    async fn create(&self, who: Principal, note: Json<NewNote>) -> Created {
        let note = Note {
            id: self.next.fetch_add(1, Ordering::Relaxed) + 1,
            title: note.0.title,
            body: note.0.body,
            owner: who.subject().to_owned(),
        };
        self.with(|n| n.push(note.clone()));
        Created::Note(Json(note))
    }

    #[secure(scopes = "notes:read")]
    #[oai(path = "/notes/:id", method = "get")]
    async fn get(&self, who: Principal, id: Path<u64>) -> Found {
        // Someone else's note is 404, exactly like a missing one.
        match self.with(|n| {
            n.iter()
                .find(|n| n.id == id.0 && n.owner == who.subject())
                .cloned()
        }) {
            Some(note) => Found::Note(Json(note)),
            None => Found::NotFound,
        }
    }

    #[secure(scopes = "notes:write")]
    #[oai(path = "/notes/:id", method = "delete")]
    async fn delete(&self, who: Principal, id: Path<u64>) -> Deleted {
        let any = who.has_permission("notes:delete-any");
        let removed = self.with(|n| {
            let before = n.len();
            n.retain(|n| !(n.id == id.0 && (any || n.owner == who.subject())));
            before != n.len()
        });
        if removed {
            Deleted::Done
        } else {
            Deleted::NotFound
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::var("NOTES_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    let secret = match std::env::var("JWT_SECRET") {
        Ok(s) => s.into_bytes(),
        Err(_) => {
            eprintln!("warning: JWT_SECRET is not set; using a random key for this process only");
            random_secret()
        }
    };
    let security = Security::builder()
        .jwt(
            JwtConfig::hs256(&secret)?
                .issuer(std::env::var("JWT_ISSUER").unwrap_or_else(|_| "notes-demo".into()))
                .audience(std::env::var("JWT_AUDIENCE").unwrap_or_else(|_| "notes-api".into())),
        )
        .build()?;

    let api = service(Notes::default(), "notes", "0.1").server(format!("http://{addr}"));
    let docs = api.swagger_ui();
    let spec = api.spec_endpoint();
    let app = Route::new()
        .nest("/", api)
        .nest("/docs", route::public(docs))
        .at("/openapi.json", route::public(spec))
        .with(security.clone());

    let alice = poem_secure::testing::token(&security, "alice")
        .scopes(["me", "notes:read", "notes:write"])
        .roles(["user"])
        .expires_in(900)
        .bearer();
    println!("notes listening on http://{addr} — Swagger UI at http://{addr}/docs");
    println!("demo token for alice (15 min; the login endpoint arrives with the credentials work):\n  {alice}");
    Server::new(TcpListener::bind(addr)).run(app).await?;
    Ok(())
}

/// 32 random bytes from the OS, through std's randomly seeded hasher keys.
fn random_secret() -> Vec<u8> {
    use std::{collections::hash_map::RandomState, hash::BuildHasher};
    (0..4)
        .flat_map(|i: u64| RandomState::new().hash_one(i).to_le_bytes())
        .collect()
}
