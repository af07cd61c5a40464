//! The client behind a reverse proxy: the address a trusted proxy (HAProxy's `option
//! forwardfor`) names in `X-Forwarded-For`, for the listeners' per-client counts and logs.

use std::net::IpAddr;

use hyper::header::HeaderMap;

/// The client a request comes from: the connection's peer, or, when the peer is one of
/// `trusted` (a reverse proxy of the operator's), the address that proxy put in
/// `X-Forwarded-For`.
///
/// The header is read from the right: each proxy appends the address it received the request
/// from, so the rightmost entry that is not itself a trusted proxy is the first address no
/// trusted proxy vouches for beyond; whatever is left of it was written by the client and is
/// ignored. An entry that is not an address (a port, `unknown`, an obfuscated name) stops the
/// walk at the last trusted hop. From any other peer the header is ignored entirely, so a forged
/// one names the sender's own address.
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    let peer = canonical(peer);
    if !trusted.contains(&peer) {
        return peer;
    }
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for entry in entries.iter().rev() {
        match entry.parse::<IpAddr>() {
            Ok(a) => {
                client = canonical(a);
                if !trusted.contains(&client) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    client
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
pub fn canonical(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(a, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_str(v).expect("header"));
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    #[test]
    fn the_forwarded_address_only_from_a_trusted_proxy() {
        let proxy = ip("10.0.0.5");
        let trusted = [proxy, ip("10.0.0.6")];
        let h = xff(&["198.51.100.7"]);
        // Straight from a client: its own address, whatever it claims.
        assert_eq!(client_address(ip("203.0.113.1"), &h, &trusted), ip("203.0.113.1"));
        assert_eq!(client_address(ip("203.0.113.1"), &h, &[]), ip("203.0.113.1"));
        // Through the proxy: the address it forwarded for.
        assert_eq!(client_address(proxy, &h, &trusted), ip("198.51.100.7"));
        // What the client wrote in front of the proxy's entry does not count.
        let h = xff(&["1.2.3.4, 198.51.100.7"]);
        assert_eq!(client_address(proxy, &h, &trusted), ip("198.51.100.7"));
        // Two trusted proxies in a row, over two header lines.
        let h = xff(&["1.2.3.4, 198.51.100.7", "10.0.0.6"]);
        assert_eq!(client_address(proxy, &h, &trusted), ip("198.51.100.7"));
        // No header, or garbage where the proxy's entry should be: the proxy itself.
        assert_eq!(client_address(proxy, &HeaderMap::new(), &trusted), proxy);
        assert_eq!(client_address(proxy, &xff(&["1.2.3.4, unknown"]), &trusted), proxy);
        assert_eq!(client_address(proxy, &xff(&["198.51.100.7:4711"]), &trusted), proxy);
        // A mapped IPv4 peer is the IPv4 address.
        assert_eq!(client_address(ip("::ffff:10.0.0.5"), &xff(&["2001:db8::1"]), &trusted), ip("2001:db8::1"));
    }
}
