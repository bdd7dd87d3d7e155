package warden_test.arm

import data.warden_test.fixtures.http_input
import data.warden_test.fixtures.mentions
import data.warden_test.fixtures.verdict

arm_input(tool, op, env) := object.union(object.remove(http_input, ["capability"]), {
	"agent": {"env": env},
	"tool": {"name": tool, "effect": "mutating", "supports_dry_run": true},
	"capability": {"kind": "arm", "operation": op, "subscription": "sub-1", "resource_group": "web-rg", "name": null},
})

test_azure_tools_may_deploy_and_other_tools_may_not_call_arm if {
	verdict(data.warden.capability) == "allow" with input as arm_input("azure-deploy", "deploy", "staging")
	d := data.warden.capability with input as arm_input("http-action", "list-resource-groups", "staging")
	verdict(d) == "deny"
	mentions(d.deny, "only tools named `azure*`")
}

test_deleting_a_resource_group_in_prod_needs_break_glass if {
	d := data.warden.capability with input as arm_input("azure-deploy", "delete-resource-group", "prod")
	verdict(d) == "deny"
	mentions(d.deny, "break-glass ticket")
	glass := object.union(arm_input("azure-deploy", "delete-resource-group", "prod"), {"task": {"break_glass": "INC-4711"}})
	verdict(data.warden.capability) == "allow" with input as glass
	verdict(data.warden.capability) == "allow" with input as arm_input("azure-deploy", "delete-resource-group", "staging")
}
