package warden_test.capability

import data.warden_test.fixtures.http_input
import data.warden_test.fixtures.http_to
import data.warden_test.fixtures.mentions
import data.warden_test.fixtures.verdict

loopback_in_staging := {"staging": ["127.0.0.1/32"]}

test_a_declared_host_with_a_public_address_is_allowed if {
	d := data.warden.capability with input as http_input
	verdict(d) == "allow"
}

test_an_undeclared_host_is_denied if {
	d := data.warden.capability with input as http_to("evil.example.net", ["203.0.113.9"])
	verdict(d) == "deny"
	mentions(d.deny, "did not declare HTTP access to `evil.example.net`")
}

test_a_wildcard_matches_subdomains_but_not_the_apex if {
	verdict(data.warden.capability) == "allow" with input as http_to("a.b.svc.example.com", ["93.184.216.34"])
	verdict(data.warden.capability) == "deny" with input as http_to("svc.example.com", ["93.184.216.34"])
	verdict(data.warden.capability) == "deny" with input as http_to("evilsvc.example.com", ["93.184.216.34"])
}

test_the_metadata_address_is_denied if {
	d := data.warden.capability with input as object.union(
		http_to("169.254.169.254", ["169.254.169.254"]),
		{"tool": {"declared_hosts": ["169.254.169.254"]}},
	)
	verdict(d) == "deny"
	mentions(d.deny, "cloud metadata endpoint")
}

test_a_declared_name_resolving_to_the_metadata_address_is_denied if {
	d := data.warden.capability with input as http_to("metadata.internal", ["169.254.169.254"])
	verdict(d) == "deny"
	mentions(d.deny, "169.254.169.254 (host `metadata.internal`)")
}

test_metadata_stays_denied_even_when_data_allows_link_local if {
	d := data.warden.capability with input as http_to("metadata.internal", ["169.254.169.254"])
		with data.warden.config.network.allowed_private_cidrs as {"staging": ["169.254.0.0/16"]}
	verdict(d) == "deny"
}

test_ipv6_metadata_and_link_local_addresses_are_denied if {
	verdict(data.warden.capability) == "deny" with input as http_to("metadata.internal", ["fd00:ec2::254"])
	verdict(data.warden.capability) == "deny" with input as http_to("metadata.internal", ["fe80::1"])
}

test_metadata_host_names_are_denied_by_name if {
	d := data.warden.capability with input as object.union(
		http_to("metadata.google.internal", ["203.0.113.1"]),
		{"tool": {"declared_hosts": ["*"]}},
	)
	verdict(d) == "deny"
}

test_private_addresses_are_denied_by_default if {
	every a in ["10.1.2.3", "172.20.0.1", "192.168.1.1", "fd12::1", "100.64.0.1", "0.0.0.0"] {
		d := data.warden.capability with input as http_to("api.example.com", [a])
		verdict(d) == "deny"
	}
}

test_one_private_address_among_public_ones_is_enough_to_deny if {
	d := data.warden.capability with input as http_to("api.example.com", ["93.184.216.34", "10.0.0.7"])
	verdict(d) == "deny"
	mentions(d.deny, "10.0.0.7")
}

test_loopback_is_denied_unless_data_allows_it_for_the_environment if {
	input_ := http_to("127.0.0.1", ["127.0.0.1"])
	verdict(data.warden.capability) == "deny" with input as input_
	verdict(data.warden.capability) == "allow" with input as input_
		with data.warden.config.network.allowed_private_cidrs as loopback_in_staging
	verdict(data.warden.capability) == "deny" with input as object.union(input_, {"agent": {"env": "prod"}})
		with data.warden.config.network.allowed_private_cidrs as loopback_in_staging
	verdict(data.warden.capability) == "deny" with input as http_to("127.0.0.1", ["::1"])
		with data.warden.config.network.allowed_private_cidrs as loopback_in_staging
}

test_an_ip_literal_host_is_checked_even_without_resolved_addresses if {
	d := data.warden.capability with input as object.union(
		http_input,
		{"capability": {"host": "10.9.8.7", "resolved": [], "addresses": []}, "tool": {"declared_hosts": ["10.9.8.7"]}},
	)
	verdict(d) == "deny"
	mentions(d.deny, "10.9.8.7")
}

test_an_ipv4_mapped_address_written_as_ipv6_is_denied if {
	d := data.warden.capability with input as http_to("api.example.com", ["::ffff:a9fe:a9fe"])
	verdict(d) == "deny"
}

test_a_host_that_resolved_to_nothing_is_denied if {
	d := data.warden.capability with input as http_to("api.example.com", [])
	verdict(d) == "deny"
	mentions(d.deny, "resolved to no address")
}

test_only_http_and_https_schemes_are_allowed if {
	d := data.warden.capability with input as object.union(http_input, {"capability": {"scheme": "gopher"}})
	verdict(d) == "deny"
}

test_key_value_use_is_allowed if {
	every kind in ["kv-read", "kv-write"] {
		d := data.warden.capability with input as object.union(object.remove(http_input, ["capability"]), {"capability": {"kind": kind, "key": "k"}})
		verdict(d) == "allow"
	}
}

test_an_unknown_capability_kind_is_denied if {
	d := data.warden.capability with input as object.union(object.remove(http_input, ["capability"]), {"capability": {"kind": "raw-socket"}})
	verdict(d) == "deny"
}

test_capabilities_never_ask_for_approval if {
	d := data.warden.capability with input as object.union(http_input, {"agent": {"env": "prod"}, "tool": {"effect": "mutating"}})
	count(d.approval) == 0
	verdict(d) == "allow"
}

test_the_ipv4_prefilter_covers_every_special_range if {
	ranges := {r.cidr | some r in data.warden.lib.net.internal_ranges}
	metadata := {c | some c in data.warden.lib.net.metadata_ranges}
	v4 := {c | some c in ranges | metadata; not contains(c, ":")}
	count(v4) > 5
	every c in v4 {
		split(c, ".")[0] in data.warden.lib.net.ipv4_first_octets
	}
}

test_a_public_address_skips_the_range_checks_and_passes if {
	not data.warden.lib.net.may_be_special("93.184.216.34")
	data.warden.lib.net.may_be_special("10.0.0.1")
	data.warden.lib.net.may_be_special("::1")
}

# A name as the sandbox asks about it before resolving it: no addresses.
lookup_of(host) := object.union(http_input, {
	"capability": {"kind": "http-lookup", "host": host, "resolved": [], "addresses": []},
	"tool": {"declared_hosts": ["*"]},
})

test_metadata_names_are_denied_before_they_are_looked_up if {
	every name in ["metadata", "metadata.google.internal", "METADATA.Google.Internal.", "instance-data", "metadata.goog"] {
		d := data.warden.capability with input as lookup_of(name)
		verdict(d) == "deny"
		mentions(d.deny, "cloud metadata endpoint")
	}
}

test_loopback_names_are_denied_before_they_are_looked_up_unless_loopback_is_allowed if {
	every name in ["localhost", "localhost.", "LocalHost", "api.localhost", "ip6-localhost", "localhost.localdomain"] {
		d := data.warden.capability with input as lookup_of(name)
		verdict(d) == "deny"
		mentions(d.deny, "it is a loopback name")
		verdict(data.warden.capability) == "allow" with input as lookup_of(name)
			with data.warden.config.network.allowed_private_cidrs as loopback_in_staging
		verdict(data.warden.capability) == "allow" with input as object.union(lookup_of(name), {"agent": {"env": "dev"}})
	}
}

test_loopback_names_stay_denied_after_the_lookup if {
	d := data.warden.capability with input as object.union(http_to("localhost", ["127.0.0.1"]), {"tool": {"declared_hosts": ["localhost"]}})
	verdict(d) == "deny"
	mentions(d.deny, "loopback name")
}

test_a_lookup_of_a_declared_public_name_is_allowed_without_addresses if {
	d := data.warden.capability with input as object.union(lookup_of("api.example.com"), {"tool": {"declared_hosts": ["api.example.com"]}})
	verdict(d) == "allow"
}

test_a_lookup_of_an_undeclared_name_is_denied if {
	d := data.warden.capability with input as object.union(lookup_of("evil.example.net"), {"tool": {"declared_hosts": ["api.example.com"]}})
	verdict(d) == "deny"
	mentions(d.deny, "did not declare HTTP access to `evil.example.net`")
}

test_ipv4_in_ipv6_spellings_of_the_metadata_address_are_denied if {
	every a in ["::a9fe:a9fe", "::169.254.169.254", "::ffff:a9fe:a9fe", "::ffff:169.254.169.254", "0:0:0:0:0:0:a9fe:a9fe"] {
		d := data.warden.capability with input as http_to("api.example.com", [a])
			with data.warden.config.network.allowed_private_cidrs as {"staging": ["169.254.0.0/16"]}
		verdict(d) == "deny"
		mentions(d.deny, "cloud metadata endpoint")
	}
}

test_ipv4_compatible_loopback_and_private_addresses_are_denied_where_ipv4_loopback_is_allowed if {
	every a in ["::7f00:1", "::127.0.0.1", "::ffff:7f00:1", "::a00:1", "::c0a8:101"] {
		d := data.warden.capability with input as http_to("api.example.com", [a])
			with data.warden.config.network.allowed_private_cidrs as loopback_in_staging
		verdict(d) == "deny"
	}
	d := data.warden.capability with input as http_to("api.example.com", ["::7f00:1"])
	mentions(d.deny, "a loopback address (127.0.0.0/8)")
}

test_an_ipv4_compatible_public_address_is_judged_as_its_ipv4_address if {
	verdict(data.warden.capability) == "allow" with input as http_to("api.example.com", ["::5db8:d822"])
}

test_ipv6_loopback_keeps_its_own_class if {
	d := data.warden.capability with input as http_to("api.example.com", ["::1"])
	mentions(d.deny, "a loopback address (::1/128)")
	not mentions(d.deny, "0.0.0.0/8")
}
