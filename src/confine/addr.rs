//! Which IP addresses a URL an API client supplied may reach. Pure: the
//! resolver and the stream opener ask it about each address they would
//! connect to.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// 0.0.0.0/8, `::`: "this host", which reaches local services.
    Unspecified,
    /// 169.254.0.0/16, fe80::/10: where clouds serve instance metadata
    /// (and its credentials).
    LinkLocal,
    /// Other well-known metadata addresses (AWS's IPv6 fd00:ec2::254,
    /// Alibaba's 100.100.100.200).
    Metadata,
    /// 224.0.0.0/4, ff00::/8.
    Multicast,
    /// 240.0.0.0/4 and 255.255.255.255.
    Reserved,
    /// 127.0.0.0/8, `::1`: this host's own services.
    Loopback,
    /// 10/8, 172.16/12, 192.168/16, 100.64/10 (carrier NAT), fc00::/7.
    Private,
}

impl Kind {
    /// Whether `[api] allow_private_urls` lifts the refusal.
    pub fn private(self) -> bool {
        matches!(self, Kind::Loopback | Kind::Private)
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Unspecified => "an unspecified address",
            Kind::LinkLocal => "a link-local address (where clouds serve instance metadata)",
            Kind::Metadata => "a cloud metadata address",
            Kind::Multicast => "a multicast address",
            Kind::Reserved => "a reserved address",
            Kind::Loopback => "a loopback address",
            Kind::Private => "a private address",
        }
    }
}

/// What kind of special address `ip` is; None for a public one.
pub fn kind(ip: IpAddr) -> Option<Kind> {
    match ip {
        IpAddr::V4(v4) => kind_v4(v4),
        IpAddr::V6(v6) => kind_v6(v6),
    }
}

fn kind_v4(ip: Ipv4Addr) -> Option<Kind> {
    let [a, b, c, d] = ip.octets();
    Some(match (a, b) {
        (0, _) => Kind::Unspecified,
        (127, _) => Kind::Loopback,
        (169, 254) => Kind::LinkLocal,
        (10, _) | (192, 168) => Kind::Private,
        (172, 16..=31) => Kind::Private,
        (100, 100) if c == 100 && d == 200 => Kind::Metadata,
        (100, 64..=127) => Kind::Private,
        (224..=239, _) => Kind::Multicast,
        (240..=255, _) => Kind::Reserved,
        _ => return None,
    })
}

fn kind_v6(ip: Ipv6Addr) -> Option<Kind> {
    // An IPv4 address in IPv6 clothes is judged as the IPv4 one:
    // ::ffff:127.0.0.1 reaches loopback as surely as 127.0.0.1, and so
    // does the NAT64 prefix 64:ff9b::/96 on a NAT64 network.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return kind_v4(v4);
    }
    let s = ip.segments();
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [.., hi, lo] = s;
        return kind_v4(Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)));
    }
    Some(if ip.is_unspecified() {
        Kind::Unspecified
    } else if ip.is_loopback() {
        Kind::Loopback
    } else if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
        Kind::Metadata
    } else if ip.is_unicast_link_local() {
        Kind::LinkLocal
    } else if ip.is_unique_local() {
        Kind::Private
    } else if ip.is_multicast() {
        Kind::Multicast
    } else {
        return None;
    })
}

/// The refusal of `ip`, if any, under `allow_private`.
pub fn refused(ip: IpAddr, allow_private: bool) -> Option<Kind> {
    kind(ip).filter(|k| !(allow_private && k.private()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(text: &str) -> Option<Kind> {
        kind(text.parse().unwrap())
    }

    #[test]
    fn special_addresses_are_named() {
        assert_eq!(k("169.254.169.254"), Some(Kind::LinkLocal));
        assert_eq!(k("fe80::1"), Some(Kind::LinkLocal));
        assert_eq!(k("fd00:ec2::254"), Some(Kind::Metadata));
        assert_eq!(k("100.100.100.200"), Some(Kind::Metadata));
        assert_eq!(k("0.0.0.0"), Some(Kind::Unspecified));
        assert_eq!(k("::"), Some(Kind::Unspecified));
        assert_eq!(k("127.0.0.1"), Some(Kind::Loopback));
        assert_eq!(k("127.8.9.10"), Some(Kind::Loopback));
        assert_eq!(k("::1"), Some(Kind::Loopback));
        assert_eq!(k("::ffff:127.0.0.1"), Some(Kind::Loopback));
        assert_eq!(k("::ffff:169.254.169.254"), Some(Kind::LinkLocal));
        assert_eq!(k("64:ff9b::a9fe:a9fe"), Some(Kind::LinkLocal));
        assert_eq!(k("10.1.2.3"), Some(Kind::Private));
        assert_eq!(k("172.31.255.255"), Some(Kind::Private));
        assert_eq!(k("192.168.0.1"), Some(Kind::Private));
        assert_eq!(k("100.64.0.1"), Some(Kind::Private));
        assert_eq!(k("fd12::1"), Some(Kind::Private));
        assert_eq!(k("224.0.0.1"), Some(Kind::Multicast));
        assert_eq!(k("ff02::1"), Some(Kind::Multicast));
        assert_eq!(k("255.255.255.255"), Some(Kind::Reserved));
        // Public ones, including neighbours of the ranges above.
        for public in [
            "8.8.8.8",
            "172.15.255.255",
            "172.32.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "169.253.1.1",
            "203.0.113.5",
            "2001:db8::1",
            "2606:4700::1111",
        ] {
            assert_eq!(k(public), None, "{public}");
        }
    }

    #[test]
    fn only_private_ones_are_lifted_by_the_setting() {
        let ip = |t: &str| t.parse::<IpAddr>().unwrap();
        assert_eq!(refused(ip("127.0.0.1"), false), Some(Kind::Loopback));
        assert_eq!(refused(ip("127.0.0.1"), true), None);
        assert_eq!(refused(ip("10.0.0.1"), true), None);
        assert_eq!(refused(ip("169.254.169.254"), true), Some(Kind::LinkLocal));
        assert_eq!(refused(ip("0.0.0.0"), true), Some(Kind::Unspecified));
        assert_eq!(refused(ip("8.8.8.8"), false), None);
    }
}
