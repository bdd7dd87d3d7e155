//! The shipped plan policy against its reference: `policies/plan.rego` was
//! rewritten for speed, and must decide every plan exactly as the version
//! kept in `fixtures/plan_reference.rego` does (verdict, every reason,
//! approvals, obligations), on generated plans that cover each rule's
//! branches and malformed shapes, in two bundle settings. Over a third of
//! the plans are shaped as the host writes them (the policy's fast pass),
//! some of those with one malformed step (its careful pass).

use serde_json::{Value, json};
use warden_policy::{Entry, PolicyEngine};

use crate::policies_dir;

/// A small deterministic generator (xorshift64*), so a failure reproduces.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    fn chance(&mut self, in_ten: usize) -> bool {
        self.below(10) < in_ten
    }
}

fn resource(g: &mut Gen) -> Value {
    let mut r = serde_json::Map::new();
    if g.chance(8) {
        r.insert("name".into(), json!(g.pick(&["vm-1", "web", "db"])));
    }
    if g.chance(8) {
        let locations = [
            json!("westeurope"),
            json!("WestEurope"),
            json!("eastus"),
            json!("[resourceGroup().location]"),
            json!(7),
        ];
        r.insert("location".into(), g.pick(&locations).clone());
    }
    if g.chance(6) {
        r.insert(
            "type".into(),
            json!(g.pick(&[
                "Microsoft.Compute/virtualMachines",
                "microsoft.compute/virtualmachinescalesets",
                "Microsoft.Storage/storageAccounts",
            ])),
        );
    }
    match g.below(5) {
        0 => {
            r.insert(
                "sku".into(),
                json!(g.pick(&["Standard_B1s", "Standard_M128"])),
            );
        }
        1 => {
            r.insert(
                "sku".into(),
                json!({"name": g.pick(&["standard_b2s", "Standard_E64s_v5"])}),
            );
        }
        2 => {
            r.insert(
                "properties".into(),
                json!({"hardwareProfile": {"vmSize": g.pick(&["Standard_B2ms", "Standard_NV6"])}}),
            );
        }
        _ => {}
    }
    Value::Object(r)
}

fn args(g: &mut Gen) -> Value {
    match g.below(7) {
        0 => json!("not an object"),
        1 => json!({"text": "{{ task.id }}"}),
        2 => json!({"resources": (0..g.below(3)).map(|_| resource(g)).collect::<Vec<_>>()}),
        3 => {
            json!({"template": {"resources": (0..g.below(3)).map(|_| resource(g)).collect::<Vec<_>>()}})
        }
        4 => {
            json!({"resources": "oops", "estimated_monthly_cost_usd": g.pick(&[json!(10), json!(99999), json!("lots")])})
        }
        5 => json!({"estimated_monthly_cost_usd": g.pick(&[json!(1), json!(1e9)])}),
        _ => json!({}),
    }
}

fn step(g: &mut Gen, i: usize) -> Value {
    let mut s = serde_json::Map::new();
    match g.below(10) {
        0 => {}
        1 => {
            s.insert("id".into(), json!(i));
        }
        _ => {
            s.insert("id".into(), json!(format!("s{i}")));
        }
    }
    let tool = match g.below(12) {
        0 => None,
        1 => Some(json!("azure-deploy")),
        _ => {
            let mut t = serde_json::Map::new();
            if g.chance(9) {
                t.insert(
                    "name".into(),
                    g.pick(&[
                        json!("http-probe"),
                        json!("azure-deploy"),
                        json!("restart"),
                        json!("azure"),
                        json!(5),
                    ])
                    .clone(),
                );
            }
            if g.chance(9) {
                t.insert(
                    "effect".into(),
                    g.pick(&[
                        json!("read-only"),
                        json!("mutating"),
                        json!("destructive"),
                        json!("explosive"),
                        json!(3),
                        json!({"kind": "mutating"}),
                    ])
                    .clone(),
                );
            }
            if g.chance(6) {
                t.insert("supports_dry_run".into(), json!(g.chance(5)));
            }
            Some(Value::Object(t))
        }
    };
    if let Some(tool) = tool {
        s.insert("tool".into(), tool);
    }
    if g.chance(7) {
        s.insert("args".into(), args(g));
    }
    match g.below(4) {
        0 => {}
        1 => {
            s.insert("dry_run".into(), json!("true"));
        }
        _ => {
            s.insert("dry_run".into(), json!(g.chance(5)));
        }
    }
    Value::Object(s)
}

/// A step as the host writes it (`PlanStep`): every field there, a known
/// effect, boolean flags. The shipped policy reads these on its fast pass.
fn host_step(g: &mut Gen, i: usize) -> Value {
    json!({
        "id": format!("s{i}"),
        "tool": {
            "name": g.pick(&["http-probe", "azure-deploy", "restart", "azure", "wipe-disk"]),
            "version": "0.1.0",
            "effect": g.pick(&["read-only", "mutating", "destructive"]),
            "supports_dry_run": g.chance(5),
            "declared_hosts": [],
            "declares_kv": false,
        },
        "args": args(g),
        "dry_run": g.chance(5),
    })
}

fn plan_input(g: &mut Gen) -> Value {
    let steps = match g.below(20) {
        // Host-shaped plans, some with one odd step among them.
        3..=9 => {
            let n = 1 + g.below(8);
            let odd = g.chance(3).then(|| g.below(n));
            json!(
                (0..n)
                    .map(|i| if Some(i) == odd {
                        step(g, i)
                    } else {
                        host_step(g, i)
                    })
                    .collect::<Vec<_>>()
            )
        }
        0 => json!("not a list"),
        1 => json!((0..51).map(|i| step(g, i)).collect::<Vec<_>>()),
        2 => json!([]),
        _ => json!((0..1 + g.below(6)).map(|i| step(g, i)).collect::<Vec<_>>()),
    };
    let mut history = serde_json::Map::new();
    if g.chance(8) {
        history.insert(
            "mutations_last_hour".into(),
            g.pick(&[
                json!(0),
                json!(3),
                json!(18),
                json!(19),
                json!(20),
                json!("x"),
            ])
            .clone(),
        );
    }
    if g.chance(6) {
        history.insert(
            "mutations_last_hour_principal".into(),
            g.pick(&[json!(0), json!(2), json!(3), json!(null)]).clone(),
        );
    }
    let mut input = json!({
        "agent": {"name": g.pick(&[json!("edge-01"), json!(3)]), "env": g.pick(&["dev", "staging", "prod", "", "Prod"])},
        "principal": {"id": g.pick(&[json!("alice"), json!(null)]), "roles": ["sre"]},
        "task": {"id": "t-1", "goal": "g", "source": "cli"},
        "history": history,
        "plan": {"steps": steps},
    });
    match g.below(4) {
        0 => input["task"]["break_glass"] = json!("CHG-1"),
        1 => input["task"]["break_glass"] = json!("  "),
        _ => {}
    }
    if g.below(30) == 0 {
        input.as_object_mut().map(|o| o.remove("plan"));
    }
    input
}

/// The shipped bundle and the same bundle with the reference plan policy,
/// each with `data` merged over the shipped data.json.
fn pair(extra_config: Value) -> (tempfile::TempDir, tempfile::TempDir) {
    let make = |plan: Option<&str>| {
        let dir = tempfile::tempdir().unwrap();
        for entry in fs_err::read_dir(policies_dir()).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                fs_err::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
            }
        }
        if let Some(text) = plan {
            fs_err::write(dir.path().join("plan.rego"), text).unwrap();
        }
        let data_path = dir.path().join("data.json");
        let mut data: Value =
            serde_json::from_str(&fs_err::read_to_string(&data_path).unwrap()).unwrap();
        for (k, v) in extra_config.as_object().unwrap() {
            data["warden"]["config"][k] = v.clone();
        }
        fs_err::write(&data_path, data.to_string()).unwrap();
        dir
    };
    let reference = include_str!("fixtures/plan_reference.rego");
    (make(None), make(Some(reference)))
}

fn compare(extra_config: Value, seed: u64, n: usize) {
    let (shipped, reference) = pair(extra_config);
    // A generous time budget: a loaded test machine must not turn a slow
    // evaluation into a difference.
    let load = |dir: &std::path::Path| {
        PolicyEngine::builder(dir)
            .with_timeout(std::time::Duration::from_secs(30))
            .load()
            .unwrap()
    };
    let shipped = load(shipped.path());
    let reference = load(reference.path());
    let mut g = Gen(seed);
    let mut verdicts = std::collections::BTreeMap::new();
    for i in 0..n {
        let input = plan_input(&mut g);
        let a = shipped.decide_json(Entry::Plan, &input).decision;
        let b = reference.decide_json(Entry::Plan, &input).decision;
        assert_eq!(
            a,
            b,
            "plan {i} (seed {seed}) decided differently:\n{}",
            serde_json::to_string_pretty(&input).unwrap()
        );
        *verdicts.entry(format!("{:?}", a.verdict)).or_insert(0) += 1;
    }
    // The generator reaches every verdict, so the comparison means something.
    assert!(verdicts.len() >= 3, "only {verdicts:?}");
}

#[test]
fn the_shipped_plan_policy_decides_like_the_reference_on_generated_plans() {
    compare(json!({}), 0x5eed_0001, 1500);
}

#[test]
fn the_shipped_plan_policy_decides_like_the_reference_with_a_per_principal_limit() {
    compare(
        json!({"max_mutations_per_hour_per_principal": 3, "approval_envs": ["staging", "prod"]}),
        0x5eed_0002,
        1500,
    );
}

/// The one intended difference: the reference skipped a step that is not an
/// object (its per-rule functions failed on it, so no rule saw the step);
/// the shipped policy reads it as a step with no id, tool or effect, and
/// denies it.
#[test]
fn a_step_that_is_not_an_object_is_denied_not_skipped() {
    let engine = PolicyEngine::load(policies_dir()).unwrap();
    let input = json!({
        "agent": {"name": "edge-01", "env": "prod"},
        "principal": {"id": "alice"},
        "task": {"id": "t-1"},
        "history": {"mutations_last_hour": 0},
        "plan": {"steps": [4]},
    });
    let d = engine.decide_json(Entry::Plan, &input).decision;
    assert_eq!(d.verdict, warden_types::Verdict::Deny, "{d:?}");
    assert!(
        d.reasons
            .iter()
            .any(|r| r.contains("Step (no id) uses tool `(unnamed)` with the effect `(none)`")),
        "{d:?}"
    );
}

/// Plans the host builds (`PolicyInput::plan`) are read on the fast pass:
/// a copy of the bundle that denies whenever the careful pass runs allows
/// them, on the compiled engine the host decides with.
#[test]
fn plans_the_host_builds_take_the_fast_pass() {
    use warden_policy::{PlanStep, PolicyContext, PolicyInput, ToolInfo};
    use warden_types::Effect;

    let (dir, _) = pair(json!({}));
    let plan = dir.path().join("plan.rego");
    let text = fs_err::read_to_string(&plan).unwrap();
    fs_err::write(
        &plan,
        format!(
            "{text}\ndeny contains \"the careful pass ran\" if not count(fast_rows) == count(steps)\n"
        ),
    )
    .unwrap();
    let engine = PolicyEngine::load(dir.path()).unwrap();
    let mut ctx = PolicyContext::default();
    ctx.agent.env = "dev".into();
    let mut g = Gen(0x5eed_0003);
    for effect in [Effect::ReadOnly, Effect::Mutating, Effect::Destructive] {
        let steps = (0..5)
            .map(|i| PlanStep {
                id: format!("s{i}"),
                tool: ToolInfo {
                    name: "restart".into(),
                    version: "0.1.0".into(),
                    effect,
                    supports_dry_run: g.chance(5),
                    declared_hosts: vec!["api.example.com".into()],
                    declares_kv: g.chance(5),
                },
                args: args(&mut g),
                dry_run: g.chance(5),
            })
            .collect();
        let d = engine
            .decide(Entry::Plan, &PolicyInput::plan(&ctx, steps))
            .decision;
        assert!(
            !d.reasons.iter().any(|r| r.contains("careful pass")),
            "{effect:?}: {d:?}"
        );
    }
    // The marker works: a step without an id is read carefully.
    let odd = json!({
        "agent": {"name": "edge-01", "env": "dev"},
        "history": {"mutations_last_hour": 0},
        "plan": {"steps": [{"tool": {"name": "restart", "effect": "read-only", "supports_dry_run": false}, "args": {}, "dry_run": false}]},
    });
    let d = engine.decide_json(Entry::Plan, &odd).decision;
    assert!(
        d.reasons.iter().any(|r| r.contains("careful pass")),
        "{d:?}"
    );
}
