# Helpers shared by every entry: settings with safe defaults, and the
# checks every input must pass.
package warden.lib

default config := {}

config := data.warden.config

setting(name, fallback) := object.get(config, name, fallback)

approval_envs := setting("approval_envs", ["prod"])

break_glass_envs := setting("break_glass_envs", ["prod"])

max_mutations_per_hour := setting("max_mutations_per_hour", 20)

max_plan_steps := setting("max_plan_steps", 50)

default env := ""

env := input.agent.env if is_string(input.agent.env)

default agent_name := "(unnamed)"

agent_name := input.agent.name if is_string(input.agent.name)

default tool := {}

tool := input.tool if is_object(input.tool)

tool_name := object.get(tool, "name", "(unnamed)")

effect := object.get(tool, "effect", "(none)")

known_effects := {"read-only", "mutating", "destructive"}

object_or_empty(x) := x if is_object(x)

object_or_empty(x) := {} if not is_object(x)

changes_state(e) if e in {"mutating", "destructive"}

# A dry run is harmless only when the tool says it honours dry runs.
dry_run_honoured if {
	input.call.dry_run == true
	tool.supports_dry_run == true
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
