#![allow(clippy::print_stdout, clippy::unwrap_used)]
use std::time::Instant;
fn main() {
    let dir = std::env::args().nth(1).unwrap();
    let mut engine = regorus::Engine::new();
    for e in fs_err::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let n = p.to_string_lossy().to_string();
        if n.ends_with(".rego") && !n.ends_with("_test.rego") {
            engine
                .add_policy(n, fs_err::read_to_string(&p).unwrap())
                .unwrap();
        }
    }
    engine
        .add_data_json(&fs_err::read_to_string(format!("{dir}/data.json")).unwrap())
        .unwrap();
    engine.eval_query("true".into(), false).unwrap();
    let input = r#"{"agent":{"name":"edge-01","env":"prod"},"principal":{"id":"alice","roles":["sre"]},"task":{"id":"t-1","goal":"","source":"cli"},"tool":{"name":"http-probe","version":"0.1.0","effect":"read-only","supports_dry_run":false,"declared_hosts":["api.example.com"],"declares_kv":false},"call":{"args":{"url":"x"},"step":"s1","dry_run":false},"capability":{"kind":"http","method":"GET","scheme":"https","host":"api.example.com","port":443,"path":"/","resolved":["93.184.216.34"],"addresses":["93.184.216.34"]},"history":{"calls_in_task":0,"mutations_last_hour":2},"now":"2026-11-27T00:00:00Z"}"#;
    let input = regorus::Value::from_json_str(input).unwrap();
    for rule in std::env::args().skip(2) {
        let n: usize = std::env::var("N")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(300);
        let t = Instant::now();
        let mut v = regorus::Value::Undefined;
        for _ in 0..n {
            let mut e = engine.clone();
            e.set_input(input.clone());
            v = e.eval_rule(rule.clone()).unwrap();
        }
        println!(
            "{rule}: {:.1}us  -> {}",
            t.elapsed().as_secs_f64() * 1e6 / n as f64,
            v.to_string().chars().take(80).collect::<String>()
        );
    }
}
