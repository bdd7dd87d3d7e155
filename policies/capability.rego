# data.warden.capability: decided for each HTTP request, key-value use or
# Azure Resource Manager operation a plugin makes inside a call. The sandbox already refuses capabilities the
# manifest does not declare; this is the second line.
#
# An HTTP request to a name is decided twice: first as `http-lookup`, with
# the name and no addresses, before the sandbox resolves it (so metadata
# and loopback names never reach DNS), then as `http` with the addresses
# it resolved to. A request to an IP literal is decided once, as `http`.
package warden.rules.capability

import data.warden.lib.break_glass_envs
import data.warden.lib.break_glass_ticket
import data.warden.lib.env
import data.warden.lib.net as addr
import data.warden.lib.net.metadata_hosts
import data.warden.lib.network
import data.warden.lib.tool_name

default cap := {}

cap := input.capability if is_object(input.capability)

default kind := "(none)"

kind := cap.kind

default host := ""

# Lower case, without IPv6 brackets or the root's trailing dot, so
# `LOCALHOST.` and `[::1]` are matched like `localhost` and `::1`.
host := trim_right(trim(lower(cap.host), "[]"), ".") if is_string(cap.host)

# Both decisions on an HTTP request share the rules on its name.
http_kinds := {"http", "http-lookup"}

# Every address the request may reach: what the host resolved to, plus the
# host itself when it is an IP literal. The sandbox connects only to these.
addresses := {a | some a in object.get(cap, "addresses", [])} | {a | some a in object.get(cap, "resolved", [])} | literal_host

# IPv4 literals are digits and dots; only IPv6 literals hold a colon.
literal_host contains host if {
	host != ""
	trim(host, "0123456789.") == ""
}

literal_host contains host if contains(host, ":")

default declared_hosts := []

declared_hosts := input.tool.declared_hosts

host_declared if {
	some pattern in declared_hosts
	addr.matches_host(trim(lower(pattern), "[]"), host)
}

default allowed_private_cidrs := []

allowed_private_cidrs := network.allowed_private_cidrs[env]

allowed_internal(a) if {
	some cidr in allowed_private_cidrs
	net.cidr_contains(cidr, a)
}

# Each address is classified once; the rules below only read these.
special_addresses := {a | some a in addresses; addr.may_be_special(a)}

metadata_addresses := {a | some a in special_addresses; addr.is_metadata(a)}

blocked_internal := {a: classes |
	some a in special_addresses
	not a in metadata_addresses
	classes := addr.internal_classes(a)
	count(classes) > 0
	not allowed_internal(a)
}

# Only capability kinds the policy knows.
deny contains msg if {
	not kind in {"http", "http-lookup", "kv-read", "kv-write", "arm"}
	msg := sprintf("Plugin `%s` asked for the capability `%v`, which the policy does not know, so it is denied.", [tool_name, kind])
}

# HTTP only to hosts the plugin declared.
deny contains msg if {
	kind in http_kinds
	not host_declared
	msg := sprintf("Plugin `%s` did not declare HTTP access to `%s`.", [tool_name, host])
}

# HTTP and HTTPS only.
deny contains msg if {
	kind in http_kinds
	not lower(object.get(cap, "scheme", "")) in {"http", "https"}
	msg := sprintf("Plugin `%s` asked for the URL scheme `%v`; only http and https are allowed.", [tool_name, object.get(cap, "scheme", "")])
}

# Cloud metadata endpoints, by name.
deny contains msg if {
	kind in http_kinds
	host in metadata_hosts
	msg := sprintf("Plugin `%s` may not call `%s`: it is a cloud metadata endpoint, which plugins may never reach.", [tool_name, host])
}

# Loopback names, unless data allows loopback here (each address the name
# resolves to is checked again after the lookup).
deny contains msg if {
	kind in http_kinds
	addr.is_loopback_name(host)
	not allowed_internal("127.0.0.1")
	not allowed_internal("::1")
	msg := sprintf("Plugin `%s` may not call `%s`: it is a loopback name. Loopback is blocked in `%s` unless warden.config.network.allowed_private_cidrs.%s allows it.", [tool_name, host, env, env])
}

# Cloud metadata endpoints, by address (after DNS, so a friendly name that
# resolves to one is caught too).
deny contains msg if {
	kind in http_kinds
	some a in metadata_addresses
	msg := sprintf("Plugin `%s` may not reach %s (host `%s`): it is a cloud metadata endpoint, which plugins may never reach.", [tool_name, a, host])
}

# Loopback, link-local and private addresses unless data allows them here.
deny contains msg if {
	kind in http_kinds
	some a, classes in blocked_internal
	msg := sprintf("Plugin `%s` may not reach %s (host `%s`): it is %s. Such addresses are blocked in `%s` unless warden.config.network.allowed_private_cidrs.%s allows them.", [tool_name, a, host, concat(" and ", sort(classes)), env, env])
}

# No address means nothing was checked.
deny contains msg if {
	kind == "http"
	count(addresses) == 0
	msg := sprintf("Plugin `%s` asked for `%s`, which resolved to no address, so the request cannot be checked.", [tool_name, host])
}

# Azure Resource Manager: only Azure tools hold the host's ARM credential.
deny contains msg if {
	kind == "arm"
	not startswith(tool_name, "azure")
	msg := sprintf("Plugin `%s` may not call Azure Resource Manager (`%v`): only tools named `azure*` may.", [tool_name, object.get(cap, "operation", "")])
}

# Deleting a whole resource group in a protected environment needs a
# break-glass ticket, whatever the tool's declared effect.
deny contains msg if {
	kind == "arm"
	cap.operation == "delete-resource-group"
	env in break_glass_envs
	not break_glass_ticket
	msg := sprintf("Plugin `%s` may not delete resource group `%v` in `%s`: it is protected, so this runs only for a task that carries a break-glass ticket id.", [tool_name, object.get(cap, "resource_group", ""), env])
}
