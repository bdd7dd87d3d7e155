# Facts about the input and settings with safe defaults, shared by every
# entry, plus the checks every input must pass.
package warden.lib

import data.warden.fn

default config := {}

config := c if {
	c := data.warden.config
	is_object(c)
}

# The environments the bundle knows (warden.config.environments): `known`
# canonical names, `aliases` the host maps onto them, the `default` one and
# the `protected` ones. warden-policy checks their shape at load; the host
# canonicalises agent.env with them before asking.
default environments := {}

environments := e if {
	e := config.environments
	is_object(e)
}

known_envs := environments.known

# Without an environments list, only `prod` is protected, as before.
protected_envs := object.get(environments, "protected", ["prod"])

# Explicit settings win; otherwise approval and break-glass apply to the
# protected environments.
approval_envs := object.get(config, "approval_envs", protected_envs)

break_glass_envs := object.get(config, "break_glass_envs", protected_envs)

default allow_self_approval := false

allow_self_approval := config.allow_self_approval

default max_mutations_per_hour := 20

max_mutations_per_hour := data.warden.config.max_mutations_per_hour

# Optional: no per-principal limit unless the bundle sets one. (Tested
# with `in object.keys` rather than by assigning the rule: regorus's
# compiled engine lets `x := <undefined>` succeed.)
limits_principal if "max_mutations_per_hour_per_principal" in object.keys(config)

max_mutations_per_hour_per_principal := config.max_mutations_per_hour_per_principal

default max_plan_steps := 50

max_plan_steps := data.warden.config.max_plan_steps

default network := {}

network := data.warden.config.network

default azure_settings := {}

azure_settings := data.warden.config.azure

default env := ""

env := input.agent.env if is_string(input.agent.env)

default principal_id := ""

principal_id := input.principal.id if is_string(input.principal.id)

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

mutations_last_hour_principal := n if {
	n := input.history.mutations_last_hour_principal
	is_number(n)
}

# Problems with the input or the settings themselves: every entry denies.
input_errors contains msg if {
	env == ""
	msg := "The agent does not say which environment it acts on (agent.env), so the policy denies everything."
}

# A host that forgot to canonicalise (`Prod`, `production`, `prod `) must not
# land outside the protected environments: an unknown name denies.
input_errors contains msg if {
	env != ""
	known := known_envs
	is_array(known)
	not env in known
	msg := sprintf("Environment `%s` is not known to this bundle (known: %s), so the policy denies everything.", [env, concat(", ", sort(known))])
}

input_errors contains msg if {
	not settings_vouched
	some msg in settings_errors
}

# warden checks these settings when it loads the bundle, refuses a bundle
# that breaks them, and records the settings it checked under
# data.warden.host.checked_config (a path a bundle may not write). While the
# settings are the ones it checked, the checks below need not run again on
# every decision; under another host, or a test's `with`, they do.
settings_vouched if data.warden.host.checked_config == config

settings_errors contains msg if {
	not is_number(max_mutations_per_hour)
	msg := "The setting warden.config.max_mutations_per_hour is not a number, so the policy denies everything until it is fixed."
}

settings_errors contains msg if {
	not is_array(approval_envs)
	msg := "The setting warden.config.approval_envs is not a list, so the policy denies everything until it is fixed."
}

settings_errors contains msg if {
	not is_array(break_glass_envs)
	msg := "The setting warden.config.break_glass_envs is not a list, so the policy denies everything until it is fixed."
}

settings_errors contains msg if {
	"environments" in object.keys(config)
	not is_array(known_envs)
	msg := "The setting warden.config.environments.known is not a list, so the policy denies everything until it is fixed."
}

settings_errors contains msg if {
	not is_boolean(allow_self_approval)
	msg := "The setting warden.config.allow_self_approval is not a boolean, so the policy denies everything until it is fixed."
}

settings_errors contains msg if {
	limits_principal
	not is_number(max_mutations_per_hour_per_principal)
	msg := "The setting warden.config.max_mutations_per_hour_per_principal is not a number, so the policy denies everything until it is fixed."
}
