# Azure resources in call arguments.
#
# A tool that creates Azure resources lists them in its arguments as
# `resources: [{type, name, location, sku}]` (or ARM's own shape,
# `properties.hardwareProfile.vmSize`), or passes an ARM template as
# `template: {resources: [...]}`; an estimate may come as
# `estimated_monthly_cost_usd`. Everything here is a function of the
# arguments, so call and plan share it.
package warden.lib.azure

import data.warden.fn

settings := data.warden.lib.azure_settings

allowed_regions_text := concat(", ", sort(object.get(settings, "allowed_regions", [])))

allowed_skus_text := concat(", ", sort(object.get(settings, "allowed_vm_skus", [])))

allowed_regions := {lower(r) | some r in object.get(settings, "allowed_regions", [])}

allowed_vm_skus := {lower(s) | some s in object.get(settings, "allowed_vm_skus", [])}

ceiling := object.get(settings, "monthly_cost_ceiling_usd", 0)

cost_ceiling := {"monthly_usd": ceiling, "currency": "USD"}

vm_types := {"microsoft.compute/virtualmachines", "microsoft.compute/virtualmachinescalesets"}

resources(args) := array.concat(
	fn.list(object.get(fn.object_or_empty(args), "resources", [])),
	fn.list(object.get(fn.object_or_empty(object.get(fn.object_or_empty(args), "template", {})), "resources", [])),
)

touches(tool_name, _) if startswith(tool_name, "azure")

touches(_, args) if count(resources(args)) > 0

name_of(r) := object.get(r, "name", "(unnamed)")

# Written as set unions, not an `else` chain: both engines agree on these.
vm_sizes(r) := {s | s := r.properties.hardwareProfile.vmSize} | {s |
	lower(object.get(r, "type", "")) in vm_types
	s := r.sku
	is_string(s)
} | {s |
	lower(object.get(r, "type", "")) in vm_types
	s := r.sku.name
}

violations(args) := region_violations(args) | sku_violations(args) | cost_violations(args)

region_violations(args) := {msg |
	some r in resources(args)
	loc := r.location
	is_string(loc)
	not startswith(loc, "[")
	not lower(loc) in allowed_regions
	msg := sprintf("Azure resource `%s` would be created in region `%s`, which is not an allowed region (%s).", [name_of(r), loc, allowed_regions_text])
} | {msg |
	some r in resources(args)
	loc := r.location
	is_string(loc)
	startswith(loc, "[")
	msg := sprintf("Azure resource `%s` takes its region from the template expression %s; write the region out so the policy can check it.", [name_of(r), loc])
}

sku_violations(args) := {msg |
	some r in resources(args)
	some size in vm_sizes(r)
	not lower(size) in allowed_vm_skus
	msg := sprintf("Azure VM `%s` asks for size `%s`, which is not an allowed VM size (%s).", [name_of(r), size, allowed_skus_text])
}

cost_violations(args) := {msg |
	estimate := args.estimated_monthly_cost_usd
	is_number(estimate)
	estimate > ceiling
	msg := sprintf("The estimated cost of %v USD a month is over the ceiling of %v USD a month.", [estimate, ceiling])
}
