//! The SSRF address table of shared/reference/webhooks.md §3.3: every
//! blocked range, its edges, its IPv4-mapped, IPv4-compatible, NAT64 and
//! 6to4 forms, public addresses that must pass, and the allow-list.

#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use consentry::webhook::ssrf::BlockReason::*;
use consentry::webhook::ssrf::{BlockReason, IpNet, Policy, check};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Every range of the table: its first and last address, and the
/// addresses just outside it.
#[test]
fn every_ipv4_range_and_its_edges() {
    let table: &[(&str, Result<(), BlockReason>)] = &[
        ("0.0.0.0", Err(ThisNetwork)),
        ("0.255.255.255", Err(ThisNetwork)),
        ("1.0.0.0", Ok(())),
        ("9.255.255.255", Ok(())),
        ("10.0.0.0", Err(Private)),
        ("10.255.255.255", Err(Private)),
        ("11.0.0.0", Ok(())),
        ("100.63.255.255", Ok(())),
        ("100.64.0.0", Err(SharedAddressSpace)),
        ("100.127.255.255", Err(SharedAddressSpace)),
        ("100.128.0.0", Ok(())),
        ("126.255.255.255", Ok(())),
        ("127.0.0.0", Err(Loopback)),
        ("127.0.0.1", Err(Loopback)),
        ("127.255.255.255", Err(Loopback)),
        ("128.0.0.0", Ok(())),
        ("169.253.255.255", Ok(())),
        ("169.254.0.0", Err(LinkLocal)),
        ("169.254.169.254", Err(LinkLocal)),
        ("169.254.255.255", Err(LinkLocal)),
        ("169.255.0.0", Ok(())),
        ("172.15.255.255", Ok(())),
        ("172.16.0.0", Err(Private)),
        ("172.31.255.255", Err(Private)),
        ("172.32.0.0", Ok(())),
        ("191.255.255.255", Ok(())),
        ("192.0.0.0", Err(IetfProtocol)),
        ("192.0.0.255", Err(IetfProtocol)),
        ("192.0.1.0", Ok(())),
        ("192.0.1.255", Ok(())),
        ("192.0.2.0", Err(Documentation)),
        ("192.0.2.255", Err(Documentation)),
        ("192.0.3.0", Ok(())),
        ("192.88.98.255", Ok(())),
        ("192.88.99.0", Err(SixToFourRelay)),
        ("192.88.99.255", Err(SixToFourRelay)),
        ("192.88.100.0", Ok(())),
        ("192.167.255.255", Ok(())),
        ("192.168.0.0", Err(Private)),
        ("192.168.255.255", Err(Private)),
        ("192.169.0.0", Ok(())),
        ("198.17.255.255", Ok(())),
        ("198.18.0.0", Err(Benchmarking)),
        ("198.19.255.255", Err(Benchmarking)),
        ("198.20.0.0", Ok(())),
        ("198.51.99.255", Ok(())),
        ("198.51.100.0", Err(Documentation)),
        ("198.51.100.255", Err(Documentation)),
        ("198.51.101.0", Ok(())),
        ("203.0.112.255", Ok(())),
        ("203.0.113.0", Err(Documentation)),
        ("203.0.113.255", Err(Documentation)),
        ("203.0.114.0", Ok(())),
        ("223.255.255.255", Ok(())),
        ("224.0.0.0", Err(Multicast)),
        ("239.255.255.255", Err(Multicast)),
        ("240.0.0.0", Err(Reserved)),
        ("255.255.255.254", Err(Reserved)),
        ("255.255.255.255", Err(Broadcast)),
        // Public addresses.
        ("8.8.8.8", Ok(())),
        ("1.1.1.1", Ok(())),
        ("93.184.215.14", Ok(())),
        ("151.101.1.69", Ok(())),
    ];
    for (addr, want) in table {
        assert_eq!(check(ip(addr)), *want, "{addr}");
        let v4: Ipv4Addr = addr.parse().unwrap();
        let mapped = IpAddr::V6(v4.to_ipv6_mapped());
        assert_eq!(check(mapped), *want, "{mapped}");
        // IPv4-compatible, NAT64 (both prefixes) and 6to4 forms: the
        // IPv4 reason when blocked, else blocked for the form itself.
        let n = u128::from(u32::from(v4));
        let [a, b, c, d] = v4.octets().map(u128::from);
        let forms = [
            (n, Reserved),
            ((0x0064_ff9b_u128 << 96) | n, Nat64),
            (
                (0x0064_ff9b_0001_u128 << 80) | (((a << 8) | b) << 64) | (((c << 8) | d) << 40),
                Nat64,
            ),
            ((0x2002_u128 << 112) | (n << 80), SixToFour),
        ];
        for (form, otherwise) in forms {
            let v6 = IpAddr::V6(Ipv6Addr::from(form));
            if form <= 1 {
                continue; // `::` and `::1` are not IPv4-compatible forms.
            }
            let expected = want.and(Err(otherwise));
            assert_eq!(check(v6), expected, "{v6} (from {addr})");
        }
    }
}

#[test]
fn every_ipv6_range_and_its_edges() {
    let table: &[(&str, Result<(), BlockReason>)] = &[
        ("::", Err(Unspecified)),
        ("::1", Err(Loopback)),
        ("::2", Err(ThisNetwork)),
        ("ff00::", Err(Multicast)),
        ("ff02::1", Err(Multicast)),
        ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Err(Multicast)),
        ("fe80::", Err(LinkLocal)),
        ("febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Err(LinkLocal)),
        ("fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Err(Reserved)),
        ("fec0::", Err(SiteLocal)),
        ("feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Err(SiteLocal)),
        ("fc00::", Err(UniqueLocal)),
        ("fd00:ec2::254", Err(UniqueLocal)),
        ("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Err(UniqueLocal)),
        ("fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Err(Reserved)),
        ("fe00::", Err(Reserved)),
        ("100::", Err(Discard)),
        ("100::ffff:ffff:ffff:ffff", Err(Discard)),
        ("100:0:0:1::", Err(Reserved)),
        ("2001:db8::", Err(Documentation)),
        ("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", Err(Documentation)),
        ("2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", Ok(())),
        ("2001:db9::", Ok(())),
        ("3fff::", Err(Documentation)),
        ("3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff", Err(Documentation)),
        ("3fff:1000::", Ok(())),
        ("3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Ok(())),
        ("2002::", Err(ThisNetwork)),
        ("2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Err(Broadcast)),
        ("2002:808:808::1", Err(SixToFour)),
        ("2002:7f00:1::", Err(Loopback)),
        ("2001:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Ok(())),
        ("2003::", Ok(())),
        ("64:ff9b::", Err(ThisNetwork)),
        ("64:ff9b::808:808", Err(Nat64)),
        ("64:ff9b::a9fe:a9fe", Err(LinkLocal)),
        ("64:ff9b::1:0:0:0", Err(Reserved)),
        ("64:ff9b:1::", Err(ThisNetwork)),
        ("64:ff9b:1:808:8:800::", Err(Nat64)),
        ("64:ff9b:1:7f00:0:1::", Err(Loopback)),
        ("64:ff9b:1:ffff:ffff:ffff:ffff:ffff", Err(Broadcast)),
        ("64:ff9b:2::", Err(Reserved)),
        ("5f00::", Err(Srv6)),
        ("5f00:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Err(Srv6)),
        ("5eff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Err(Reserved)),
        ("4000::", Err(Reserved)),
        ("1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Err(Reserved)),
        ("::ffff:0:0", Err(ThisNetwork)),
        ("::ffff:7f00:1", Err(Loopback)),
        ("::ffff:8.8.8.8", Ok(())),
        ("::ffff:0:808:808", Err(Reserved)),
        ("::8.8.8.8", Err(Reserved)),
        ("::10.0.0.1", Err(Private)),
        // Public addresses.
        ("2606:4700:4700::1111", Ok(())),
        ("2001:4860:4860::8888", Ok(())),
        ("2a00:1450:4001:80b::200e", Ok(())),
        ("2000::", Ok(())),
        ("3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Ok(())),
    ];
    let wrong: Vec<_> = table
        .iter()
        .filter(|(addr, want)| check(ip(addr)) != *want)
        .map(|(addr, want)| format!("{addr}: want {want:?}, got {:?}", check(ip(addr))))
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn ip_net_parses_strictly() {
    let net: IpNet = "10.0.0.0/8".parse().unwrap();
    assert_eq!((net.addr(), net.prefix_len()), (ip("10.0.0.0"), 8));
    assert!(net.contains(ip("10.255.0.1")) && !net.contains(ip("11.0.0.0")));
    assert!(!net.contains(ip("::ffff:10.0.0.1")), "families do not mix");
    let all: IpNet = "::/0".parse().unwrap();
    assert!(all.contains(ip("2001:db8::1")) && !all.contains(ip("1.2.3.4")));
    let all4: IpNet = "0.0.0.0/0".parse().unwrap();
    assert!(all4.contains(ip("255.255.255.255")));
    let one: IpNet = "fd00::1".parse().unwrap();
    assert_eq!(one.prefix_len(), 128);
    assert!(one.contains(ip("fd00::1")) && !one.contains(ip("fd00::2")));
    for bad in [
        "",
        "/8",
        "10.0.0.0/",
        "10.0.0.0/33",
        "::/129",
        "10.0.0.1/8",
        "10.0.0.0/+8",
        "10.0.0.0/0008",
        "10.0.0.0/8/8",
        "010.0.0.0/8",
        "fd00::1/8",
        "10.0.0.0 /8",
        "example.com/8",
    ] {
        assert!(bad.parse::<IpNet>().is_err(), "{bad:?}");
    }
    assert_eq!(net.to_string(), "10.0.0.0/8");
}

#[test]
fn allow_list_overrides_blocks_only_where_it_matches() {
    let policy = Policy::new()
        .allow("10.1.0.0/16".parse().unwrap())
        .allow("fd00::/8".parse().unwrap());
    assert_eq!(policy.check(ip("10.1.2.3")), Ok(()));
    assert_eq!(policy.check(ip("::ffff:10.1.2.3")), Ok(()));
    assert_eq!(policy.check(ip("10.2.0.1")), Err(Private));
    assert_eq!(policy.check(ip("fd12::1")), Ok(()));
    assert_eq!(policy.check(ip("fc00::1")), Err(UniqueLocal));
    // NAT64 and 6to4 forms are not unwrapped for the allow-list.
    assert_eq!(policy.check(ip("64:ff9b::a01:203")), Err(Private));
    assert_eq!(policy.check(ip("8.8.8.8")), Ok(()));
    assert_eq!(policy.allowed().len(), 2);
    assert_eq!(Private.to_string(), "private address");
}
