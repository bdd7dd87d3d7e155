# Address classes for the SSRF guard.
#
# The ranges are written here, not in data, so a data file cannot switch
# the guard off; data can only allow private ranges per environment
# (warden.config.network.allowed_private_cidrs.<env>).
package warden.lib.net

# Cloud metadata and host-agent endpoints: never reachable from a plugin.
metadata_ranges := [
	"169.254.169.254/32", # AWS, Azure, GCP, OCI instance metadata
	"169.254.170.2/32", # AWS ECS task metadata
	"fd00:ec2::254/128", # AWS instance metadata over IPv6
	"168.63.129.16/32", # Azure WireServer
	"100.100.100.200/32", # Alibaba Cloud metadata
]

# Names of metadata endpoints, refused before they are looked up. A bare
# `metadata` or `instance-data` becomes the metadata name through the
# resolver's search domains (GCE searches `google.internal`).
metadata_hosts := {
	"metadata",
	"metadata.google.internal",
	"metadata.goog",
	"instance-data",
	"instance-data.ec2.internal",
}

# Names that resolve to loopback on their own (RFC 6761 and the usual
# /etc/hosts aliases), refused before they are looked up unless loopback
# is allowed; any `*.localhost` too.
loopback_hosts := {
	"localhost",
	"localhost.localdomain",
	"localhost4",
	"localhost4.localdomain4",
	"localhost6",
	"localhost6.localdomain6",
	"ip6-localhost",
	"ip6-loopback",
}

is_loopback_name(h) if h in loopback_hosts

is_loopback_name(h) if endswith(h, ".localhost")

# Ranges that reach inside the network: denied unless data allows them.
internal_ranges := [
	{"cidr": "127.0.0.0/8", "what": "a loopback address"},
	{"cidr": "::1/128", "what": "a loopback address"},
	{"cidr": "0.0.0.0/8", "what": "an unspecified address (it reaches this host)"},
	{"cidr": "::/128", "what": "an unspecified address (it reaches this host)"},
	{"cidr": "169.254.0.0/16", "what": "a link-local address"},
	{"cidr": "fe80::/10", "what": "a link-local address"},
	{"cidr": "10.0.0.0/8", "what": "a private address"},
	{"cidr": "172.16.0.0/12", "what": "a private address"},
	{"cidr": "192.168.0.0/16", "what": "a private address"},
	{"cidr": "fc00::/7", "what": "a private (unique local) address"},
	{"cidr": "100.64.0.0/10", "what": "a carrier-grade NAT address"},
	{"cidr": "::ffff:0:0/96", "what": "an IPv4-mapped IPv6 address"},
	{"cidr": "64:ff9b::/96", "what": "a NAT64 address (it can reach private IPv4 hosts)"},
]

# First octets of every IPv4 range above. An IPv4 address starting with
# anything else is in none of them, which skips 18 CIDR checks for the
# common case of a public address. Addresses are canonical (the input
# builder writes them); capability_test.rego checks this list is complete.
ipv4_first_octets := {"0", "10", "100", "127", "168", "169", "172", "192"}

# Whether `addr` may fall in one of the ranges above.
may_be_special(addr) if contains(addr, ":")

may_be_special(addr) if split(addr, ".")[0] in ipv4_first_octets

matches_host("*", _) := true

matches_host(pattern, h) if {
	startswith(pattern, "*.")
	endswith(h, substring(pattern, 1, -1))
}

matches_host(pattern, h) if pattern == h

# Whether `addr` is in `cidr`, or, for an IPv4 range, in its IPv6
# spellings: IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d,
# deprecated, but some stacks still route it). The sandbox already gives
# both as IPv4; this catches them from any other caller. `::` and `::1`
# keep their own meaning.
in_range(cidr, addr) if net.cidr_contains(cidr, addr)

in_range(cidr, addr) if {
	contains(addr, ":")
	not contains(cidr, ":")
	not net.cidr_contains("::/127", addr)
	parts := split(cidr, "/")
	some prefix in ["::ffff:", "::"]
	net.cidr_contains(sprintf("%s%s/%d", [prefix, parts[0], 96 + to_number(parts[1])]), addr)
}

is_metadata(addr) if {
	some cidr in metadata_ranges
	in_range(cidr, addr)
}

# The internal ranges `addr` falls in, e.g. {"a private address (10.0.0.0/8)"}.
internal_classes(addr) := {sprintf("%s (%s)", [r.what, r.cidr]) |
	some r in internal_ranges
	in_range(r.cidr, addr)
}
