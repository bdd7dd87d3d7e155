package warden_test.azure

import data.warden_test.fixtures.call_input
import data.warden_test.fixtures.mentions
import data.warden_test.fixtures.verdict

deploy(args) := object.union(call_input, {
	"agent": {"env": "staging"},
	"tool": {"name": "azure-deploy", "effect": "mutating"},
	"call": {"args": args},
})

vm(location, size) := {
	"type": "Microsoft.Compute/virtualMachines",
	"name": "vm-web-1",
	"location": location,
	"sku": size,
}

test_an_allowed_region_and_size_pass_with_a_cost_ceiling_obligation if {
	d := data.warden.call with input as deploy({"resources": [vm("westeurope", "Standard_B2s")]})
	verdict(d) == "allow"
	d.obligations.cost_ceiling.monthly_usd == 1000
}

test_a_region_outside_the_allowlist_is_denied if {
	d := data.warden.call with input as deploy({"resources": [vm("eastus", "Standard_B2s")]})
	verdict(d) == "deny"
	mentions(d.deny, "region `eastus`")
}

test_a_vm_size_outside_the_allowlist_is_denied if {
	d := data.warden.call with input as deploy({"resources": [vm("westeurope", "Standard_M416ms_v2")]})
	verdict(d) == "deny"
	mentions(d.deny, "size `Standard_M416ms_v2`")
}

test_arm_template_vm_sizes_are_checked_too if {
	r := {
		"type": "Microsoft.Compute/virtualMachines",
		"name": "vm-db",
		"location": "westeurope",
		"properties": {"hardwareProfile": {"vmSize": "Standard_NC24"}},
	}
	d := data.warden.call with input as deploy({"template": {"resources": [r]}})
	verdict(d) == "deny"
	mentions(d.deny, "Standard_NC24")
}

test_a_region_taken_from_a_template_expression_is_denied if {
	d := data.warden.call with input as deploy({"resources": [vm("[resourceGroup().location]", "Standard_B2s")]})
	verdict(d) == "deny"
	mentions(d.deny, "template expression")
}

test_an_estimate_over_the_ceiling_is_denied if {
	d := data.warden.call with input as deploy({"resources": [vm("westeurope", "Standard_B2s")], "estimated_monthly_cost_usd": 1500})
	verdict(d) == "deny"
	mentions(d.deny, "over the ceiling")
}

test_allowlists_come_from_data if {
	d := data.warden.call with input as deploy({"resources": [vm("eastus", "Standard_B2s")]})
		with data.warden.config.azure.allowed_regions as ["eastus"]
	verdict(d) == "allow"
}

test_non_azure_calls_carry_no_obligation if {
	d := data.warden.call with input as object.union(call_input, {"agent": {"env": "staging"}})
	d.obligations == {}
}
