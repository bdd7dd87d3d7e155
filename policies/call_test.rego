package warden_test.call

import data.warden_test.fixtures.call_input
import data.warden_test.fixtures.mentions
import data.warden_test.fixtures.verdict

call_with(patch) := object.union(call_input, patch)

test_read_only_tools_are_allowed_in_every_environment if {
	every env in ["prod", "staging", "dev"] {
		d := data.warden.call with input as call_with({"agent": {"env": env}, "tool": {"effect": "read-only"}})
		verdict(d) == "allow"
	}
}

test_mutating_tools_need_approval_in_prod if {
	d := data.warden.call with input as call_input
	verdict(d) == "needs-approval"
	mentions(d.approval, "a human must approve")
}

test_mutating_tools_run_in_staging_without_approval if {
	d := data.warden.call with input as call_with({"agent": {"env": "staging"}})
	verdict(d) == "allow"
}

test_a_mutating_call_in_a_task_from_chat_needs_approval_even_in_dev if {
	d := data.warden.call with input as call_with({"agent": {"env": "dev"}, "task": {"source": "chat"}})
	verdict(d) == "needs-approval"
	mentions(d.approval, "asked for in chat")
}

test_a_read_only_call_in_a_task_from_chat_runs_without_approval if {
	d := data.warden.call with input as call_with({"agent": {"env": "dev"}, "task": {"source": "chat"}, "tool": {"effect": "read-only"}})
	verdict(d) == "allow"
}

test_a_dry_run_of_a_tool_that_honours_it_needs_no_approval if {
	d := data.warden.call with input as call_with({"call": {"dry_run": true}})
	verdict(d) == "allow"
}

test_a_dry_run_of_a_tool_that_ignores_it_still_needs_approval if {
	d := data.warden.call with input as call_with({"call": {"dry_run": true}, "tool": {"supports_dry_run": false}})
	verdict(d) == "needs-approval"
}

test_destructive_tools_are_denied_in_prod_without_break_glass if {
	d := data.warden.call with input as call_with({"tool": {"name": "wipe-disk", "effect": "destructive"}})
	verdict(d) == "deny"
	mentions(d.deny, "break-glass ticket")
}

test_destructive_tools_with_break_glass_need_approval_in_prod if {
	d := data.warden.call with input as call_with({"tool": {"effect": "destructive"}, "task": {"break_glass": "INC-4711"}})
	verdict(d) == "needs-approval"
	mentions(d.approval, "INC-4711")
}

test_a_blank_break_glass_ticket_does_not_count if {
	d := data.warden.call with input as call_with({"tool": {"effect": "destructive"}, "task": {"break_glass": "  "}})
	verdict(d) == "deny"
}

test_destructive_tools_run_in_staging if {
	d := data.warden.call with input as call_with({"agent": {"env": "staging"}, "tool": {"effect": "destructive"}})
	verdict(d) == "allow"
}

test_the_hourly_change_limit_denies_the_call_that_would_exceed_it if {
	d := data.warden.call with input as call_with({"agent": {"env": "staging"}, "history": {"mutations_last_hour": 20}})
	verdict(d) == "deny"
	mentions(d.deny, "already made 20 changes")
}

test_the_last_change_under_the_limit_is_allowed if {
	d := data.warden.call with input as call_with({"agent": {"env": "staging"}, "history": {"mutations_last_hour": 19}})
	verdict(d) == "allow"
}

test_the_change_limit_comes_from_data if {
	d := data.warden.call with input as call_with({"agent": {"env": "staging"}, "history": {"mutations_last_hour": 5}})
		with data.warden.config.max_mutations_per_hour as 5
	verdict(d) == "deny"
}

test_reads_are_not_rate_limited if {
	d := data.warden.call with input as call_with({"tool": {"effect": "read-only"}, "history": {"mutations_last_hour": 1000}})
	verdict(d) == "allow"
}

test_a_change_without_history_is_denied if {
	d := data.warden.call with input as object.remove(call_with({"agent": {"env": "staging"}}), ["history"])
	verdict(d) == "deny"
	mentions(d.deny, "no history")
}

test_an_agent_without_environment_is_denied_even_for_reads if {
	d := data.warden.call with input as object.remove(call_with({"tool": {"effect": "read-only"}}), ["agent"])
	verdict(d) == "deny"
	mentions(d.deny, "which environment")
}

test_an_unknown_effect_is_denied if {
	d := data.warden.call with input as call_with({"agent": {"env": "staging"}, "tool": {"effect": "harmless"}})
	verdict(d) == "deny"
	mentions(d.deny, "`harmless`")
}

test_a_call_without_tool_is_denied if {
	d := data.warden.call with input as object.remove(call_input, ["tool"])
	verdict(d) == "deny"
}

test_a_broken_setting_denies_everything if {
	d := data.warden.call with input as call_with({"tool": {"effect": "read-only"}})
		with data.warden.config.max_mutations_per_hour as "lots"
	verdict(d) == "deny"
	mentions(d.deny, "max_mutations_per_hour is not a number")
}

test_approval_environments_come_from_data if {
	d := data.warden.call with input as call_with({"agent": {"env": "staging"}})
		with data.warden.config.approval_envs as ["prod", "staging"]
	verdict(d) == "needs-approval"
}
