//! Who the client is: the socket peer, or the address a trusted proxy forwarded. The one
//! address every part of the edge uses (rate-limit buckets, the sealed client IP of uploads).

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;

use crate::AppState;

/// The client's address, put in every request's extensions by [`resolve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl ClientAddr {
    /// The rate-limit bucket: the IPv4 address, or the IPv6 /64 (one subscriber's usual
    /// allocation: counting single v6 addresses would give each client 2^64 budgets).
    pub fn bucket(&self) -> String {
        match self.0.to_canonical() {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => {
                let s = v6.segments();
                let net = Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
                format!("{net}/64")
            }
        }
    }
}

/// The proxies whose forwarding headers are believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn new(blocks: &[IpNet]) -> Self {
        TrustedProxies(blocks.to_vec())
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// The client behind `peer`: walk the forwarding chain from the nearest hop outwards for as
    /// long as the hop is a trusted proxy. `Forwarded` (RFC 7239) is read when present, else
    /// `X-Forwarded-For`. A hop that is not an address (`unknown`, an obfuscated name, garbage)
    /// ends the walk at the last proxy that named it: nothing a client writes is taken further.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let hops = forwarded_for(headers);
        let mut current = peer;
        for hop in hops.iter().rev() {
            if !self.trusts(current) {
                break;
            }
            match hop {
                Some(ip) => current = *ip,
                None => break,
            }
        }
        current.to_canonical()
    }
}

/// The `for=` hops of every `Forwarded` header (in order), or else of `X-Forwarded-For`; `None`
/// for a hop that is not an address.
fn forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let forwarded: Vec<&str> = headers
        .get_all(axum::http::header::FORWARDED)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if !forwarded.is_empty() {
        return forwarded
            .iter()
            .flat_map(|v| v.split(','))
            .filter_map(|element| {
                element.split(';').find_map(|pair| {
                    let (k, v) = pair.split_once('=')?;
                    k.trim()
                        .eq_ignore_ascii_case("for")
                        .then(|| node_ip(v.trim().trim_matches('"')))
                })
            })
            .collect();
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|hop| node_ip(hop.trim()))
        .collect()
}

/// An RFC 7239 node (`192.0.2.1`, `192.0.2.1:80`, `[2001:db8::1]`, `[2001:db8::1]:80`) or a
/// bare address as X-Forwarded-For writes it.
fn node_ip(node: &str) -> Option<IpAddr> {
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sa) = node.parse::<SocketAddr>() {
        return Some(sa.ip());
    }
    let inner = node.strip_prefix('[')?.split_once(']')?.0;
    inner.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
}

/// Middleware: resolve the client's address once, for everything after it.
pub async fn resolve(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let ip = state.proxies.client(peer, req.headers());
    req.extensions_mut().insert(ClientAddr(ip));
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(list: &[&str]) -> TrustedProxies {
        let blocks: Vec<IpNet> = list.iter().map(|s| s.parse().unwrap()).collect();
        TrustedProxies::new(&blocks)
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn headers_from_an_untrusted_peer_are_ignored() {
        let p = proxies(&["10.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "1.2.3.4"), ("forwarded", "for=5.6.7.8")]);
        assert_eq!(p.client(ip("203.0.113.9"), &h), ip("203.0.113.9"));
        assert_eq!(
            TrustedProxies::default().client(ip("127.0.0.1"), &h),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn the_chain_is_walked_only_through_trusted_hops() {
        let p = proxies(&["10.0.0.0/8", "192.168.1.1/32"]);
        // A client-supplied first hop (6.6.6.6) is never reached: 198.51.100.7 is not a proxy.
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 198.51.100.7, 10.1.2.3")]);
        assert_eq!(p.client(ip("192.168.1.1"), &h), ip("198.51.100.7"));
        let h = headers(&[
            ("forwarded", "for=6.6.6.6, for=\"[2001:db8:cafe::17]:4711\""),
            ("x-forwarded-for", "9.9.9.9"),
        ]);
        assert_eq!(p.client(ip("10.0.0.1"), &h), ip("2001:db8:cafe::17"));
        let h = headers(&[("forwarded", "for=unknown;proto=https")]);
        assert_eq!(p.client(ip("10.0.0.1"), &h), ip("10.0.0.1"));
        let h = headers(&[("x-forwarded-for", "1.2.3.4:5678, garbage")]);
        assert_eq!(p.client(ip("10.0.0.1"), &h), ip("10.0.0.1"));
        let h = headers(&[("x-forwarded-for", "1.2.3.4:5678")]);
        assert_eq!(p.client(ip("10.0.0.1"), &h), ip("1.2.3.4"));
        // Several header lines are one list, in order.
        let h = headers(&[
            ("x-forwarded-for", "7.7.7.7"),
            ("x-forwarded-for", "10.9.9.9"),
        ]);
        assert_eq!(p.client(ip("10.0.0.1"), &h), ip("7.7.7.7"));
    }

    #[test]
    fn v4_mapped_peers_match_v4_blocks() {
        let p = proxies(&["127.0.0.1/32"]);
        let h = headers(&[("x-forwarded-for", "8.8.4.4")]);
        assert_eq!(p.client(ip("::ffff:127.0.0.1"), &h), ip("8.8.4.4"));
    }

    #[test]
    fn ipv6_clients_share_their_64() {
        let a = ClientAddr(ip("2001:db8:1:2:aaaa::1"));
        let b = ClientAddr(ip("2001:db8:1:2:ffff:1:2:3"));
        let c = ClientAddr(ip("2001:db8:1:3::1"));
        assert_eq!(a.bucket(), b.bucket());
        assert_ne!(a.bucket(), c.bucket());
        assert_eq!(ClientAddr(ip("::ffff:1.2.3.4")).bucket(), "1.2.3.4");
    }
}
