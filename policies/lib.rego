# Facts about the input and settings with safe defaults, shared by every
# entry, plus the checks every input must pass.
package warden.lib

import data.warden.fn

default approval_envs := ["prod"]

approval_envs := data.warden.config.approval_envs

default break_glass_envs := ["prod"]

break_glass_envs := data.warden.config.break_glass_envs

default max_mutations_per_hour := 20

max_mutations_per_hour := data.warden.config.max_mutations_per_hour

default max_plan_steps := 50

max_plan_steps := data.warden.config.max_plan_steps

default network := {}

network := data.warden.config.network

default azure_settings := {}

azure_settings := data.warden.config.azure

default env := ""

env := input.agent.env if is_string(input.agent.env)

default agent_name := "(unnamed)"

agent_name := input.agent.name if is_string(input.agent.name)

default tool := {}

tool := input.tool if is_object(input.tool)

default tool_name := "(unnamed)"

tool_name := input.tool.name if is_string(input.tool.name)

default effect := "(none)"

effect := input.tool.effect if is_string(input.tool.effect)

known_effects := {"read-only", "mutating", "destructive"}

changes_state if fn.changes_state(effect)

# A dry run is harmless only when the tool says it honours dry runs.
dry_run_honoured if {
	input.call.dry_run == true
	input.tool.supports_dry_run == true
}

break_glass_ticket := ticket if {
	ticket := input.task.break_glass
	is_string(ticket)
	trim_space(ticket) != ""
}

mutations_last_hour := n if {
	n := input.history.mutations_last_hour
	is_number(n)
}

# Problems with the input or the settings themselves: every entry denies.
input_errors contains msg if {
	env == ""
	msg := "The agent does not say which environment it acts on (agent.env), so the policy denies everything."
}

input_errors contains msg if {
	not is_number(max_mutations_per_hour)
	msg := "The setting warden.config.max_mutations_per_hour is not a number, so the policy denies everything until it is fixed."
}

input_errors contains msg if {
	not is_array(approval_envs)
	msg := "The setting warden.config.approval_envs is not a list, so the policy denies everything until it is fixed."
}

input_errors contains msg if {
	not is_array(break_glass_envs)
	msg := "The setting warden.config.break_glass_envs is not a list, so the policy denies everything until it is fixed."
}
