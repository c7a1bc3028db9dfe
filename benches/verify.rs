//! The verifier's own cost: for each algorithm, the whole guard evaluation
//! (`Security::authorize`: header parsing, verification, principal, scope
//! check) beside a raw `jsonwebtoken::decode` of the same token into the
//! claims a hand-written extractor would read. Goal: guard <= raw + 10%.
//!
//!   cargo bench -p poem-secure-benches --bench verify            (full sampling)
//!   cargo bench -p poem-secure-benches --bench verify -- --quick

mod common;

use common::{ready, ITEMS};
use criterion::{criterion_group, criterion_main, Criterion};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use poem::Request;
use poem_secure::{testing::token, JwtConfig, Security};

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct RawClaims {
    sub: String,
    scope: String,
    roles: Vec<String>,
    jti: String,
    exp: u64,
}

struct Case {
    name: &'static str,
    security: Security,
    key: DecodingKey,
    alg: Algorithm,
}

fn cases() -> Vec<Case> {
    let pem = |f: &str| {
        std::fs::read(format!("{}/../tests/keys/{f}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    };
    let pair = |alg, private: &str, public: &str| {
        JwtConfig::key_pair_pem(alg, &pem(private), &pem(public))
            .unwrap()
            .issuer("bench")
            .audience("api")
    };
    let secret = [3u8; 32];
    vec![
        Case {
            name: "HS256",
            security: Security::builder()
                .jwt(
                    JwtConfig::hs256(secret)
                        .unwrap()
                        .issuer("bench")
                        .audience("api"),
                )
                .build()
                .unwrap(),
            key: DecodingKey::from_secret(&secret),
            alg: Algorithm::HS256,
        },
        Case {
            name: "RS256",
            security: Security::builder()
                .jwt(pair(Algorithm::RS256, "rsa_private.pem", "rsa_public.pem"))
                .build()
                .unwrap(),
            key: DecodingKey::from_rsa_pem(&pem("rsa_public.pem")).unwrap(),
            alg: Algorithm::RS256,
        },
        Case {
            name: "ES256",
            security: Security::builder()
                .jwt(pair(Algorithm::ES256, "ec_private.pem", "ec_public.pem"))
                .build()
                .unwrap(),
            key: DecodingKey::from_ec_pem(&pem("ec_public.pem")).unwrap(),
            alg: Algorithm::ES256,
        },
        Case {
            name: "EdDSA",
            security: Security::builder()
                .jwt(pair(
                    Algorithm::EdDSA,
                    "ed25519_private.pem",
                    "ed25519_public.pem",
                ))
                .build()
                .unwrap(),
            key: DecodingKey::from_ed_pem(&pem("ed25519_public.pem")).unwrap(),
            alg: Algorithm::EdDSA,
        },
    ]
}

fn bench(c: &mut Criterion) {
    for case in cases() {
        let jwt = token(&case.security, "alice")
            .scopes(["items", "me"])
            .roles(["user"])
            .expires_in(3600)
            .sign();
        let mut validation = Validation::new(case.alg);
        validation.set_issuer(&["bench"]);
        validation.set_audience(&["api"]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let req = Request::builder()
            .header("authorization", format!("Bearer {jwt}"))
            .finish();
        let mut group = c.benchmark_group(case.name);
        group.bench_function("raw jsonwebtoken::decode", |b| {
            b.iter(|| {
                let data = jsonwebtoken::decode::<RawClaims>(&jwt, &case.key, &validation).unwrap();
                assert!(data.claims.scope.split(' ').any(|s| s == "items"));
            })
        });
        group.bench_function("poem-secure guard", |b| {
            b.iter(|| {
                let p = ready(case.security.authorize(&ITEMS, &req)).unwrap();
                assert!(p.is_some());
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
