//! Which IP addresses a webhook may be sent to.
//!
//! Only globally routable unicast addresses are public. Everything else — loopback, private,
//! link-local (with the cloud metadata address 169.254.169.254), carrier-grade NAT, multicast,
//! unspecified, documentation and benchmarking ranges — is refused unless the operator allows
//! private targets, or lists the range in an allow-list. IPv6 forms that embed an IPv4 address
//! (mapped, compatible, NAT64, 6to4) are judged by the address they embed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// True when the address is reachable on the public internet and safe to contact.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

/// Where webhooks may go: public addresses, plus everything when private targets are allowed
/// (local testing), plus the ranges of an operator's allow-list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetPolicy {
    pub allow_private: bool,
    pub allowed_ranges: Vec<IpNet>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a CIDR range such as 10.1.0.0/16 or fd00::/8")]
pub struct InvalidRange(pub String);

impl TargetPolicy {
    /// Parses a comma-separated list of CIDR ranges (`LINKKIT_ALLOWED_TARGET_CIDRS`).
    pub fn parse_ranges(text: &str) -> Result<Vec<IpNet>, InvalidRange> {
        text.split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(|part| {
                part.parse::<IpNet>()
                    .map_err(|_| InvalidRange(part.to_owned()))
            })
            .collect()
    }

    pub fn permits(&self, ip: IpAddr) -> bool {
        self.allow_private || is_public(ip) || self.in_allowed_range(ip)
    }

    fn in_allowed_range(&self, ip: IpAddr) -> bool {
        let mapped = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        self.allowed_ranges
            .iter()
            .any(|range| range.contains(&ip) || mapped.is_some_and(|v4| range.contains(&v4)))
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let refused = a == 0                                   // "this network", 0.0.0.0/8
        || a == 10                                         // private
        || a == 127                                        // loopback
        || (a == 100 && (64..=127).contains(&b))           // carrier-grade NAT 100.64/10
        || (a == 169 && b == 254)                          // link-local, cloud metadata
        || (a == 172 && (16..=31).contains(&b))            // private
        || (a == 192 && b == 0 && c == 0)                  // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2)                  // TEST-NET-1
        || (a == 192 && b == 88 && c == 99)                // 6to4 relay anycast
        || (a == 192 && b == 168)                          // private
        || (a == 198 && (18..=19).contains(&b))            // benchmarking
        || (a == 198 && b == 51 && c == 100)               // TEST-NET-2
        || (a == 203 && b == 0 && c == 113)                // TEST-NET-3
        || a >= 224; // multicast, reserved, broadcast
    !refused
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let segments = ip.segments();
    if let Some(v4) = embedded_v4(ip) {
        return is_public_v4(v4);
    }
    let global_unicast = (segments[0] & 0xe000) == 0x2000; // 2000::/3
    let documentation = segments[0] == 0x2001 && segments[1] == 0x0db8;
    let teredo_or_benchmark = segments[0] == 0x2001 && segments[1] <= 0x01ff;
    let orchid = segments[0] == 0x2001 && (0x0010..=0x003f).contains(&segments[1]);
    global_unicast && !documentation && !teredo_or_benchmark && !orchid
}

/// The IPv4 address inside an IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`),
/// NAT64 (`64:ff9b::a.b.c.d`) or 6to4 (`2002:aabb:ccdd::`) address.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let tail = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if s[..5] == [0, 0, 0, 0, 0] && (s[5] == 0xffff || s[5] == 0) {
        // `::` and `::1` land here too and come out as 0.0.0.0 and 0.0.0.1: refused.
        return Some(tail);
    }
    if s[0] == 0x0064 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        return Some(tail);
    }
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn public(text: &str) -> bool {
        is_public(text.parse().unwrap())
    }

    #[test]
    fn non_public_addresses_are_refused() {
        for address in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "192.0.2.10",
            "198.51.100.7",
            "203.0.113.9",
            "198.18.0.1",
            "::",
            "::1",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:c0a8:0101::1",
        ] {
            assert!(!public(address), "{address} must be refused");
        }
    }

    #[test]
    fn public_addresses_are_allowed() {
        for address in [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(public(address), "{address} must be allowed");
        }
    }

    #[test]
    fn an_allow_list_opens_exactly_its_ranges() {
        let policy = TargetPolicy {
            allow_private: false,
            allowed_ranges: TargetPolicy::parse_ranges("10.1.0.0/16, fd00::/8").unwrap(),
        };
        assert!(policy.permits("10.1.2.3".parse().unwrap()));
        assert!(policy.permits("::ffff:10.1.2.3".parse().unwrap()));
        assert!(policy.permits("fd00::5".parse().unwrap()));
        assert!(!policy.permits("10.2.0.1".parse().unwrap()));
        assert!(!policy.permits("127.0.0.1".parse().unwrap()));
        assert!(policy.permits("8.8.8.8".parse().unwrap()));
        assert_eq!(
            TargetPolicy::parse_ranges("10.0.0.0/33"),
            Err(InvalidRange("10.0.0.0/33".into()))
        );
    }

    proptest! {
        #[test]
        fn every_private_v4_range_is_refused_in_every_v6_spelling(a in 0u8..=255, b in 0u8..=255, c in 0u8..=255, d in 0u8..=255) {
            let v4 = Ipv4Addr::new(a, b, c, d);
            let mapped = IpAddr::V6(v4.to_ipv6_mapped());
            let compatible = IpAddr::V6(v4.to_ipv6_compatible());
            prop_assert_eq!(is_public(mapped), is_public(IpAddr::V4(v4)));
            if !is_public(IpAddr::V4(v4)) {
                prop_assert!(!is_public(compatible));
            }
        }

        #[test]
        fn loopback_private_and_link_local_v4_are_never_public(b in 0u8..=255, c in 0u8..=255, d in 0u8..=255) {
            prop_assert!(!is_public(IpAddr::V4(Ipv4Addr::new(127, b, c, d))));
            prop_assert!(!is_public(IpAddr::V4(Ipv4Addr::new(10, b, c, d))));
            prop_assert!(!is_public(IpAddr::V4(Ipv4Addr::new(169, 254, c, d))));
            prop_assert!(!is_public(IpAddr::V4(Ipv4Addr::new(192, 168, c, d))));
            prop_assert!(!is_public(IpAddr::V4(Ipv4Addr::new(172, 16 + b % 16, c, d))));
            prop_assert!(!is_public(IpAddr::V4(Ipv4Addr::new(100, 64 + b % 64, c, d))));
        }

        #[test]
        fn unique_local_and_link_local_v6_are_never_public(x in any::<u128>()) {
            // fc00::/7: the top 7 bits are 1111110; fe80::/10: the top 10 bits are 1111111010.
            let unique_local = Ipv6Addr::from((x & ((1u128 << 121) - 1)) | (0x7e_u128 << 121));
            prop_assert!(!is_public(IpAddr::V6(unique_local)));
            let link_local = Ipv6Addr::from((x & ((1u128 << 118) - 1)) | (0x3fa_u128 << 118));
            prop_assert!(!is_public(IpAddr::V6(link_local)));
        }
    }
}
