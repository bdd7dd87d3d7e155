# data.warden.plan: decided for the whole plan before any step runs.
package warden.rules.plan

import data.warden.fn
import data.warden.lib.agent_name
import data.warden.lib.approval_envs
import data.warden.lib.azure
import data.warden.lib.azure.cost_ceiling
import data.warden.lib.break_glass_envs
import data.warden.lib.break_glass_ticket
import data.warden.lib.env
import data.warden.lib.known_effects
import data.warden.lib.limits_principal
import data.warden.lib.max_mutations_per_hour
import data.warden.lib.max_mutations_per_hour_per_principal
import data.warden.lib.max_plan_steps
import data.warden.lib.mutations_last_hour
import data.warden.lib.mutations_last_hour_principal
import data.warden.lib.principal_id

steps := s if {
	s := input.plan.steps
	is_array(s)
}

step_tool_info(step) := fn.object_or_empty(object.get(step, "tool", {}))

step_effect(step) := object.get(step_tool_info(step), "effect", "(none)")

step_tool(step) := object.get(step_tool_info(step), "name", "(unnamed)")

step_id(step) := object.get(step, "id", "(no id)")

step_args(step) := object.get(step, "args", {})

# A step only counts as harmless when it is a dry run of a tool that honours them.
changes(step) if {
	fn.changes_state(step_effect(step))
	not dry_run(step)
}

dry_run(step) if {
	step.dry_run == true
	step.tool.supports_dry_run == true
}

changing_steps := [step_id(step) | some step in steps; changes(step)]

# The input must carry a plan.
deny contains msg if {
	not steps
	msg := "The input carries no plan.steps list, so the plan cannot be judged."
}

# Plans have a size limit.
deny contains msg if {
	count(steps) > max_plan_steps
	msg := sprintf("The plan has %d steps and the limit is %d; split the task.", [count(steps), max_plan_steps])
}

# Every step must declare an effect the policy understands.
deny contains msg if {
	some step in steps
	not step_effect(step) in known_effects
	msg := sprintf("Step %v uses tool `%s` with the effect `%v`, which the policy does not understand.", [step_id(step), step_tool(step), step_effect(step)])
}

# Destructive steps in protected environments need a break-glass ticket.
deny contains msg if {
	env in break_glass_envs
	not break_glass_ticket
	some step in steps
	step_effect(step) == "destructive"
	not dry_run(step)
	msg := sprintf("Step %v runs the destructive tool `%s` and `%s` is protected: the task needs a break-glass ticket id.", [step_id(step), step_tool(step), env])
}

# The plan must fit in what is left of the hourly change budget.
deny contains msg if {
	count(changing_steps) > 0
	done := mutations_last_hour
	done + count(changing_steps) > max_mutations_per_hour
	msg := sprintf("The plan makes %d changes, but agent `%s` already made %d in the last hour and the limit is %d.", [count(changing_steps), agent_name, done, max_mutations_per_hour])
}

deny contains msg if {
	count(changing_steps) > 0
	not mutations_last_hour
	msg := "The plan changes state but the input carries no history.mutations_last_hour, so the rate limit cannot be checked."
}

# The per-principal change budget, when the bundle sets one.
deny contains msg if {
	count(changing_steps) > 0
	limits_principal
	limit := max_mutations_per_hour_per_principal
	done := mutations_last_hour_principal
	is_number(done)
	done + count(changing_steps) > limit
	msg := sprintf("The plan makes %d changes, but principal `%s` already made %d in the last hour and the limit is %d.", [count(changing_steps), principal_id, done, limit])
}

deny contains msg if {
	count(changing_steps) > 0
	limits_principal
	not is_number(mutations_last_hour_principal)
	msg := "The plan changes state but the input carries no history.mutations_last_hour_principal, so the per-principal rate limit cannot be checked."
}

# Azure checks on every step.
deny contains msg if {
	some step in steps
	some violation in azure.violations(step_args(step))
	msg := sprintf("Step %v: %s", [step_id(step), violation])
}

# Changes in approval environments need a human.
approval contains msg if {
	env in approval_envs
	count(changing_steps) > 0
	msg := sprintf("The plan changes infrastructure in `%s` (steps %s), so a human must approve it.", [env, concat(", ", [sprintf("%v", [id]) | some id in changing_steps])])
}

default obligations := {}

obligations := {"cost_ceiling": cost_ceiling} if {
	some step in steps
	azure.touches(step_tool(step), step_args(step))
}
