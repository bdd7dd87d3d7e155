# data.warden.plan: decided for the whole plan before any step runs.
package warden.rules.plan

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

# One pass over the steps: everything the rules below need from a step,
# read once. A row is [id, tool name, effect, changes, destructive, args]:
# `changes` when the effect changes state and the step is not a dry run
# that its tool honours; `destructive` when a destructive tool runs for
# real.
#
# Steps as the host writes them (every field there, a known effect, dry-run
# flags that are booleans) are read with plain references and one table
# lookup. Any other step makes that pass come up short, and then every
# step is read the careful way, each field with a default. On regorus's
# compiled engine a plan's cost is its instructions per step: each loop
# over the steps costs 2-4k machine instructions a step, each builtin call
# 1-3k (measured with cachegrind), so the common case makes no builtin call
# and the rules below loop over the steps as few times as they can.
# tests/policy/plan_equivalence.rs holds both passes to the earlier,
# rule-by-rule version.
rows := fast_rows if fast

rows := careful_rows if not fast

fast if count(fast_rows) == count(steps)

fast_rows := read if {
	# Rules read once, outside the loop (inside it, each read is a lookup).
	all := steps
	effects := known_effects
	table := step_class
	read := [[id, name, effect, class[0], class[1], args] |
		some raw in all
		id := raw.id
		tool := raw.tool
		name := tool.name
		effect := tool.effect
		args := raw.args
		effect in effects
		class := table[effect][raw.dry_run][tool.supports_dry_run]

		# regorus's compiled engine lets `x := <undefined>` succeed, and a
		# comparison with an undefined side fails: a step missing a field, or
		# with an effect or flag the table has no entry for, drops out here.
		id == id
		name == name
		args == args
		class == class
	]
}

# [changes, destructive] by effect, then the step's dry_run, then whether
# its tool honours dry runs.
step_class := {
	"read-only": {
		true: {true: [false, false], false: [false, false]},
		false: {true: [false, false], false: [false, false]},
	},
	"mutating": {
		true: {true: [false, false], false: [true, false]},
		false: {true: [true, false], false: [true, false]},
	},
	"destructive": {
		true: {true: [false, false], false: [true, true]},
		false: {true: [true, true], false: [true, true]},
	},
}

# Each field is one `object.get` down a path from a one-key wrapper `w`:
# the path walk gives the default wherever a step, its tool or its args is
# not an object.
careful_rows := [[id, name, effect, changes, destructive, args] |
	some raw in steps
	w := {"s": raw}
	id := object.get(w, ["s", "id"], "(no id)")
	name := object.get(w, ["s", "tool", "name"], "(unnamed)")
	effect := object.get(w, ["s", "tool", "effect"], "(none)")
	args := object.get(w, ["s", "args"], {})
	live := [object.get(w, ["s", "dry_run"], null), object.get(w, ["s", "tool", "supports_dry_run"], null)] != [true, true]
	changes := [effect in {"mutating", "destructive"}, live] == [true, true]
	destructive := [effect == "destructive", live] == [true, true]
]

# The steps whose arguments could name Azure resources or a cost (the
# other steps cannot violate an Azure rule), in step order.
azure_steps contains i if {
	some i, raw in steps
	some key in ["resources", "template"]
	raw.args[key] != null
}

azure_steps contains i if {
	some i, raw in steps
	is_number(raw.args.estimated_monthly_cost_usd)
}

azure_rows := [rows[i] | some i in azure_steps]

changing_steps := [row[0] | some row in rows; row[3]]

# Every step must have been read: a step the one pass could not read (a
# builtin error ends the comprehension) denies the plan rather than
# letting it through unjudged.
deny contains msg if {
	steps
	not count(rows) == count(steps)
	msg := "The plan has steps the policy could not read, so the plan cannot be judged."
}

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

# Every step must declare an effect the policy understands (each step the
# fast pass read does).
deny contains msg if {
	not fast
	some row in rows
	not row[2] in known_effects
	msg := sprintf("Step %v uses tool `%s` with the effect `%v`, which the policy does not understand.", [row[0], row[1], row[2]])
}

# Destructive steps in protected environments need a break-glass ticket.
deny contains msg if {
	env in break_glass_envs
	not break_glass_ticket
	some row in rows
	row[4]
	msg := sprintf("Step %v runs the destructive tool `%s` and `%s` is protected: the task needs a break-glass ticket id.", [row[0], row[1], env])
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

# Azure checks on every step that could name a resource or a cost.
deny contains msg if {
	some row in azure_rows
	some violation in azure.violations(row[5])
	msg := sprintf("Step %v: %s", [row[0], violation])
}

# Changes in approval environments need a human.
approval contains msg if {
	env in approval_envs
	count(changing_steps) > 0
	msg := sprintf("The plan changes infrastructure in `%s` (steps %s), so a human must approve it.", [env, concat(", ", [sprintf("%v", [id]) | some id in changing_steps])])
}

default obligations := {}

obligations := {"cost_ceiling": cost_ceiling} if touches_azure

# By distinct tool name, so a plan of many steps of one tool checks it once.
tool_names := {row[1] | some row in rows}

touches_azure if {
	some name in tool_names
	is_string(name)
	startswith(name, "azure")
}

touches_azure if {
	some row in azure_rows
	azure.touches("", row[5])
}
