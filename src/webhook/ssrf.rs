//! Which IP addresses an outbound webhook may connect to (server-side
//! request forgery protection). Pure: no DNS, no I/O.
//!
//! A sender resolves the endpoint's host name, drops every address this
//! module blocks, and connects only to an address that passed, never
//! resolving again (a second lookup is what DNS rebinding exploits). IP
//! literals in URLs are checked the same way.
//!
//! Blocked: every range of the table below, in any IPv6 spelling of an
//! IPv4 address (IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible
//! `::a.b.c.d`, NAT64 `64:ff9b::/96` and `64:ff9b:1::/48`, 6to4
//! `2002::/16`); when the embedded IPv4 address is itself blocked, its
//! reason is reported. NAT64, 6to4 and IPv4-compatible addresses are
//! blocked even around a public IPv4 address, and so is all IPv6 outside
//! the global unicast block `2000::/3`.
//!
//! | IPv4 | IPv6 |
//! |---|---|
//! | `0.0.0.0/8` this network | `::` unspecified, `::1` loopback |
//! | `10/8`, `172.16/12`, `192.168/16` private | `fc00::/7` unique local, `fec0::/10` site local |
//! | `100.64/10` shared (CGNAT) | `fe80::/10` link local |
//! | `127/8` loopback | `ff00::/8` multicast |
//! | `169.254/16` link local (cloud metadata) | `2001:db8::/32`, `3fff::/20` documentation |
//! | `192.0.0/24` IETF protocol assignments | `100::/64` discard |
//! | `192.0.2/24`, `198.51.100/24`, `203.0.113/24` documentation | `2002::/16` 6to4 |
//! | `192.88.99/24` 6to4 relay anycast | `64:ff9b::/96`, `64:ff9b:1::/48` NAT64 |
//! | `198.18/15` benchmarking | `5f00::/16` SRv6 SIDs |
//! | `224/4` multicast, `240/4` reserved, `255.255.255.255` broadcast | anything outside `2000::/3` |
//!
//! A [`Policy`] adds an explicit allow-list of networks ([`IpNet`]) for
//! hosts that must reach, say, a service on their private network.
//!
//! ```
//! use std::net::IpAddr;
//! use consentry::webhook::ssrf::{self, BlockReason, IpNet, Policy};
//!
//! let metadata: IpAddr = "169.254.169.254".parse()?;
//! assert_eq!(ssrf::check(metadata), Err(BlockReason::LinkLocal));
//! assert_eq!(ssrf::check("::ffff:127.0.0.1".parse()?), Err(BlockReason::Loopback));
//! assert_eq!(ssrf::check("64:ff9b::10.0.0.1".parse()?), Err(BlockReason::Private));
//! assert_eq!(ssrf::check("93.184.215.14".parse()?), Ok(()));
//!
//! let policy = Policy::new().allow("10.20.0.0/16".parse::<IpNet>()?);
//! assert_eq!(policy.check("10.20.1.2".parse()?), Ok(()));
//! assert_eq!(policy.check("10.21.1.2".parse()?), Err(BlockReason::Private));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use crate::error::{Error, Result};

/// Why an address is blocked.
///
/// ```
/// use consentry::webhook::ssrf::{BlockReason, check};
/// assert_eq!(check("169.254.169.254".parse()?), Err(BlockReason::LinkLocal)); // cloud metadata
/// assert_eq!(BlockReason::Private.to_string(), "private address");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BlockReason {
    /// `0.0.0.0/8` ("this network"; `0.0.0.0` reaches the local host).
    ThisNetwork,
    /// RFC 1918: `10/8`, `172.16/12`, `192.168/16`.
    Private,
    /// `100.64/10`, carrier-grade NAT.
    SharedAddressSpace,
    /// `127/8`, `::1`.
    Loopback,
    /// `169.254/16` (where cloud metadata services live), `fe80::/10`.
    LinkLocal,
    /// `192.0.0/24`, IETF protocol assignments.
    IetfProtocol,
    /// `192.0.2/24`, `198.51.100/24`, `203.0.113/24`, `2001:db8::/32`,
    /// `3fff::/20`.
    Documentation,
    /// `192.88.99/24`, the deprecated 6to4 relay anycast.
    SixToFourRelay,
    /// `198.18/15`, network benchmarking.
    Benchmarking,
    /// `224/4`, `ff00::/8`.
    Multicast,
    /// `240/4`, IPv6 outside `2000::/3`, IPv4-compatible IPv6.
    Reserved,
    /// `255.255.255.255`.
    Broadcast,
    /// `::`.
    Unspecified,
    /// `fc00::/7`.
    UniqueLocal,
    /// `fec0::/10`, deprecated site-local.
    SiteLocal,
    /// `100::/64`, discard-only.
    Discard,
    /// `2002::/16`, 6to4.
    SixToFour,
    /// `64:ff9b::/96`, `64:ff9b:1::/48`, NAT64.
    Nat64,
    /// `5f00::/16`, SRv6 segment identifiers.
    Srv6,
}

impl fmt::Display for BlockReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Self::ThisNetwork => "\"this network\" address",
            Self::Private => "private address",
            Self::SharedAddressSpace => "carrier-grade NAT address",
            Self::Loopback => "loopback address",
            Self::LinkLocal => "link-local address",
            Self::IetfProtocol => "IETF protocol assignment",
            Self::Documentation => "documentation address",
            Self::SixToFourRelay => "6to4 relay anycast address",
            Self::Benchmarking => "benchmarking address",
            Self::Multicast => "multicast address",
            Self::Reserved => "reserved address",
            Self::Broadcast => "broadcast address",
            Self::Unspecified => "unspecified address",
            Self::UniqueLocal => "unique local address",
            Self::SiteLocal => "site-local address",
            Self::Discard => "discard-only address",
            Self::SixToFour => "6to4 address",
            Self::Nat64 => "NAT64 address",
            Self::Srv6 => "SRv6 segment identifier",
        })
    }
}

const V4_BLOCKS: &[(u32, u8, BlockReason)] = &[
    (0x0000_0000, 8, BlockReason::ThisNetwork),
    (0x0a00_0000, 8, BlockReason::Private),
    (0x6440_0000, 10, BlockReason::SharedAddressSpace),
    (0x7f00_0000, 8, BlockReason::Loopback),
    (0xa9fe_0000, 16, BlockReason::LinkLocal),
    (0xac10_0000, 12, BlockReason::Private),
    (0xc000_0000, 24, BlockReason::IetfProtocol),
    (0xc000_0200, 24, BlockReason::Documentation),
    (0xc058_6300, 24, BlockReason::SixToFourRelay),
    (0xc0a8_0000, 16, BlockReason::Private),
    (0xc612_0000, 15, BlockReason::Benchmarking),
    (0xc633_6400, 24, BlockReason::Documentation),
    (0xcb00_7100, 24, BlockReason::Documentation),
    (0xe000_0000, 4, BlockReason::Multicast),
    (0xffff_ffff, 32, BlockReason::Broadcast),
    (0xf000_0000, 4, BlockReason::Reserved),
];

const V6_BLOCKS: &[(u128, u8, BlockReason)] = &[
    (0xff00 << 112, 8, BlockReason::Multicast),
    (0xfe80 << 112, 10, BlockReason::LinkLocal),
    (0xfec0 << 112, 10, BlockReason::SiteLocal),
    (0xfc00 << 112, 7, BlockReason::UniqueLocal),
    (0x0100 << 112, 64, BlockReason::Discard),
    (0x2001_0db8 << 96, 32, BlockReason::Documentation),
    (0x3fff << 112, 20, BlockReason::Documentation),
    (0x5f00 << 112, 16, BlockReason::Srv6),
];

fn in_prefix<const BITS: u32>(addr: u128, net: u128, prefix: u8) -> bool {
    // A shift by 128 (prefix 0 of an IPv6 net) is `None` on both sides.
    let shift = BITS - u32::from(prefix);
    addr.checked_shr(shift) == net.checked_shr(shift)
}

fn check_v4(ip: Ipv4Addr) -> Result<(), BlockReason> {
    let a = u128::from(u32::from(ip));
    match V4_BLOCKS
        .iter()
        .find(|(net, prefix, _)| in_prefix::<32>(a, u128::from(*net), *prefix))
    {
        Some((_, _, reason)) => Err(*reason),
        None => Ok(()),
    }
}

/// The IPv4 address in the low 32 bits.
fn low_v4(a: u128) -> Ipv4Addr {
    Ipv4Addr::from((a & 0xffff_ffff) as u32)
}

/// Blocks an IPv6 address that embeds an IPv4 one, reporting the IPv4
/// address's reason when it has one.
fn embedded(v4: Ipv4Addr, otherwise: BlockReason) -> Result<(), BlockReason> {
    check_v4(v4).and(Err(otherwise))
}

fn check_v6(ip: Ipv6Addr) -> Result<(), BlockReason> {
    let a = u128::from(ip);
    if a == 0 {
        return Err(BlockReason::Unspecified);
    }
    if a == 1 {
        return Err(BlockReason::Loopback);
    }
    if let Some(v4) = ip.to_ipv4_mapped() {
        return check_v4(v4);
    }
    if a >> 32 == 0 {
        return embedded(low_v4(a), BlockReason::Reserved);
    }
    if a >> 32 == 0x0064_ff9b << 64 {
        return embedded(low_v4(a), BlockReason::Nat64);
    }
    if a >> 80 == 0x0064_ff9b_0001 {
        // RFC 6052 /48 layout: 16 bits, the "u" octet (bits 64..72), 16 bits.
        let hi = (a >> 64) & 0xffff;
        let lo = (a >> 40) & 0xffff;
        return embedded(low_v4((hi << 16) | lo), BlockReason::Nat64);
    }
    if a >> 112 == 0x2002 {
        return embedded(low_v4(a >> 80), BlockReason::SixToFour);
    }
    if let Some((_, _, reason)) = V6_BLOCKS
        .iter()
        .find(|(net, prefix, _)| in_prefix::<128>(a, *net, *prefix))
    {
        return Err(*reason);
    }
    if a >> 125 != 0b001 {
        return Err(BlockReason::Reserved);
    }
    Ok(())
}

/// Checks `ip` against the blocked ranges, with no allow-list.
///
/// # Errors
/// The [`BlockReason`] if the address is blocked.
///
/// ```
/// use consentry::webhook::ssrf::{self, BlockReason};
/// assert_eq!(ssrf::check("10.0.0.1".parse().unwrap()), Err(BlockReason::Private));
/// assert_eq!(ssrf::check("2606:4700:4700::1111".parse().unwrap()), Ok(()));
/// ```
pub fn check(ip: IpAddr) -> Result<(), BlockReason> {
    match ip {
        IpAddr::V4(v4) => check_v4(v4),
        IpAddr::V6(v6) => check_v6(v6),
    }
}

/// An IP network in CIDR notation (`10.0.0.0/8`, `fd00::/8`); a bare
/// address is a network of one.
///
/// ```
/// use consentry::webhook::ssrf::IpNet;
/// let net: IpNet = "192.168.10.0/24".parse()?;
/// assert!(net.contains("192.168.10.77".parse()?));
/// assert!(!net.contains("192.168.11.1".parse()?));
/// assert_eq!(net.to_string(), "192.168.10.0/24");
/// assert!("192.168.10.1/24".parse::<IpNet>().is_err()); // host bits set: a typo?
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNet {
    addr: IpAddr,
    prefix_len: u8,
}

impl IpNet {
    /// The network `addr/prefix_len`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if `prefix_len` is longer than the address
    /// (32 or 128 bits) or `addr` has bits set past the prefix.
    ///
    /// ```
    /// use std::net::IpAddr;
    /// use consentry::webhook::ssrf::IpNet;
    /// let net = IpNet::new(IpAddr::from([10, 1, 0, 0]), 16)?;
    /// assert_eq!(net.to_string(), "10.1.0.0/16");
    /// assert!(IpNet::new(IpAddr::from([10, 1, 0, 1]), 16).is_err()); // host bits set
    /// assert!(IpNet::new(IpAddr::from([10, 1, 0, 0]), 33).is_err());
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn new(addr: IpAddr, prefix_len: u8) -> Result<Self> {
        let (bits, a) = match addr {
            IpAddr::V4(v4) => (32u32, u128::from(u32::from(v4))),
            IpAddr::V6(v6) => (128, u128::from(v6)),
        };
        if u32::from(prefix_len) > bits {
            return Err(Error::invalid(
                "ip network",
                format!("prefix length {prefix_len} is longer than {bits} bits"),
            ));
        }
        let host_bits = bits - u32::from(prefix_len);
        let host_mask = 1u128.checked_shl(host_bits).map_or(u128::MAX, |m| m - 1);
        if a & host_mask != 0 {
            return Err(Error::invalid(
                "ip network",
                "the address has bits set past the prefix length",
            ));
        }
        Ok(Self { addr, prefix_len })
    }

    /// The network address.
    ///
    /// ```
    /// use std::net::IpAddr;
    /// use consentry::webhook::ssrf::IpNet;
    /// let net: IpNet = "fd00::/8".parse()?;
    /// assert_eq!(net.addr(), "fd00::".parse::<IpAddr>()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length in bits.
    ///
    /// ```
    /// use consentry::webhook::ssrf::IpNet;
    /// assert_eq!("10.0.0.0/8".parse::<IpNet>()?.prefix_len(), 8);
    /// assert_eq!("10.0.0.7".parse::<IpNet>()?.prefix_len(), 32); // a single address
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// Whether `ip` is in this network (same address family only).
    ///
    /// ```
    /// use consentry::webhook::ssrf::IpNet;
    /// let net: IpNet = "10.0.0.0/8".parse()?;
    /// assert!(net.contains("10.200.3.4".parse()?));
    /// assert!(!net.contains("::ffff:10.200.3.4".parse()?)); // other family
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => in_prefix::<32>(
                u128::from(u32::from(ip)),
                u128::from(u32::from(net)),
                self.prefix_len,
            ),
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                in_prefix::<128>(u128::from(ip), u128::from(net), self.prefix_len)
            }
            _ => false,
        }
    }
}

impl FromStr for IpNet {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| Error::invalid("ip network", "not an IP address"))?;
        let prefix_len = match prefix {
            None => match addr {
                IpAddr::V4(_) => 32,
                IpAddr::V6(_) => 128,
            },
            Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => p
                .parse()
                .map_err(|_| Error::invalid("ip network", "prefix length out of range"))?,
            Some(_) => {
                return Err(Error::invalid(
                    "ip network",
                    "prefix length is not a number",
                ));
            }
        };
        Self::new(addr, prefix_len)
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

/// The blocked ranges plus an explicit allow-list that overrides them.
///
/// An allowed network matches the address as given and, for IPv4-mapped
/// IPv6 (`::ffff:a.b.c.d`), the IPv4 address inside it.
///
/// ```
/// use consentry::webhook::ssrf::{BlockReason, Policy};
///
/// let dev = Policy::new().allow("127.0.0.1".parse()?);
/// assert_eq!(dev.check("127.0.0.1".parse()?), Ok(()));
/// assert_eq!(dev.check("::ffff:127.0.0.1".parse()?), Ok(()));
/// assert_eq!(dev.check("127.0.0.2".parse()?), Err(BlockReason::Loopback));
/// assert_eq!(Policy::default().check("127.0.0.1".parse()?), Err(BlockReason::Loopback));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    allowed: Vec<IpNet>,
}

impl Policy {
    /// Blocks every range of the module table; allows nothing extra.
    ///
    /// ```
    /// use consentry::webhook::ssrf::Policy;
    /// let policy = Policy::new();
    /// assert!(policy.allowed().is_empty());
    /// assert!(policy.check("10.0.0.1".parse()?).is_err());
    /// assert_eq!(policy.check("93.184.216.34".parse()?), Ok(()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Also allows `net`, even where it overlaps a blocked range.
    ///
    /// ```
    /// use consentry::webhook::ssrf::Policy;
    /// let policy = Policy::new().allow("10.20.0.0/16".parse()?);
    /// assert_eq!(policy.check("10.20.1.1".parse()?), Ok(()));
    /// assert!(policy.check("10.21.1.1".parse()?).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn allow(mut self, net: IpNet) -> Self {
        self.allowed.push(net);
        self
    }

    /// The allowed networks.
    ///
    /// ```
    /// use consentry::webhook::ssrf::{IpNet, Policy};
    /// let net: IpNet = "10.20.0.0/16".parse()?;
    /// assert_eq!(Policy::new().allow(net).allowed(), [net]);
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn allowed(&self) -> &[IpNet] {
        &self.allowed
    }

    /// Checks `ip`: allowed if an allowed network contains it, else as
    /// [`check`].
    ///
    /// # Errors
    /// The [`BlockReason`] if the address is blocked and not allowed.
    ///
    /// ```
    /// use consentry::webhook::ssrf::{BlockReason, Policy};
    /// let policy = Policy::new().allow("192.168.1.0/24".parse()?);
    /// assert_eq!(policy.check("192.168.1.20".parse()?), Ok(()));
    /// assert_eq!(policy.check("192.168.2.20".parse()?), Err(BlockReason::Private));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check(&self, ip: IpAddr) -> Result<(), BlockReason> {
        let mapped = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        let allowed = |ip: IpAddr| self.allowed.iter().any(|net| net.contains(ip));
        if allowed(ip) || mapped.is_some_and(allowed) {
            return Ok(());
        }
        check(ip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_edges() {
        assert!(in_prefix::<128>(u128::MAX, 0, 0));
        assert!(in_prefix::<32>(0xffff_ffff, 0, 0));
        assert!(in_prefix::<32>(0x0a00_0001, 0x0a00_0000, 8));
        assert!(!in_prefix::<32>(0x0b00_0000, 0x0a00_0000, 8));
        assert!(in_prefix::<128>(1, 1, 128) && !in_prefix::<128>(2, 1, 128));
    }
}
