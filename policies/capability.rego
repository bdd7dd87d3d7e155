# data.warden.capability: decided for each HTTP request or key-value use a
# plugin makes inside a call. The sandbox already refuses capabilities the
# manifest does not declare; this is the second line.
package warden.rules.capability

import data.warden.lib
import data.warden.lib.net as addr

cap := lib.object_or_empty(object.get(input, "capability", {}))

kind := object.get(cap, "kind", "(none)")

host := lower(object.get(cap, "host", ""))

# Every address the request may reach: what the host resolved to, plus the
# host itself when it is an IP literal. The sandbox connects only to these.
addresses := {a | some a in object.get(cap, "addresses", [])} | {a | some a in object.get(cap, "resolved", [])} | literal_host

default literal_host := set()

literal_host := {host} if regex.match(`^[0-9.]+$|:`, host)

declared_hosts := object.get(lib.tool, "declared_hosts", [])

host_declared if {
	some pattern in declared_hosts
	matches_host(trim(lower(pattern), "[]"), host)
}

matches_host("*", _) := true

matches_host(pattern, h) if {
	startswith(pattern, "*.")
	endswith(h, substring(pattern, 1, -1))
}

matches_host(pattern, h) if pattern == h

allowed_private_cidrs := object.get(object.get(lib.setting("network", {}), "allowed_private_cidrs", {}), lib.env, [])

allowed_internal(a) if {
	some cidr in allowed_private_cidrs
	net.cidr_contains(cidr, a)
}

# Only capability kinds the policy knows.
deny contains msg if {
	not kind in {"http", "kv-read", "kv-write"}
	msg := sprintf("Plugin `%s` asked for the capability `%v`, which the policy does not know, so it is denied.", [lib.tool_name, kind])
}

# HTTP only to hosts the plugin declared.
deny contains msg if {
	kind == "http"
	not host_declared
	msg := sprintf("Plugin `%s` did not declare HTTP access to `%s`.", [lib.tool_name, host])
}

# HTTP and HTTPS only.
deny contains msg if {
	kind == "http"
	not lower(object.get(cap, "scheme", "")) in {"http", "https"}
	msg := sprintf("Plugin `%s` asked for the URL scheme `%v`; only http and https are allowed.", [lib.tool_name, object.get(cap, "scheme", "")])
}

# Cloud metadata endpoints, by name.
deny contains msg if {
	kind == "http"
	host in addr.metadata_hosts
	msg := sprintf("Plugin `%s` may not call `%s`: it is a cloud metadata endpoint, which plugins may never reach.", [lib.tool_name, host])
}

# Cloud metadata endpoints, by address (after DNS, so a friendly name that
# resolves to one is caught too).
deny contains msg if {
	kind == "http"
	some a in addresses
	addr.is_metadata(a)
	msg := sprintf("Plugin `%s` may not reach %s (host `%s`): it is a cloud metadata endpoint, which plugins may never reach.", [lib.tool_name, a, host])
}

# Loopback, link-local and private addresses unless data allows them here.
deny contains msg if {
	kind == "http"
	some a in addresses
	not addr.is_metadata(a)
	classes := addr.internal_classes(a)
	count(classes) > 0
	not allowed_internal(a)
	msg := sprintf("Plugin `%s` may not reach %s (host `%s`): it is %s. Such addresses are blocked in `%s` unless warden.config.network.allowed_private_cidrs.%s allows them.", [lib.tool_name, a, host, concat(" and ", sort(classes)), lib.env, lib.env])
}

# No address means nothing was checked.
deny contains msg if {
	kind == "http"
	count(addresses) == 0
	msg := sprintf("Plugin `%s` asked for `%s`, which resolved to no address, so the request cannot be checked.", [lib.tool_name, host])
}
