# Entry points of the default bundle: call, capability, plan and approve.
#
# Each returns {allow, deny, approval, obligations}; warden reads deny first,
# then approval, then allow. The rules live in data.warden.rules.<entry>,
# shared facts in data.warden.lib, functions in data.warden.fn.
package warden

import data.warden.lib.input_errors
import data.warden.rules.approve.deny as approve_rule_deny
import data.warden.rules.call.approval as call_approval
import data.warden.rules.call.deny as call_rule_deny
import data.warden.rules.call.obligations as call_obligations
import data.warden.rules.capability.deny as capability_rule_deny
import data.warden.rules.plan.approval as plan_approval
import data.warden.rules.plan.deny as plan_rule_deny
import data.warden.rules.plan.obligations as plan_obligations

call_deny := call_rule_deny | input_errors

call := {
	"allow": count(call_deny) == 0,
	"deny": call_deny,
	"approval": call_approval,
	"obligations": call_obligations,
}

capability_deny := capability_rule_deny | input_errors

# A capability is used mid-call and cannot wait for a human: no approvals.
capability := {
	"allow": count(capability_deny) == 0,
	"deny": capability_deny,
	"approval": set(),
	"obligations": {},
}

plan_deny := plan_rule_deny | input_errors

plan := {
	"allow": count(plan_deny) == 0,
	"deny": plan_deny,
	"approval": plan_approval,
	"obligations": plan_obligations,
}

approve_deny := approve_rule_deny | input_errors

# An approval either counts or not: it cannot itself wait for approval.
approve := {
	"allow": count(approve_deny) == 0,
	"deny": approve_deny,
	"approval": set(),
	"obligations": {},
}
