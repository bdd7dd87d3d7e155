package warden_test.env

import data.warden_test.fixtures.call_input
import data.warden_test.fixtures.http_input
import data.warden_test.fixtures.mentions
import data.warden_test.fixtures.plan_input
import data.warden_test.fixtures.verdict

reads_in(env) := object.union(call_input, {"agent": {"env": env}, "tool": {"effect": "read-only"}})

test_an_unknown_environment_denies_every_entry if {
	qa := {"agent": {"env": "qa"}}
	d_call := data.warden.call with input as object.union(call_input, qa)
	d_plan := data.warden.plan with input as object.union(plan_input, qa)
	d_cap := data.warden.capability with input as object.union(http_input, qa)
	every d in [d_call, d_plan, d_cap] {
		verdict(d) == "deny"
		mentions(d.deny, "Environment `qa` is not known to this bundle (known: dev, prod, staging), so the policy denies everything.")
	}
}

# The host canonicalises; a spelling that slips through must not pass for
# an unprotected environment.
test_spellings_the_host_did_not_canonicalise_are_denied if {
	every env in ["Prod", "PROD", "prod ", " prod", "production", "prd", "Staging"] {
		d := data.warden.call with input as reads_in(env)
		verdict(d) == "deny"
		mentions(d.deny, sprintf("Environment `%s` is not known", [env]))
	}
}

test_a_mutating_call_in_a_misspelt_prod_is_denied_not_allowed if {
	d := data.warden.call with input as object.union(call_input, {"agent": {"env": "Prod"}})
	verdict(d) == "deny"
}

test_every_known_environment_is_accepted if {
	every env in ["dev", "staging", "prod"] {
		verdict(data.warden.call) == "allow" with input as reads_in(env)
	}
}

test_a_bundle_without_environments_accepts_any_name if {
	d := data.warden.call with input as reads_in("qa")
		with data.warden.config as {"max_mutations_per_hour": 20}
	verdict(d) == "allow"
}

test_a_bundle_without_environments_still_asks_approval_in_prod if {
	d := data.warden.call with input as call_input
		with data.warden.config as {"max_mutations_per_hour": 20}
	verdict(d) == "needs-approval"
}

test_protected_environments_need_approval_and_break_glass if {
	staging := {"agent": {"env": "staging"}}
	change := data.warden.call with input as object.union(call_input, staging)
		with data.warden.config.environments.protected as ["prod", "staging"]
	verdict(change) == "needs-approval"
	wipe := data.warden.call with input as object.union(call_input, {"agent": {"env": "staging"}, "tool": {"effect": "destructive"}})
		with data.warden.config.environments.protected as ["prod", "staging"]
	verdict(wipe) == "deny"
	mentions(wipe.deny, "break-glass ticket")
}

test_break_glass_envs_still_override_the_protected_list if {
	d := data.warden.call with input as object.union(call_input, {"agent": {"env": "staging"}, "tool": {"effect": "destructive"}})
		with data.warden.config.break_glass_envs as ["prod", "staging"]
	verdict(d) == "deny"
	mentions(d.deny, "`staging` is protected")
}

test_a_known_list_that_is_not_a_list_denies_everything if {
	d := data.warden.call with input as reads_in("prod")
		with data.warden.config.environments.known as "prod"
	verdict(d) == "deny"
	mentions(d.deny, "environments.known is not a list")
}

test_no_per_principal_limit_unless_the_bundle_sets_one if {
	d := data.warden.call with input as object.union(call_input, {"agent": {"env": "staging"}, "history": {"mutations_last_hour_principal": 1000}})
	verdict(d) == "allow"
}

test_the_per_principal_limit_denies_the_change_that_would_exceed_it if {
	staging := object.union(call_input, {"agent": {"env": "staging"}, "history": {"mutations_last_hour_principal": 5}})
	d := data.warden.call with input as staging
		with data.warden.config.max_mutations_per_hour_per_principal as 5
	verdict(d) == "deny"
	mentions(d.deny, "Principal `alice` already made 5 changes")
	under := data.warden.call with input as object.union(staging, {"history": {"mutations_last_hour_principal": 4}})
		with data.warden.config.max_mutations_per_hour_per_principal as 5
	verdict(under) == "allow"
}

test_the_per_principal_limit_without_history_denies if {
	d := data.warden.call with input as object.union(call_input, {"agent": {"env": "staging"}})
		with data.warden.config.max_mutations_per_hour_per_principal as 5
	verdict(d) == "deny"
	mentions(d.deny, "no history.mutations_last_hour_principal")
}

test_the_per_principal_limit_counts_a_plans_changes if {
	d := data.warden.plan with input as object.union(plan_input, {"agent": {"env": "staging"}, "history": {"mutations_last_hour_principal": 4}})
		with data.warden.config.max_mutations_per_hour_per_principal as 4
	verdict(d) == "deny"
	mentions(d.deny, "principal `alice` already made 4")
}

test_a_per_principal_limit_that_is_not_a_number_denies_everything if {
	d := data.warden.call with input as reads_in("dev")
		with data.warden.config.max_mutations_per_hour_per_principal as "ten"
	verdict(d) == "deny"
	mentions(d.deny, "max_mutations_per_hour_per_principal is not a number")
}
