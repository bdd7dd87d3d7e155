# data.warden.approve: decided when someone approves a call that needed
# approval. The input is the call's input plus `approver` {id, roles} and
# `approval` {reasons}; allow means the approval counts.
package warden.rules.approve

import data.warden.lib.allow_self_approval
import data.warden.lib.approval_envs
import data.warden.lib.env
import data.warden.lib.principal_id
import data.warden.lib.protected_envs

default approver_id := ""

approver_id := trim_space(input.approver.id) if is_string(input.approver.id)

# Identities compare without case or surrounding spaces, so `Alice` does not
# pass for someone other than `alice`.
same_person if {
	approver_id != ""
	lower(approver_id) == lower(trim_space(principal_id))
}

# Self-approval matters wherever a human's approval is asked for.
guarded_envs := {e | some e in protected_envs} | {e | some e in approval_envs}

# An approval must say who approved.
deny contains msg if {
	approver_id == ""
	msg := "The approval names no approver (approver.id), so it cannot count."
}

# Four eyes in protected environments: the person the agent acts for cannot
# approve their own call.
deny contains msg if {
	same_person
	env in guarded_envs
	allow_self_approval != true
	msg := sprintf("`%s` cannot approve their own call in `%s`; another person must approve it, or the bundle must set warden.config.allow_self_approval.", [principal_id, env])
}
