# Entry points of the default bundle.
#
# Each returns {allow, deny, approval, obligations}; warden reads deny first,
# then approval, then allow. The rules live in data.warden.rules.<entry>,
# shared helpers in data.warden.lib.
package warden

import data.warden.lib
import data.warden.rules.call as call_rules
import data.warden.rules.capability as capability_rules
import data.warden.rules.plan as plan_rules

call := decision(call_rules.deny | lib.input_errors, call_rules.approval, call_rules.obligations)

# A capability is used mid-call and cannot wait for a human: no approvals.
capability := decision(capability_rules.deny | lib.input_errors, set(), {})

plan := decision(plan_rules.deny | lib.input_errors, plan_rules.approval, plan_rules.obligations)

decision(deny, approval, obligations) := {
	"allow": count(deny) == 0,
	"deny": deny,
	"approval": approval,
	"obligations": obligations,
}
