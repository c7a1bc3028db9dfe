//! Allocations per verification and per request, counted by a global
//! allocator (results in BENCHMARKS.md):
//!
//! 1. verification alone, on a prepared request: poem-secure's guard
//!    (`Security::authorize` with `#[secure(scopes = "items")]`'s policy)
//!    beside a raw `jsonwebtoken::decode` (key and validation built once)
//!    plus the same scope check, for HS256, RS256, ES256 and EdDSA;
//! 2. a whole request through the overhead benchmark's app (`app.rs`:
//!    routing, extractor or guard, handler, response), per route, polled
//!    in-process without a socket.
//!
//! ```text
//! cargo run --release -p poem-secure-benches --bin alloc_count
//! cargo run --release -p poem-secure-benches --bin alloc_count -- --trace   # where the guard allocates
//! ```
//!
//! `-- --requests ROUTE N` only sends N requests to `/ROUTE` (for
//! `valgrind --tool=callgrind`: instructions per request, see BENCHMARKS.md).
//!
//! `--trace` prints, for one HS256 guard call and one raw decode, the
//! innermost frames of poem-secure, jsonwebtoken, serde and poem under each
//! allocation (symbol names only; release builds have no line tables), then
//! the same for one whole request to `/secure` and one to `/floor`.

mod app;
mod common;

use std::{
    alloc::{GlobalAlloc, Layout, System},
    backtrace::Backtrace,
    cell::Cell,
    sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed},
};

use common::{ready, ITEMS};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use poem::{Endpoint, Request};
use poem_secure::{testing::token, JwtConfig, Security};

/// `System`, counting every allocation (a `realloc` counts as one) and the
/// bytes asked for.
struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);
/// `--trace`: print where each allocation comes from.
static TRACE: AtomicBool = AtomicBool::new(false);
/// How many of the matching frames a trace line shows, innermost first.
static DEPTH: AtomicUsize = AtomicUsize::new(3);

thread_local! {
    /// Set while a trace is being printed (which allocates itself).
    static TRACING: Cell<bool> = const { Cell::new(false) };
}

/// Counts one allocation of `size` bytes; traces it under `--trace`.
fn record(size: usize) {
    ALLOCS.fetch_add(1, Relaxed);
    BYTES.fetch_add(size as u64, Relaxed);
    if TRACE.load(Relaxed) && TRACING.try_with(|t| !t.replace(true)).unwrap_or(false) {
        let trace = Backtrace::force_capture().to_string();
        let frames: Vec<&str> = trace
            .lines()
            .map(str::trim)
            .filter_map(|l| l.split_once(": ").map(|(_, f)| f))
            .filter(|f| {
                [
                    "secure_runtime",
                    "jsonwebtoken",
                    "serde",
                    "poem",
                    "alloc_count::",
                    "app::",
                ]
                .iter()
                .any(|k| f.contains(k))
                    && !f.contains("Counting")
                    && !f.contains("alloc_count::record")
            })
            .take(DEPTH.load(Relaxed))
            .collect();
        eprintln!("alloc {size:>5} B  {}", frames.join("  <  "));
        TRACING.with(|t| t.set(false));
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: forwarded (see the impl).
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: forwarded (see the impl).
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(new_size);
        // SAFETY: forwarded (see the impl).
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded (see the impl).
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const RUNS: u64 = 2_000;

/// Allocations and bytes per call of `f` on an input made by `setup` (whose
/// own allocations are not counted), after a warm-up (lazy statics,
/// thread-locals, caches).
fn per_call<I>(mut setup: impl FnMut() -> I, mut f: impl FnMut(I)) -> (f64, f64) {
    for _ in 0..100 {
        f(setup());
    }
    let (mut allocs, mut bytes) = (0, 0);
    for _ in 0..RUNS {
        let input = setup();
        let (a0, b0) = (ALLOCS.load(Relaxed), BYTES.load(Relaxed));
        f(input);
        allocs += ALLOCS.load(Relaxed) - a0;
        bytes += BYTES.load(Relaxed) - b0;
    }
    (allocs as f64 / RUNS as f64, bytes as f64 / RUNS as f64)
}

#[derive(serde::Deserialize)]
struct ScopeClaims {
    scope: String,
}

fn pem(file: &str) -> Vec<u8> {
    let path = format!("{}/../tests/keys/{file}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// One case per algorithm: the `Security`, and the raw side's key.
fn cases() -> Vec<(&'static str, Security, DecodingKey, Algorithm)> {
    let pair = |alg, private: &str, public: &str| {
        Security::builder()
            .jwt(
                JwtConfig::key_pair_pem(alg, &pem(private), &pem(public))
                    .expect("test keys")
                    .issuer("bench")
                    .audience("api"),
            )
            .build()
            .expect("a valid configuration")
    };
    let secret = [3u8; 32];
    let hs = Security::builder()
        .jwt(
            JwtConfig::hs256(secret)
                .expect("a 32-byte secret")
                .issuer("bench")
                .audience("api"),
        )
        .build()
        .expect("a valid configuration");
    vec![
        (
            "HS256",
            hs,
            DecodingKey::from_secret(&secret),
            Algorithm::HS256,
        ),
        (
            "RS256",
            pair(Algorithm::RS256, "rsa_private.pem", "rsa_public.pem"),
            DecodingKey::from_rsa_pem(&pem("rsa_public.pem")).expect("test key"),
            Algorithm::RS256,
        ),
        (
            "ES256",
            pair(Algorithm::ES256, "ec_private.pem", "ec_public.pem"),
            DecodingKey::from_ec_pem(&pem("ec_public.pem")).expect("test key"),
            Algorithm::ES256,
        ),
        (
            "EdDSA",
            pair(
                Algorithm::EdDSA,
                "ed25519_private.pem",
                "ed25519_public.pem",
            ),
            DecodingKey::from_ed_pem(&pem("ed25519_public.pem")).expect("test key"),
            Algorithm::EdDSA,
        ),
    ]
}

fn verification() {
    println!("| verification alone | raw `jsonwebtoken::decode` + scope check | poem-secure guard (`Security::authorize`) |");
    println!("|---|---|---|");
    for (name, security, key, alg) in cases() {
        let jwt = token(&security, "alice")
            .scopes(["items", "me"])
            .roles(["user"])
            .expires_in(3600)
            .sign();
        let mut validation = Validation::new(alg);
        validation.set_issuer(&["bench"]);
        validation.set_audience(&["api"]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let req = Request::builder()
            .header("authorization", format!("Bearer {jwt}"))
            .finish();
        let raw = per_call(
            || (),
            |()| {
                let data = jsonwebtoken::decode::<ScopeClaims>(&jwt, &key, &validation)
                    .expect("a valid token");
                assert!(data.claims.scope.split(' ').any(|s| s == "items"));
            },
        );
        let guard = per_call(
            || (),
            |()| {
                let principal = ready(security.authorize(&ITEMS, &req)).expect("authorized");
                assert!(principal.is_some());
            },
        );
        println!(
            "| {name} | {:.2} allocations, {:.0} bytes | {:.2} allocations, {:.0} bytes |",
            raw.0, raw.1, guard.0, guard.1
        );
    }
}

fn whole_requests() {
    let security = app::security();
    let auth = format!("Bearer {}", app::bearer_token(&security));
    let app = app::app(&security);
    println!("| route (whole request, in-process) | allocations | bytes |");
    println!("|---|---|---|");
    for route in ["none", "public", "secure", "secure_rate", "floor", "grants"] {
        let uri = format!("/{route}");
        let (allocs, bytes) = per_call(
            || {
                Request::builder()
                    .uri_str(&uri)
                    .header("authorization", &auth)
                    .finish()
            },
            |req| {
                let resp = ready(app.get_response(req));
                assert!(resp.status().is_success(), "{route}: {}", resp.status());
            },
        );
        println!("| `{route}` | {allocs:.2} | {bytes:.0} |");
    }
}

/// One HS256 guard call and one raw decode, each allocation traced.
fn trace() {
    let (_, security, key, alg) = cases().swap_remove(0);
    let jwt = token(&security, "alice")
        .scopes(["items", "me"])
        .roles(["user"])
        .expires_in(3600)
        .sign();
    let mut validation = Validation::new(alg);
    validation.set_issuer(&["bench"]);
    validation.set_audience(&["api"]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let req = Request::builder()
        .header("authorization", format!("Bearer {jwt}"))
        .finish();
    for _ in 0..10 {
        // warm-up: lazy statics, thread-locals
        drop(ready(security.authorize(&ITEMS, &req)));
        drop(jsonwebtoken::decode::<ScopeClaims>(&jwt, &key, &validation));
    }
    eprintln!("== HS256 guard (Security::authorize)");
    TRACE.store(true, Relaxed);
    let principal = ready(security.authorize(&ITEMS, &req));
    TRACE.store(false, Relaxed);
    drop(principal);
    eprintln!("== HS256 raw jsonwebtoken::decode");
    TRACE.store(true, Relaxed);
    let data = jsonwebtoken::decode::<ScopeClaims>(&jwt, &key, &validation);
    TRACE.store(false, Relaxed);
    drop(data);
    trace_requests();
}

/// One whole request to `/secure` and one to `/floor` through the overhead
/// app, each allocation traced (more frames: the request path is deeper).
fn trace_requests() {
    let security = app::security();
    let auth = format!("Bearer {}", app::bearer_token(&security));
    let app = app::app(&security);
    DEPTH.store(5, Relaxed);
    for route in ["secure", "floor"] {
        let req = || {
            Request::builder()
                .uri_str(format!("/{route}"))
                .header("authorization", &auth)
                .finish()
        };
        for _ in 0..10 {
            drop(ready(app.get_response(req())));
        }
        let req = req();
        eprintln!("== whole request /{route}");
        TRACE.store(true, Relaxed);
        let resp = ready(app.get_response(req));
        TRACE.store(false, Relaxed);
        drop(resp);
    }
}

/// `--requests ROUTE N`: N whole requests to `/ROUTE` after a warm-up, and
/// nothing else, for an instruction count under callgrind (run it with two
/// N and take the difference: the setup cancels out).
fn requests(route: &str, n: u64) {
    let security = app::security();
    let auth = format!("Bearer {}", app::bearer_token(&security));
    let app = app::app(&security);
    let uri = format!("/{route}");
    for _ in 0..100 + n {
        let req = Request::builder()
            .uri_str(&uri)
            .header("authorization", &auth)
            .finish();
        let resp = ready(app.get_response(req));
        assert!(resp.status().is_success(), "{route}: {}", resp.status());
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, route, n] = &args[..] {
        if flag == "--requests" {
            requests(route, n.parse().expect("a number of requests"));
            return;
        }
    }
    if args.iter().any(|a| a == "--trace") {
        trace();
        return;
    }
    verification();
    println!();
    whole_requests();
}
