//! Arbitrary `X-Forwarded-For` / `Forwarded` values from a trusted and from an
//! untrusted peer: no panic; from an untrusted peer the answer is always the
//! peer itself (spoofed headers change nothing).
#![no_main]

use std::{net::SocketAddr, sync::OnceLock};

use libfuzzer_sys::fuzz_target;
use poem::{
    http::HeaderValue,
    web::{LocalAddr, RemoteAddr},
    Addr, Request, RequestParts,
};
use poem_secure::{ForwardedHeader, Security};

fn securities() -> &'static [Security; 2] {
    static S: OnceLock<[Security; 2]> = OnceLock::new();
    S.get_or_init(|| {
        [ForwardedHeader::XForwardedFor, ForwardedHeader::Forwarded].map(|h| {
            Security::builder().trusted_proxies(["10.0.0.0/8"]).forwarded_header(h).build().unwrap()
        })
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, value)) = data.split_first() else { return };
    let Ok(value) = HeaderValue::from_bytes(value) else { return };
    let security = &securities()[usize::from(selector & 1)];
    let name = if selector & 1 == 0 { "x-forwarded-for" } else { "forwarded" };
    for peer in ["10.1.2.3:5000", "203.0.113.9:5000"] {
        let peer: SocketAddr = peer.parse().unwrap();
        let (mut parts, ()) = poem::http::Request::builder().body(()).unwrap().into_parts();
        parts.headers.insert(poem::http::HeaderName::from_static(name), value.clone());
        let rp = RequestParts::from((
            parts,
            LocalAddr::default(),
            RemoteAddr(Addr::SocketAddr(peer)),
            poem::http::uri::Scheme::HTTP,
        ));
        let req = Request::from_parts(rp, poem::Body::empty());
        let ip = security.client_ip(&req);
        if peer.ip().to_string() == "203.0.113.9" {
            assert_eq!(ip, Some(peer.ip()), "an untrusted peer's header changed the client IP");
        }
    }
});
