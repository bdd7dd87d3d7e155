# Fixtures shared by the tests (test-only: *_test.rego files are not loaded
# for decisions).
package warden_test.fixtures

call_input := {
	"agent": {"name": "edge-01", "env": "prod"},
	"principal": {"id": "alice", "roles": ["sre"]},
	"task": {"id": "t-1", "goal": "restart nginx on web-1", "source": "cli"},
	"tool": {
		"name": "restart-service",
		"version": "0.1.0",
		"effect": "mutating",
		"supports_dry_run": true,
		"declared_hosts": [],
		"declares_kv": false,
	},
	"call": {"args": {"unit": "nginx"}, "step": "s1", "dry_run": false},
	"history": {"calls_in_task": 0, "mutations_last_hour": 0},
	"now": "2026-11-27T00:00:00Z",
}

http_input := {
	"agent": {"name": "edge-01", "env": "staging"},
	"principal": {"id": "alice", "roles": ["sre"]},
	"task": {"id": "t-1", "goal": "probe the api", "source": "cli"},
	"tool": {
		"name": "http-probe",
		"version": "0.1.0",
		"effect": "read-only",
		"supports_dry_run": false,
		"declared_hosts": ["api.example.com", "*.svc.example.com", "127.0.0.1", "metadata.internal"],
		"declares_kv": false,
	},
	"call": {"args": null, "step": "s1", "dry_run": false},
	"capability": {
		"kind": "http",
		"method": "GET",
		"scheme": "https",
		"host": "api.example.com",
		"port": 443,
		"path": "/health",
		"resolved": ["93.184.216.34"],
		"addresses": ["93.184.216.34"],
	},
	"history": {"calls_in_task": 0, "mutations_last_hour": 0},
	"now": "2026-11-27T00:00:00Z",
}

plan_input := {
	"agent": {"name": "edge-01", "env": "prod"},
	"principal": {"id": "alice", "roles": ["sre"]},
	"task": {"id": "t-1", "goal": "free disk on web-1", "source": "alertmanager"},
	"plan": {"steps": [
		{"id": "s1", "tool": {"name": "disk-usage", "effect": "read-only"}, "args": {}},
		{"id": "s2", "tool": {"name": "rotate-logs", "effect": "mutating"}, "args": {}},
	]},
	"history": {"calls_in_task": 0, "mutations_last_hour": 0},
	"now": "2026-11-27T00:00:00Z",
}

# alice's own call in prod, approved by alice.
approve_input := object.union(call_input, {
	"approver": {"id": "alice", "roles": ["sre"]},
	"approval": {"reasons": ["Tool `restart-service` changes infrastructure in `prod`, so a human must approve this call."]},
})

# Host `host` resolving to `addrs`.
http_to(host, addrs) := object.union(http_input, {"capability": {"host": host, "resolved": addrs, "addresses": addrs}})

verdict(d) := "deny" if {
	count(d.deny) > 0
} else := "needs-approval" if {
	count(d.approval) > 0
} else := "allow" if {
	d.allow == true
} else := "deny"

mentions(reasons, fragment) if {
	some r in reasons
	contains(r, fragment)
}
