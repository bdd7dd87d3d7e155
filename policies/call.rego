# data.warden.call: decided before a tool runs.
package warden.rules.call

import data.warden.lib
import data.warden.lib.azure

args := object.get(lib.object_or_empty(object.get(input, "call", {})), "args", {})

# The call must name a tool.
deny contains msg if {
	lib.tool == {}
	msg := "The call names no tool, so the policy cannot judge it."
}

# The tool must declare an effect the policy understands.
deny contains msg if {
	lib.tool != {}
	not lib.effect in lib.known_effects
	msg := sprintf("Tool `%s` declares the effect `%v`; only read-only, mutating and destructive are understood, so it is denied.", [lib.tool_name, lib.effect])
}

# Mutating tools need a human's approval in approval environments (prod).
approval contains msg if {
	lib.effect == "mutating"
	lib.env in lib.approval_envs
	not lib.dry_run_honoured
	msg := sprintf("Tool `%s` changes infrastructure in `%s`, so a human must approve this call.", [lib.tool_name, lib.env])
}

# Destructive tools are denied in protected environments unless the task
# carries a break-glass ticket.
deny contains msg if {
	lib.effect == "destructive"
	lib.env in lib.break_glass_envs
	not lib.dry_run_honoured
	not lib.break_glass_ticket
	msg := sprintf("Tool `%s` is destructive and `%s` is protected: it runs only for a task that carries a break-glass ticket id.", [lib.tool_name, lib.env])
}

# With a break-glass ticket, a destructive call still needs a human.
approval contains msg if {
	lib.effect == "destructive"
	lib.env in lib.approval_envs
	not lib.dry_run_honoured
	ticket := lib.break_glass_ticket
	msg := sprintf("Tool `%s` is destructive; break-glass ticket %s lets it run in `%s`, but a human must approve this call.", [lib.tool_name, ticket, lib.env])
}

# Rate limit: at most N changes per agent per hour.
deny contains msg if {
	lib.changes_state(lib.effect)
	not lib.dry_run_honoured
	done := lib.mutations_last_hour
	done >= lib.max_mutations_per_hour
	msg := sprintf("Agent `%s` already made %d changes in the last hour and the limit is %d; wait, or raise warden.config.max_mutations_per_hour.", [lib.agent_name, done, lib.max_mutations_per_hour])
}

# Without history the rate limit cannot be checked.
deny contains msg if {
	lib.changes_state(lib.effect)
	not lib.dry_run_honoured
	not lib.mutations_last_hour
	msg := sprintf("Tool `%s` changes state but the input carries no history.mutations_last_hour, so the rate limit cannot be checked.", [lib.tool_name])
}

# Azure: regions, VM sizes and the cost ceiling.
deny contains msg if {
	some msg in azure.violations(args)
}

obligations["cost_ceiling"] := azure.cost_ceiling if azure.touches(lib.tool_name, args)
