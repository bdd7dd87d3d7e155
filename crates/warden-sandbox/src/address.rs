//! Addresses as the gate sees them: one spelling per destination.
//!
//! An SSRF check written for `169.254.169.254` must also catch the same
//! address written another way. Before the gate is asked, the host turns
//! IPv4-mapped (`::ffff:a9fe:a9fe`) and IPv4-compatible (`::a9fe:a9fe`)
//! IPv6 addresses into the IPv4 address they carry, and reads hosts in the
//! legacy IPv4 notations `inet_aton` accepts (`2852039166`, `0xa9.0xfe.43518`,
//! `0251.0376.0251.0376`, a trailing dot) as the address they denote
//! instead of handing them to the resolver, which would read them the same
//! way without asking anyone.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `ip` with an IPv4 address carried in IPv6 turned into that IPv4 address.
///
/// `::` and `::1` keep their IPv6 meaning (unspecified, loopback); every
/// other address in `::/96` is IPv4-compatible.
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => embedded_ipv4(v6).map_or(ip, IpAddr::V4),
    }
}

fn embedded_ipv4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = v6.segments();
    let compatible = s[..6].iter().all(|&x| x == 0) && u128::from(v6) > 1;
    compatible.then(|| Ipv4Addr::from(u32::from(s[6]) << 16 | u32::from(s[7])))
}

/// The address a host written as an IP literal denotes, canonical: an
/// IPv6 literal (brackets already stripped) or IPv4 in any notation
/// `inet_aton` reads. `None` for a name.
pub(crate) fn literal(host: &str) -> Option<IpAddr> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    legacy_ipv4(host).map(IpAddr::V4)
}

/// `inet_aton`'s reading of `host`: one to four dot-separated numbers,
/// each decimal, octal (leading `0`) or hex (`0x`), the last filling the
/// remaining bytes; one trailing dot allowed.
fn legacy_ipv4(host: &str) -> Option<Ipv4Addr> {
    let host = host.strip_suffix('.').unwrap_or(host);
    let parts: Vec<&str> = host.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let mut numbers = Vec::with_capacity(parts.len());
    for part in &parts {
        numbers.push(parse_number(part)?);
    }
    let (last, leading) = numbers.split_last()?;
    let mut value: u32 = 0;
    for (i, n) in leading.iter().enumerate() {
        let byte = u8::try_from(*n).ok()?;
        value |= u32::from(byte) << (24 - 8 * i);
    }
    let room = 32 - 8 * leading.len() as u32;
    if room < 32 && *last >> room != 0 {
        return None;
    }
    Some(Ipv4Addr::from(value | *last as u32))
}

fn parse_number(part: &str) -> Option<u64> {
    let (digits, radix) =
        if let Some(hex) = part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
            (hex, 16)
        } else if part.len() > 1 && part.starts_with('0') {
            (&part[1..], 8)
        } else {
            (part, 10)
        };
    if digits.is_empty() && radix == 16 {
        // `0x` alone is 0 to inet_aton.
        return Some(0);
    }
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(digits, radix)
        .ok()
        .filter(|n| *n <= u64::from(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|e| unreachable!("{s}: {e}"))
    }

    #[test]
    fn ipv4_carried_in_ipv6_becomes_ipv4() {
        for (written, meant) in [
            ("::ffff:169.254.169.254", "169.254.169.254"),
            ("::ffff:a9fe:a9fe", "169.254.169.254"),
            ("::a9fe:a9fe", "169.254.169.254"),
            ("::7f00:1", "127.0.0.1"),
            ("::10.0.0.1", "10.0.0.1"),
            ("::2", "0.0.0.2"),
        ] {
            assert_eq!(canonical(ip(written)), ip(meant), "{written}");
        }
        for kept in [
            "::1",
            "::",
            "fd00:ec2::254",
            "2001:db8::1",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert_eq!(canonical(ip(kept)), ip(kept), "{kept}");
        }
    }

    #[test]
    fn legacy_ipv4_notations_are_read_as_inet_aton_reads_them() {
        for written in [
            "169.254.169.254",
            "169.254.169.254.",
            "2852039166",
            "0xa9fea9fe",
            "0xa9.0xfe.0xa9.0xfe",
            "0251.0376.0251.0376",
            "169.254.43518",
            "169.16689662",
            "::ffff:169.254.169.254",
        ] {
            assert_eq!(literal(written), Some(ip("169.254.169.254")), "{written}");
        }
        assert_eq!(literal("127.1"), Some(ip("127.0.0.1")));
        assert_eq!(literal("0"), Some(ip("0.0.0.0")));
        for name in [
            "localhost",
            "metadata",
            "1.2.3.4.5",
            "256.1.1.1",
            "4294967296",
            "1.2.3.4..",
            "08",
            "0x1g",
            "",
            "1..2",
            "example.com",
            "1e3",
        ] {
            assert_eq!(literal(name), None, "{name}");
        }
    }
}
