package warden_test.approve

import data.warden_test.fixtures.approve_input
import data.warden_test.fixtures.mentions
import data.warden_test.fixtures.verdict

approve_with(patch) := object.union(approve_input, patch)

test_self_approval_is_refused_in_prod if {
	d := data.warden.approve with input as approve_input
	verdict(d) == "deny"
	d.deny == {"`alice` cannot approve their own call in `prod`; another person must approve it, or the bundle must set warden.config.allow_self_approval."}
}

test_self_approval_is_recognised_across_case_and_spaces if {
	d := data.warden.approve with input as approve_with({"approver": {"id": " Alice "}})
	verdict(d) == "deny"
	mentions(d.deny, "cannot approve their own call")
}

test_another_person_may_approve_in_prod if {
	d := data.warden.approve with input as approve_with({"approver": {"id": "bob"}})
	verdict(d) == "allow"
}

test_self_approval_is_allowed_in_staging if {
	d := data.warden.approve with input as approve_with({"agent": {"env": "staging"}})
	verdict(d) == "allow"
}

test_self_approval_is_allowed_in_prod_when_the_bundle_allows_it if {
	d := data.warden.approve with input as approve_input
		with data.warden.config.allow_self_approval as true
	verdict(d) == "allow"
}

test_self_approval_is_refused_wherever_approval_envs_ask_for_approval if {
	d := data.warden.approve with input as approve_with({"agent": {"env": "staging"}})
		with data.warden.config.approval_envs as ["prod", "staging"]
	verdict(d) == "deny"
	mentions(d.deny, "in `staging`")
}

test_self_approval_is_refused_in_every_protected_environment if {
	d := data.warden.approve with input as approve_with({"agent": {"env": "staging"}})
		with data.warden.config.environments.protected as ["prod", "staging"]
	verdict(d) == "deny"
}

test_an_approval_without_approver_is_refused if {
	d := data.warden.approve with input as object.remove(approve_input, ["approver"])
	verdict(d) == "deny"
	mentions(d.deny, "names no approver")
}

test_a_blank_approver_id_is_refused_even_in_staging if {
	d := data.warden.approve with input as approve_with({"agent": {"env": "staging"}, "approver": {"id": "  "}})
	verdict(d) == "deny"
	mentions(d.deny, "names no approver")
}

test_an_approval_in_an_unknown_environment_is_refused if {
	d := data.warden.approve with input as approve_with({"agent": {"env": "Prod"}, "approver": {"id": "bob"}})
	verdict(d) == "deny"
	mentions(d.deny, "Environment `Prod` is not known")
}

test_a_non_boolean_allow_self_approval_denies_every_approval if {
	d := data.warden.approve with input as approve_with({"approver": {"id": "bob"}})
		with data.warden.config.allow_self_approval as "yes"
	verdict(d) == "deny"
	mentions(d.deny, "allow_self_approval is not a boolean")
}

test_an_approval_never_waits_for_another_approval if {
	d := data.warden.approve with input as approve_input
	d.approval == set()
}
