//! Which address a connection comes from: the TCP peer, or, when the peer
//! is one of `[server] trusted_proxies`, the client its `X-Forwarded-For`
//! names. That address is what the per-IP connect limit counts and what the
//! auth webhook receives as `remote_ip`.
//!
//! `X-Forwarded-For` is read from the right: each trusted proxy appends the
//! address it received the request from, so the first address from the
//! right that is not a trusted proxy is the client. Everything to its left
//! was written by the client and is not believed.

use std::net::IpAddr;

use axum::http::HeaderMap;
use ipnet::IpNet;

/// The client's address as this gateway should believe it.
pub fn client_ip(trusted: &[IpNet], peer: IpAddr, headers: &HeaderMap) -> IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    let hops = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .collect::<Vec<_>>();
    for hop in hops.iter().rev() {
        // An entry that is not an address ends the chain we can believe.
        let Ok(ip) = hop.trim().parse::<IpAddr>() else {
            break;
        };
        client = ip.to_canonical();
        if !is_trusted(&client) {
            break;
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("x-forwarded-for", value.parse().unwrap());
        }
        headers
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let headers = forwarded(&["1.2.3.4"]);
        assert_eq!(client_ip(&trusted, ip("5.6.7.8"), &headers), ip("5.6.7.8"));
        assert_eq!(client_ip(&[], ip("10.0.0.1"), &headers), ip("10.0.0.1"));
    }

    #[test]
    fn a_trusted_chain_is_read_from_the_right() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        // The client forged 9.9.9.9; 1.2.3.4 is who the first proxy saw.
        let headers = forwarded(&["9.9.9.9, 1.2.3.4", "10.0.0.7"]);
        assert_eq!(client_ip(&trusted, ip("10.0.0.1"), &headers), ip("1.2.3.4"));
        // Every hop trusted: the leftmost address is the client.
        let headers = forwarded(&["10.1.1.1, 10.0.0.7"]);
        assert_eq!(
            client_ip(&trusted, ip("10.0.0.1"), &headers),
            ip("10.1.1.1")
        );
        // No header: the proxy itself.
        assert_eq!(
            client_ip(&trusted, ip("10.0.0.1"), &HeaderMap::new()),
            ip("10.0.0.1")
        );
        // Garbage stops the walk at the last address believed.
        let headers = forwarded(&["1.2.3.4, garbage, 10.0.0.9"]);
        assert_eq!(
            client_ip(&trusted, ip("10.0.0.1"), &headers),
            ip("10.0.0.9")
        );
    }

    #[test]
    fn ipv4_mapped_peers_match_ipv4_ranges() {
        let trusted: Vec<IpNet> = vec!["127.0.0.1/32".parse().unwrap()];
        let headers = forwarded(&["2001:db8::1"]);
        assert_eq!(
            client_ip(&trusted, ip("::ffff:127.0.0.1"), &headers),
            ip("2001:db8::1")
        );
    }
}
