# data.warden.call: decided before a tool runs.
package warden.rules.call

import data.warden.fn
import data.warden.lib.agent_name
import data.warden.lib.approval_envs
import data.warden.lib.azure
import data.warden.lib.azure.cost_ceiling
import data.warden.lib.break_glass_envs
import data.warden.lib.break_glass_ticket
import data.warden.lib.changes_state
import data.warden.lib.dry_run_honoured
import data.warden.lib.effect
import data.warden.lib.env
import data.warden.lib.known_effects
import data.warden.lib.limits_principal
import data.warden.lib.max_mutations_per_hour
import data.warden.lib.max_mutations_per_hour_per_principal
import data.warden.lib.mutations_last_hour
import data.warden.lib.mutations_last_hour_principal
import data.warden.lib.principal_id
import data.warden.lib.tool
import data.warden.lib.tool_name

default args := {}

args := input.call.args if is_object(input.call.args)

# Azure checks and the cost ceiling apply to calls that name resources.
names_resources if args.resources

names_resources if args.template

# The call must name a tool.
deny contains msg if {
	tool == {}
	msg := "The call names no tool, so the policy cannot judge it."
}

# The tool must declare an effect the policy understands.
deny contains msg if {
	tool != {}
	not effect in known_effects
	msg := sprintf("Tool `%s` declares the effect `%v`; only read-only, mutating and destructive are understood, so it is denied.", [tool_name, effect])
}

# Mutating tools need a human's approval in approval environments (prod).
approval contains msg if {
	effect == "mutating"
	env in approval_envs
	not dry_run_honoured
	msg := sprintf("Tool `%s` changes infrastructure in `%s`, so a human must approve this call.", [tool_name, env])
}

# A task asked for in chat is an investigation: whatever the environment,
# a call that would change something waits for a human's approval.
approval contains msg if {
	input.task.source == "chat"
	changes_state
	not dry_run_honoured
	msg := sprintf("Tool `%s` would change something and the task was asked for in chat, where tasks investigate: a human must approve this call.", [tool_name])
}

# Destructive tools are denied in protected environments unless the task
# carries a break-glass ticket.
deny contains msg if {
	effect == "destructive"
	env in break_glass_envs
	not dry_run_honoured
	not break_glass_ticket
	msg := sprintf("Tool `%s` is destructive and `%s` is protected: it runs only for a task that carries a break-glass ticket id.", [tool_name, env])
}

# With a break-glass ticket, a destructive call still needs a human.
approval contains msg if {
	effect == "destructive"
	env in approval_envs
	not dry_run_honoured
	ticket := break_glass_ticket
	msg := sprintf("Tool `%s` is destructive; break-glass ticket %s lets it run in `%s`, but a human must approve this call.", [tool_name, ticket, env])
}

# Rate limit: at most N changes per agent per hour.
deny contains msg if {
	changes_state
	not dry_run_honoured
	done := mutations_last_hour
	done >= max_mutations_per_hour
	msg := sprintf("Agent `%s` already made %d changes in the last hour and the limit is %d; wait, or raise warden.config.max_mutations_per_hour.", [agent_name, done, max_mutations_per_hour])
}

# Without history the rate limit cannot be checked.
deny contains msg if {
	changes_state
	not dry_run_honoured
	not mutations_last_hour
	msg := sprintf("Tool `%s` changes state but the input carries no history.mutations_last_hour, so the rate limit cannot be checked.", [tool_name])
}

# Rate limit per person, when the bundle sets one: at most N changes per
# principal per hour, across agents.
deny contains msg if {
	changes_state
	not dry_run_honoured
	limits_principal
	limit := max_mutations_per_hour_per_principal
	done := mutations_last_hour_principal
	is_number(done)
	done >= limit
	msg := sprintf("Principal `%s` already made %d changes in the last hour and the limit is %d; wait, or raise warden.config.max_mutations_per_hour_per_principal.", [principal_id, done, limit])
}

deny contains msg if {
	changes_state
	not dry_run_honoured
	limits_principal
	not is_number(mutations_last_hour_principal)
	msg := sprintf("Tool `%s` changes state but the input carries no history.mutations_last_hour_principal, so the per-principal rate limit cannot be checked.", [tool_name])
}

# Azure: regions, VM sizes and the cost ceiling.
deny contains msg if {
	names_resources
	some msg in azure.violations(args)
}

default obligations := {}

obligations := {"cost_ceiling": cost_ceiling} if startswith(tool_name, "azure")

obligations := {"cost_ceiling": cost_ceiling} if names_resources
