#![allow(clippy::print_stdout, clippy::unwrap_used)]
use regorus::languages::rego::compiler::Compiler;
use regorus::rvm::RegoVM;
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
    let data =
        regorus::Value::from_json_str(&fs_err::read_to_string(format!("{dir}/data.json")).unwrap())
            .unwrap();
    engine.add_data(data.clone()).unwrap();
    let input = r#"{"agent":{"name":"edge-01","env":"prod"},"principal":{"id":"alice","roles":["sre"]},"task":{"id":"t-1","goal":"","source":"cli"},"tool":{"name":"http-probe","version":"0.1.0","effect":"read-only","supports_dry_run":false,"declared_hosts":["api.example.com"],"declares_kv":false},"call":{"args":{"url":"x"},"step":"s1","dry_run":false},"capability":{"kind":"http","method":"GET","scheme":"https","host":"api.example.com","port":443,"path":"/","resolved":["93.184.216.34"],"addresses":["93.184.216.34"]},"history":{"calls_in_task":0,"mutations_last_hour":2},"now":"2026-11-27T00:00:00Z"}"#;
    let input = regorus::Value::from_json_str(input).unwrap();
    let entries: Vec<String> = std::env::args().skip(2).collect();
    let t = Instant::now();
    let rule: regorus::Rc<str> = entries[0].as_str().into();
    let compiled = engine.compile_with_entrypoint(&rule).unwrap();
    let refs: Vec<&str> = entries.iter().map(|s| s.as_str()).collect();
    let program = match Compiler::compile_from_policy(&compiled, &refs) {
        Ok(p) => p,
        Err(e) => {
            println!("compile error: {e:#}");
            return;
        }
    };
    println!(
        "compiled in {:?}, {} instructions",
        t.elapsed(),
        program.instructions.len()
    );
    let mut vm = RegoVM::new();
    vm.load_program(program.clone());
    let data2 = data.clone();
    vm.set_data(data).unwrap();
    vm.set_max_instructions(1_000_000);
    {
        let n = 3000;
        let t = Instant::now();
        for _ in 0..n {
            let mut vm2 = RegoVM::new();
            vm2.load_program(program.clone());
            vm2.set_data(data2.clone()).unwrap();
            vm2.set_input(input.clone());
            std::hint::black_box(vm2.execute_entry_point_by_name(&entries[0]).unwrap());
        }
        println!(
            "fresh vm per call {}: {:.2}us",
            entries[0],
            t.elapsed().as_secs_f64() * 1e6 / n as f64
        );
    }
    for name in &entries {
        let n = 3000;
        let t = Instant::now();
        let mut v = regorus::Value::Undefined;
        for _ in 0..n {
            vm.set_input(input.clone());
            v = match vm.execute_entry_point_by_name(name) {
                Ok(v) => v,
                Err(e) => {
                    println!("err {e}");
                    return;
                }
            };
        }
        println!(
            "{name}: {:.2}us -> {}",
            t.elapsed().as_secs_f64() * 1e6 / n as f64,
            v
        );
    }
}
