package warden_test.plan

import data.warden_test.fixtures.mentions
import data.warden_test.fixtures.plan_input
import data.warden_test.fixtures.verdict

step(id, name, effect) := {"id": id, "tool": {"name": name, "effect": effect}, "args": {}}

plan_of(steps) := object.union(plan_input, {"plan": {"steps": steps}})

test_a_read_only_plan_is_allowed_in_prod if {
	d := data.warden.plan with input as plan_of([step("s1", "disk-usage", "read-only")])
	verdict(d) == "allow"
}

test_a_plan_that_changes_prod_needs_approval_and_names_the_steps if {
	d := data.warden.plan with input as plan_input
	verdict(d) == "needs-approval"
	mentions(d.approval, "(steps s2)")
}

test_a_destructive_step_in_prod_without_break_glass_is_denied if {
	d := data.warden.plan with input as plan_of([step("s1", "wipe-disk", "destructive")])
	verdict(d) == "deny"
	mentions(d.deny, "Step s1 runs the destructive tool `wipe-disk`")
}

test_a_plan_that_would_exceed_the_hourly_change_limit_is_denied if {
	steps := [step(sprintf("s%d", [i]), "restart", "mutating") | some i in numbers.range(1, 3)]
	d := data.warden.plan with input as object.union(plan_of(steps), {"agent": {"env": "staging"}, "history": {"mutations_last_hour": 18}})
	verdict(d) == "deny"
	mentions(d.deny, "makes 3 changes")
}

test_a_missing_plan_is_denied if {
	d := data.warden.plan with input as object.remove(plan_input, ["plan"])
	verdict(d) == "deny"
}

test_a_too_long_plan_is_denied if {
	steps := [step(sprintf("s%d", [i]), "disk-usage", "read-only") | some i in numbers.range(1, 51)]
	d := data.warden.plan with input as plan_of(steps)
	verdict(d) == "deny"
	mentions(d.deny, "51 steps")
}

test_azure_violations_name_the_step if {
	s := object.union(step("s9", "azure-deploy", "mutating"), {"args": {"resources": [{"name": "vm1", "location": "eastus"}]}})
	d := data.warden.plan with input as plan_of([s])
	verdict(d) == "deny"
	mentions(d.deny, "Step s9: Azure resource `vm1`")
	d.obligations.cost_ceiling.monthly_usd == 1000
}
