//! The client IP behind reverse proxies: the socket peer, unless the peer is a
//! configured trusted proxy, in which case the forwarding header that proxy
//! writes is walked from the right to the first hop that is not trusted.

use std::{
    net::{IpAddr, SocketAddr},
    str::FromStr,
};

use ipnet::IpNet;
use poem::http::{header::FORWARDED, HeaderMap, HeaderName};

use crate::model::config::ConfigError;

/// The forwarding header that the trusted proxies write.
///
/// Only one is believed: a proxy that appends to `X-Forwarded-For` passes a
/// client's own `Forwarded` header through untouched, so reading both would
/// let the client choose its address.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (the de facto standard, and
    /// the default).
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client;proto=https, for="[2001:db8::1]:4711"`.
    Forwarded,
}

impl ForwardedHeader {
    fn name(self) -> HeaderName {
        match self {
            ForwardedHeader::XForwardedFor => HeaderName::from_static("x-forwarded-for"),
            ForwardedHeader::Forwarded => FORWARDED,
        }
    }
}

/// The reverse proxies whose forwarding header is believed, and the rule that
/// finds the client IP of a request.
///
/// The client IP is the socket peer. When the peer is in one of the trusted
/// networks, the forwarding header is walked from the right (the hop the
/// nearest proxy appended) to the left, and the first address that is **not**
/// trusted is the client: everything to its left was written by the client
/// itself and is ignored. So a spoofed header changes nothing unless it
/// arrives through a trusted proxy, and even then only the hops the proxies
/// vouch for are used.
///
/// - A peer outside every trusted network: its headers are ignored.
/// - A hop that cannot be parsed (`unknown`, an obfuscated RFC 7239 node, a
///   malformed `Forwarded` header, bytes that are not ASCII) ends the walk: the
///   client is taken to be the trusted hop that wrote it.
/// - Every hop trusted: the left-most one.
/// - IPv4-mapped IPv6 addresses (`::ffff:192.0.2.1`) are treated as IPv4.
///
/// ```
/// use poem::http::HeaderMap;
/// use secure_runtime::TrustedProxies;
///
/// let proxies = TrustedProxies::new(["10.0.0.0/8"]).unwrap();
/// let mut h = HeaderMap::new();
/// h.insert("x-forwarded-for", "6.6.6.6, 203.0.113.7, 10.1.1.1".parse().unwrap());
/// // Through two trusted proxies: the right-most untrusted hop.
/// let ip = proxies.client_ip(Some("10.0.0.2".parse().unwrap()), &h);
/// assert_eq!(ip, Some("203.0.113.7".parse().unwrap()));
/// // Straight from the internet: the header is ignored.
/// let ip = proxies.client_ip(Some("198.51.100.9".parse().unwrap()), &h);
/// assert_eq!(ip, Some("198.51.100.9".parse().unwrap()));
/// ```
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
    header: ForwardedHeader,
}

impl TrustedProxies {
    /// Trusts the given networks (`"10.0.0.0/8"`, `"2001:db8::/32"`) or single
    /// addresses (`"192.0.2.1"`), reading `X-Forwarded-For`.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first entry that is neither a CIDR nor an
    /// IP address.
    ///
    /// ```
    /// use secure_runtime::TrustedProxies;
    /// assert!(TrustedProxies::new(["10.0.0.0/8", "::1"]).is_ok());
    /// let err = TrustedProxies::new(["10.0.0.0/33"]).unwrap_err();
    /// assert!(err.to_string().contains("10.0.0.0/33"));
    /// ```
    pub fn new<I, S>(cidrs: I) -> Result<TrustedProxies, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Ok(TrustedProxies {
            nets: parse_networks(cidrs, "trusted proxy")?,
            header: ForwardedHeader::default(),
        })
    }

    /// Reads `header` instead of `X-Forwarded-For`.
    ///
    /// ```
    /// use secure_runtime::{ForwardedHeader, TrustedProxies};
    /// let p = TrustedProxies::new(["10.0.0.0/8"]).unwrap().header(ForwardedHeader::Forwarded);
    /// let mut h = poem::http::HeaderMap::new();
    /// h.insert("forwarded", r#"for="[2001:db8::7]:4711";proto=https"#.parse().unwrap());
    /// assert_eq!(p.client_ip(Some("10.0.0.1".parse().unwrap()), &h), Some("2001:db8::7".parse().unwrap()));
    /// ```
    #[must_use]
    pub fn header(mut self, header: ForwardedHeader) -> TrustedProxies {
        self.header = header;
        self
    }

    /// Whether `ip` is in a trusted network.
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets.iter().any(|n| n.contains(&ip))
    }

    /// The client IP of a request whose socket peer is `peer`; `None` only
    /// when there is no IP peer (e.g. a Unix socket).
    pub fn client_ip(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = peer?.to_canonical();
        if self.nets.is_empty() || !self.is_trusted(peer) {
            return Some(peer);
        }
        let mut client = peer;
        let lines = headers.get_all(self.header.name());
        match self.header {
            ForwardedHeader::XForwardedFor => {
                for line in lines.iter().rev() {
                    let Ok(line) = line.to_str() else {
                        return Some(client);
                    };
                    for hop in line.rsplit(',').map(trim_ows).filter(|h| !h.is_empty()) {
                        match parse_node(hop) {
                            Some(ip) if self.is_trusted(ip) => client = ip,
                            Some(ip) => return Some(ip),
                            None => return Some(client),
                        }
                    }
                }
            }
            ForwardedHeader::Forwarded => {
                let mut hops: Vec<Option<IpAddr>> = Vec::new();
                for line in lines.iter() {
                    let parsed = line.to_str().ok().and_then(forwarded_for_nodes);
                    match parsed {
                        Some(mut h) => hops.append(&mut h),
                        // A malformed line: nothing to its left can be placed.
                        None => {
                            hops.clear();
                            hops.push(None);
                        }
                    }
                }
                for hop in hops.into_iter().rev() {
                    match hop {
                        Some(ip) if self.is_trusted(ip) => client = ip,
                        Some(ip) => return Some(ip),
                        None => return Some(client),
                    }
                }
            }
        }
        Some(client)
    }
}

/// Parses CIDRs or single addresses.
pub(crate) fn parse_networks<I, S>(cidrs: I, what: &str) -> Result<Vec<IpNet>, ConfigError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    cidrs
        .into_iter()
        .map(|s| {
            let s = s.as_ref().trim();
            IpNet::from_str(s)
                .map(|n| match n {
                    // A v4-mapped v6 network means its IPv4 addresses.
                    IpNet::V6(v6) => match (v6.addr().to_ipv4_mapped(), v6.prefix_len()) {
                        (Some(v4), p) if p >= 96 => {
                            ipnet::Ipv4Net::new(v4, p - 96).map_or(n, IpNet::V4)
                        }
                        _ => n,
                    },
                    IpNet::V4(_) => n,
                })
                .or_else(|_| IpAddr::from_str(s).map(|ip| IpNet::from(ip.to_canonical())))
                .map_err(|_| {
                    ConfigError::new(format!(
                        "{what} `{s}` is neither a CIDR (`10.0.0.0/8`) nor an IP address"
                    ))
                })
        })
        .collect()
}

fn trim_ows(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

/// One node of a forwarding header: `192.0.2.1`, `192.0.2.1:8080`,
/// `2001:db8::1`, `[2001:db8::1]` or `[2001:db8::1]:8080`.
fn parse_node(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = IpAddr::from_str(s) {
        return Some(ip.to_canonical());
    }
    if let Ok(sa) = SocketAddr::from_str(s) {
        return Some(sa.ip().to_canonical());
    }
    let inner = s.strip_prefix('[')?.strip_suffix(']')?;
    std::net::Ipv6Addr::from_str(inner)
        .ok()
        .map(|ip| IpAddr::V6(ip).to_canonical())
}

/// The `for=` node of each element of one RFC 7239 `Forwarded` line, in
/// order; `None` for an element whose node is absent, `unknown` or
/// obfuscated. `None` overall when the line does not follow the grammar:
///
/// ```text
/// Forwarded         = 1#forwarded-element
/// forwarded-element = [ forwarded-pair ] *( ";" [ forwarded-pair ] )
/// forwarded-pair    = token "=" value
/// value             = token / quoted-string
/// ```
fn forwarded_for_nodes(line: &str) -> Option<Vec<Option<IpAddr>>> {
    let b = line.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    let mut node: Option<Option<IpAddr>> = None;
    let mut element_has_content = false;
    let skip_ows = |i: &mut usize| {
        while *i < b.len() && (b[*i] == b' ' || b[*i] == b'\t') {
            *i += 1;
        }
    };
    loop {
        skip_ows(&mut i);
        if i >= b.len() {
            break;
        }
        match b[i] {
            b',' => {
                if element_has_content {
                    out.push(node.take().flatten());
                }
                element_has_content = false;
                i += 1;
                continue;
            }
            b';' => {
                i += 1;
                continue;
            }
            _ => {}
        }
        // forwarded-pair
        let start = i;
        while i < b.len() && is_tchar(b[i]) {
            i += 1;
        }
        if i == start || i >= b.len() || b[i] != b'=' {
            return None;
        }
        let name = &line[start..i];
        i += 1;
        let value = if i < b.len() && b[i] == b'"' {
            i += 1;
            let mut v = String::new();
            loop {
                let c = *b.get(i)?;
                match c {
                    b'"' => {
                        i += 1;
                        break;
                    }
                    b'\\' => {
                        let e = *b.get(i + 1)?;
                        if !(e == b'\t' || (0x20..0x7f).contains(&e) || e >= 0x80) {
                            return None;
                        }
                        v.push(char::from(e));
                        i += 2;
                    }
                    b'\t' | 0x20..=0x7e => {
                        v.push(char::from(c));
                        i += 1;
                    }
                    _ => return None,
                }
            }
            v
        } else {
            let vs = i;
            while i < b.len() && is_tchar(b[i]) {
                i += 1;
            }
            if i == vs {
                return None;
            }
            line[vs..i].to_owned()
        };
        skip_ows(&mut i);
        if i < b.len() && b[i] != b';' && b[i] != b',' {
            return None;
        }
        element_has_content = true;
        if name.eq_ignore_ascii_case("for") {
            if node.is_some() {
                // Two `for` parameters in one element: ambiguous.
                return None;
            }
            node = Some(parse_node(&value));
        }
    }
    if element_has_content {
        out.push(node.take().flatten());
    }
    Some(out)
}

/// RFC 9110 `tchar`.
fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use poem::http::HeaderValue;
    use proptest::prelude::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn headers(name: &'static str, lines: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for l in lines {
            h.append(name, HeaderValue::from_str(l).unwrap());
        }
        h
    }

    fn xff(lines: &[&str]) -> HeaderMap {
        headers("x-forwarded-for", lines)
    }

    fn proxies() -> TrustedProxies {
        TrustedProxies::new(["10.0.0.0/8", "2001:db8:ffff::/48"]).unwrap()
    }

    #[test]
    fn untrusted_peer_spoofing_xff_is_ignored() {
        let h = xff(&["1.2.3.4"]);
        assert_eq!(
            proxies().client_ip(Some(ip("203.0.113.5")), &h),
            Some(ip("203.0.113.5"))
        );
    }

    #[test]
    fn no_trusted_proxies_means_the_peer() {
        let h = xff(&["1.2.3.4"]);
        let p = TrustedProxies::default();
        assert_eq!(p.client_ip(Some(ip("10.0.0.1")), &h), Some(ip("10.0.0.1")));
    }

    #[test]
    fn right_most_untrusted_hop_wins_over_spoofed_left_hops() {
        // The client sent "1.1.1.1"; the trusted proxy appended the real peer.
        let h = xff(&["1.1.1.1, 198.51.100.20"]);
        assert_eq!(
            proxies().client_ip(Some(ip("10.0.0.9")), &h),
            Some(ip("198.51.100.20"))
        );
    }

    #[test]
    fn chain_of_trusted_proxies_is_skipped_across_header_lines() {
        let h = xff(&["6.6.6.6, 198.51.100.20", "10.2.2.2", "10.3.3.3"]);
        assert_eq!(
            proxies().client_ip(Some(ip("10.0.0.9")), &h),
            Some(ip("198.51.100.20"))
        );
    }

    #[test]
    fn all_trusted_gives_left_most() {
        let h = xff(&["10.5.5.5, 10.6.6.6"]);
        assert_eq!(
            proxies().client_ip(Some(ip("10.0.0.9")), &h),
            Some(ip("10.5.5.5"))
        );
    }

    #[test]
    fn trusted_peer_without_header_is_the_client() {
        assert_eq!(
            proxies().client_ip(Some(ip("10.0.0.9")), &HeaderMap::new()),
            Some(ip("10.0.0.9"))
        );
    }

    #[test]
    fn malformed_hop_stops_at_the_trusted_writer() {
        let h = xff(&["1.2.3.4, garbage, 10.7.7.7"]);
        assert_eq!(
            proxies().client_ip(Some(ip("10.0.0.9")), &h),
            Some(ip("10.7.7.7"))
        );
        let h = xff(&["unknown"]);
        assert_eq!(
            proxies().client_ip(Some(ip("10.0.0.9")), &h),
            Some(ip("10.0.0.9"))
        );
    }

    #[test]
    fn xff_nodes_with_ports_brackets_and_empty_elements() {
        let p = proxies();
        let peer = Some(ip("10.0.0.9"));
        assert_eq!(
            p.client_ip(peer, &xff(&["198.51.100.1:4711"])),
            Some(ip("198.51.100.1"))
        );
        assert_eq!(
            p.client_ip(peer, &xff(&["[2001:db8::1]:80, "])),
            Some(ip("2001:db8::1"))
        );
        assert_eq!(
            p.client_ip(peer, &xff(&["[2001:db8::2]"])),
            Some(ip("2001:db8::2"))
        );
        assert_eq!(
            p.client_ip(peer, &xff(&["2001:db8::3,,"])),
            Some(ip("2001:db8::3"))
        );
    }

    #[test]
    fn v4_mapped_addresses_are_ipv4() {
        let p = proxies();
        // A dual-stack listener reports an IPv4 proxy as ::ffff:10.0.0.9.
        let h = xff(&["::ffff:198.51.100.4"]);
        assert_eq!(
            p.client_ip(Some(ip("::ffff:10.0.0.9")), &h),
            Some(ip("198.51.100.4"))
        );
        assert!(p.is_trusted(ip("::ffff:10.1.2.3")));
        let mapped = TrustedProxies::new(["::ffff:10.0.0.0/104"]).unwrap();
        assert!(mapped.is_trusted(ip("10.1.2.3")));
    }

    #[test]
    fn forwarded_header_only_when_configured() {
        let h = headers(
            "forwarded",
            &[r#"for=1.1.1.1, for="[2001:db8::5]:4711";proto=https;by=10.0.0.1"#],
        );
        let xff_reader = proxies();
        assert_eq!(
            xff_reader.client_ip(Some(ip("10.0.0.9")), &h),
            Some(ip("10.0.0.9"))
        );
        let fwd = proxies().header(ForwardedHeader::Forwarded);
        assert_eq!(
            fwd.client_ip(Some(ip("10.0.0.9")), &h),
            Some(ip("2001:db8::5"))
        );
    }

    #[test]
    fn forwarded_grammar() {
        let nodes = |s: &str| forwarded_for_nodes(s);
        assert_eq!(
            nodes("for=192.0.2.60;proto=http;by=203.0.113.43"),
            Some(vec![Some(ip("192.0.2.60"))])
        );
        assert_eq!(nodes("For=\"_gazonk\""), Some(vec![None]));
        assert_eq!(
            nodes("for=unknown, for=198.51.100.17"),
            Some(vec![None, Some(ip("198.51.100.17"))])
        );
        assert_eq!(nodes("proto=https"), Some(vec![None]));
        assert_eq!(nodes("for=\"192.0.2.1, for=6.6.6.6\""), Some(vec![None]));
        assert_eq!(
            nodes("for=\"[2001:db8:cafe::17]:4711\""),
            Some(vec![Some(ip("2001:db8:cafe::17"))])
        );
        assert_eq!(
            nodes("for=\"\\1\\9\\2.0.2.1\""),
            Some(vec![Some(ip("192.0.2.1"))])
        );
        assert_eq!(
            nodes(" , ;for=192.0.2.1;; ,"),
            Some(vec![Some(ip("192.0.2.1"))])
        );
        // Malformed: unterminated quote, missing value, junk after a value,
        // duplicate `for`.
        assert_eq!(nodes("for=\"192.0.2.1"), None);
        assert_eq!(nodes("for="), None);
        assert_eq!(nodes("for=192.0.2.1 x"), None);
        assert_eq!(nodes("=1"), None);
        assert_eq!(nodes("for=1.1.1.1;for=2.2.2.2"), None);
    }

    #[test]
    fn malformed_forwarded_line_hides_everything_to_its_left() {
        let fwd = proxies().header(ForwardedHeader::Forwarded);
        // The client sends an unterminated quote; the proxy's own line follows.
        let h = headers("forwarded", &["for=\"6.6.6.6", "for=198.51.100.2"]);
        assert_eq!(
            fwd.client_ip(Some(ip("10.0.0.9")), &h),
            Some(ip("198.51.100.2"))
        );
        let h = headers("forwarded", &["for=198.51.100.2", "for=\"6.6.6.6"]);
        assert_eq!(
            fwd.client_ip(Some(ip("10.0.0.9")), &h),
            Some(ip("10.0.0.9"))
        );
    }

    #[test]
    fn bad_cidr_is_a_config_error() {
        for bad in [
            "10.0.0.0/33",
            "",
            "10.0.0.0/8/8",
            "example.com",
            "10.0.0.0 /8",
        ] {
            assert!(TrustedProxies::new([bad]).is_err(), "{bad:?} accepted");
        }
    }

    fn any_ip() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            any::<[u8; 4]>().prop_map(IpAddr::from),
            any::<[u8; 16]>().prop_map(IpAddr::from),
        ]
    }

    proptest! {
        #[test]
        fn arbitrary_headers_never_panic(
            lines in proptest::collection::vec(any::<Vec<u8>>(), 0..4),
            peer in any_ip(),
        ) {
            for header in [ForwardedHeader::XForwardedFor, ForwardedHeader::Forwarded] {
                let p = TrustedProxies::new(["0.0.0.0/0", "::/0"]).unwrap().header(header);
                let mut h = HeaderMap::new();
                for l in &lines {
                    if let Ok(v) = HeaderValue::from_bytes(l) {
                        h.append(header.name(), v);
                    }
                }
                let _ = p.client_ip(Some(peer), &h);
            }
        }

        #[test]
        fn forwarded_text_never_panics(s in "[ -~\t]{0,64}") {
            let _ = forwarded_for_nodes(&s);
            let _ = parse_node(&s);
        }

        #[test]
        fn untrusted_peer_is_always_the_answer(
            spoof in "[ -~]{0,64}",
            peer in any::<[u8; 4]>(),
        ) {
            let peer = IpAddr::from(peer);
            prop_assume!(!proxies().is_trusted(peer));
            for header in [ForwardedHeader::XForwardedFor, ForwardedHeader::Forwarded] {
                let p = proxies().header(header);
                let mut h = HeaderMap::new();
                if let Ok(v) = HeaderValue::from_str(&spoof) {
                    h.append(header.name(), v);
                }
                prop_assert_eq!(p.client_ip(Some(peer), &h), Some(peer));
            }
        }

        #[test]
        fn client_prefix_never_overrides_the_proxied_hop(
            spoof in "[ -+\\--~]{0,48}",
            client in any::<[u8; 4]>(),
            trusted_hops in proptest::collection::vec(any::<[u8; 3]>(), 0..3),
        ) {
            let client = IpAddr::from(client);
            prop_assume!(!proxies().is_trusted(client));
            // Whatever the client put in front, each trusted proxy appends the
            // address it saw.
            let mut chain = vec![spoof.clone(), client.to_string()];
            chain.extend(trusted_hops.iter().map(|b| format!("10.{}.{}.{}", b[0], b[1], b[2])));
            let line = chain.join(", ");
            if let Ok(v) = HeaderValue::from_str(&line) {
                let mut h = HeaderMap::new();
                h.append("x-forwarded-for", v);
                prop_assert_eq!(proxies().client_ip(Some(ip("10.0.0.1")), &h), Some(client));
            }
        }
    }
}
