//! Test-only: poem's `TestClient` cannot set the socket peer, so this wrapper
//! sets the remote address from an `x-test-peer` header (`ip:port`) before
//! anything else sees the request.

use std::net::SocketAddr;

use poem::{
    web::{LocalAddr, RemoteAddr},
    Addr, Endpoint, EndpointExt, Request, RequestParts,
};

/// Wraps `ep` so that `x-test-peer: 203.0.113.7:5000` becomes the peer.
pub fn with_peer<E: Endpoint + 'static>(ep: E) -> impl Endpoint {
    ep.before(|req: Request| async move {
        let peer: Option<SocketAddr> = req
            .headers()
            .get("x-test-peer")
            .and_then(|v| v.to_str().ok())
            .map(|s| s.parse().expect("x-test-peer must be ip:port"));
        let Some(peer) = peer else { return Ok(req) };
        let (parts, body) = req.into_parts();
        let (mut hp, ()) = poem::http::Request::builder()
            .method(parts.method)
            .uri(parts.uri)
            .version(parts.version)
            .body(())
            .expect("a request rebuilt from valid parts")
            .into_parts();
        hp.headers = parts.headers;
        hp.extensions = parts.extensions;
        let rp = RequestParts::from((
            hp,
            LocalAddr::default(),
            RemoteAddr(Addr::SocketAddr(peer)),
            poem::http::uri::Scheme::HTTP,
        ));
        Ok(Request::from_parts(rp, body))
    })
}
