//! One test per hostile or probing guest; `foreach_guest!` fails the build
//! when a guest in tests/test-plugins has no test here.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use test_plugins_artifacts as guests;
use warden_sandbox::{InstanceAllocation, SandboxError};
use warden_types::{CapabilityRequest, CapabilityUse, GateDecision};

use crate::support::*;

macro_rules! assert_test_exists {
    ($name:ident) => {
        #[allow(unused_imports)]
        use self::$name as _;
    };
}
test_plugins_artifacts::foreach_guest!(assert_test_exists);

#[tokio::test(flavor = "multi_thread")]
async fn trivial() {
    let sandbox = sandbox();
    let plugin = load(&sandbox, guests::TRIVIAL);
    assert_eq!(plugin.manifest().name, "trivial");
    let out = plugin
        .invoke(&ctx(), &json!({"text": "hi"}), deny_all())
        .await
        .unwrap();
    assert_eq!(out.output, json!({"result": "hi"}));
    // A schema violation is refused before the guest runs.
    let err = plugin
        .invoke(&ctx(), &json!({"text": 42}), deny_all())
        .await
        .unwrap_err();
    match err {
        SandboxError::InvalidInput { plugin, errors } => {
            assert_eq!(plugin, "trivial");
            assert!(errors.iter().any(|e| e.contains("/text")), "{errors:?}");
        }
        other => panic!("expected InvalidInput, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn loop_forever() {
    let deadline = Duration::from_millis(500);
    let sandbox = sandbox_with(|c| {
        c.timeout(deadline);
    });
    let plugin = load(&sandbox, guests::LOOP_FOREVER);
    let started = Instant::now();
    let err = plugin
        .invoke(&ctx(), &json!({}), deny_all())
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(err, SandboxError::Timeout { .. }), "{err}");
    assert!(elapsed < deadline * 2, "stopped after {elapsed:?}");
    assert_still_serves(&sandbox).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_bomb() {
    let sandbox = sandbox_with(|c| {
        c.memory_limit(64 << 20);
    });
    let plugin = load(&sandbox, guests::MEMORY_BOMB);
    let err = plugin
        .invoke(&ctx(), &json!({}), deny_all())
        .await
        .unwrap_err();
    assert!(
        matches!(err, SandboxError::MemoryLimit { limit, .. } if limit == 64 << 20),
        "{err}"
    );
    assert_still_serves(&sandbox).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn huge_output() {
    // Room to build 64 MiB of JSON, so the output cap is what stops it.
    let sandbox = sandbox_with(|c| {
        c.memory_limit(512 << 20);
    });
    let plugin = load(&sandbox, guests::HUGE_OUTPUT);
    let err = plugin
        .invoke(&ctx(), &json!({}), deny_all())
        .await
        .unwrap_err();
    match err {
        SandboxError::OutputTooLarge { size, limit, .. } => {
            assert!(size >= 64 << 20);
            assert_eq!(limit, 4 << 20);
        }
        other => panic!("expected OutputTooLarge, got {other}"),
    }
    assert_still_serves(&sandbox).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn trap_panic() {
    let sandbox = sandbox();
    let plugin = load(&sandbox, guests::TRAP_PANIC);
    let err = plugin
        .invoke(&ctx(), &json!({"text": "disk on fire"}), deny_all())
        .await
        .unwrap_err();
    match err {
        SandboxError::Trapped { message, .. } => {
            assert!(
                message.contains("the guest gave up: disk on fire"),
                "{message}"
            );
        }
        other => panic!("expected Trapped, got {other}"),
    }
    assert_still_serves(&sandbox).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn read_file() {
    let sandbox = sandbox();
    let plugin = load(&sandbox, guests::READ_FILE);
    let out = plugin.invoke(&ctx(), &json!({}), deny_all()).await.unwrap();
    let text = out.output["result"].as_str().unwrap().to_string();
    assert!(!text.contains("read /"), "a file was readable:\n{text}");
    assert!(
        !text.contains("listed /"),
        "a directory was listable:\n{text}"
    );
    assert_eq!(text.lines().count(), 6, "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn read_env() {
    // SAFETY-free: the host's environment has variables; the guest must see none.
    assert!(std::env::vars().count() > 0);
    let sandbox = sandbox();
    let plugin = load(&sandbox, guests::READ_ENV);
    let out = plugin.invoke(&ctx(), &json!({}), deny_all()).await.unwrap();
    assert_eq!(out.output["result"], "vars=0 home=None args=0");
}

#[tokio::test(flavor = "multi_thread")]
async fn open_socket() {
    let server = hello_server();
    let sandbox = sandbox();
    let plugin = load(&sandbox, guests::OPEN_SOCKET);
    let out = plugin
        .invoke(
            &ctx(),
            &json!({"text": format!("127.0.0.1:{}", server.port())}),
            allow_all(),
        )
        .await
        .unwrap();
    let text = out.output["result"].as_str().unwrap();
    assert!(text.starts_with("refused"), "{text}");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(server.connections(), 0, "the guest opened a connection");
}

/// A request body well past what the host buffers (1.5 MiB) streams to
/// the server whole and in order, and the guest reads the answer.
#[tokio::test(flavor = "multi_thread")]
async fn http_post() {
    let sandbox = sandbox();
    let plugin = load(&sandbox, guests::HTTP_POST);
    let server = Responder::start(|seen| Response::text(200, format!("got {}", seen.body.len())));
    let size = 3 << 19;
    let url = format!("http://localhost:{}/upload", server.port());
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        plugin.invoke(&ctx(), &json!({"url": url, "bytes": size}), allow_all()),
    )
    .await
    .expect("a large request body hung")
    .unwrap();
    assert_eq!(out.output["result"], format!("200 got {size}"));
    let seen = server.requests();
    assert_eq!(seen.len(), 1);
    let expected: String = (0..size).map(|i| (b'a' + (i % 26) as u8) as char).collect();
    assert!(seen[0].body == expected, "the body arrived changed");
}

#[tokio::test(flavor = "multi_thread")]
async fn http_fetch() {
    let sandbox = sandbox();
    let plugin = load(&sandbox, guests::HTTP_FETCH);

    // Declared host, gate allows: the request goes through.
    let server = hello_server();
    let url = format!("http://localhost:{}/health", server.port());
    let out = plugin
        .invoke(&ctx(), &json!({"url": url}), allow_all())
        .await
        .unwrap();
    assert_eq!(out.output["result"], "200 hello");
    assert_eq!(server.connections(), 1);

    // Undeclared host: denied without asking the gate, no connection made.
    let asked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = asked.clone();
    let counting_gate = Arc::new(move |_: &CapabilityRequest| {
        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        GateDecision::Allow
    });
    let url = format!("http://127.0.0.1:{}/health", server.port());
    let err = plugin
        .invoke(&ctx(), &json!({"url": url}), counting_gate)
        .await
        .unwrap_err();
    assert!(matches!(err, SandboxError::Tool { .. }), "{err}");
    assert!(err.to_string().contains("denied"), "{err}");
    assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 0);

    // Declared host, gate allows the lookup and denies the request: the
    // guest gets an error, no connection.
    let seen = Arc::new(std::sync::Mutex::new(None));
    let record = seen.clone();
    let gate = Arc::new(move |r: &CapabilityRequest| {
        if matches!(r.capability, CapabilityUse::HttpLookup(_)) {
            return GateDecision::Allow;
        }
        *record.lock().unwrap() = Some(r.capability.clone());
        GateDecision::deny("metadata endpoints are off limits")
    });
    let url = format!("http://localhost:{}/latest/meta-data", server.port());
    let err = plugin
        .invoke(&ctx(), &json!({"url": url}), gate)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("denied"), "{err}");
    match seen.lock().unwrap().clone() {
        Some(CapabilityUse::Http(info)) => {
            assert_eq!(info.host, "localhost");
            assert_eq!(info.method, "GET");
            assert_eq!(info.path, "/latest/meta-data");
            assert!(
                !info.resolved.is_empty(),
                "the gate saw no resolved address"
            );
            assert!(info.resolved.iter().all(|ip| ip.is_loopback()));
        }
        other => panic!("gate saw {other:?}"),
    }
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        server.connections(),
        1,
        "a denied request reached the server"
    );
    assert_still_serves(&sandbox).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kv_counter() {
    let sandbox = sandbox();
    let plugin = load(&sandbox, guests::KV_COUNTER);
    for expected in ["1", "2"] {
        let out = plugin
            .invoke(&ctx(), &json!({}), allow_all())
            .await
            .unwrap();
        assert_eq!(out.output["result"], expected);
    }
    // A dry run reads but does not write.
    let mut dry = ctx();
    dry.dry_run = true;
    let out = plugin.invoke(&dry, &json!({}), allow_all()).await.unwrap();
    assert_eq!(out.output["result"], "3");
    let out = plugin
        .invoke(&ctx(), &json!({}), allow_all())
        .await
        .unwrap();
    assert_eq!(out.output["result"], "3");
    // Writes denied by the gate reach the guest as an error.
    let no_writes = Arc::new(|r: &CapabilityRequest| match r.capability {
        CapabilityUse::KvWrite { .. } => GateDecision::deny("read-only maintenance window"),
        _ => GateDecision::Allow,
    });
    let err = plugin
        .invoke(&ctx(), &json!({}), no_writes)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("read-only maintenance window"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn kv_undeclared() {
    let sandbox = sandbox();
    let plugin = load(&sandbox, guests::KV_UNDECLARED);
    let out = plugin
        .invoke(&ctx(), &json!({}), allow_all())
        .await
        .unwrap();
    let text = out.output["result"].as_str().unwrap();
    assert!(
        text.contains("did not declare the key-value capability"),
        "{text}"
    );
    assert_eq!(out.denials.len(), 1);
    assert!(out.denials[0].undeclared);
}

#[tokio::test(flavor = "multi_thread")]
async fn static_counter() {
    // One instance slot, so under pooling every call reuses the slot (and
    // the resident pages) the call before it used.
    for allocation in [InstanceAllocation::Pooling, InstanceAllocation::OnDemand] {
        let sandbox = sandbox_with(|c| {
            c.max_instances(1).instance_allocation(allocation);
        });
        let plugin = load(&sandbox, guests::STATIC_COUNTER);
        for _ in 0..3 {
            let out = plugin.invoke(&ctx(), &json!({}), deny_all()).await.unwrap();
            assert_eq!(
                out.output["result"], "1",
                "{allocation:?}: state leaked between calls"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn leak_text() {
    // Without secrets the guest's text comes back as it was; with them,
    // see secrets::a_secret_a_guest_learnt_is_scrubbed_from_its_output_errors_logs_and_traps.
    let sandbox = sandbox();
    let plugin = load(&sandbox, guests::LEAK_TEXT);
    let text = "https://hooks.example.com/services/T0/B0/tok3n-value";
    let out = plugin
        .invoke(&ctx(), &json!({ "text": text }), deny_all())
        .await
        .unwrap();
    assert_eq!(out.output["result"], text);
    let err = plugin
        .invoke(&ctx(), &json!({ "text": text, "bytes": 1 }), deny_all())
        .await
        .unwrap_err();
    assert!(
        err.to_string().ends_with(&format!("gave up on {text}")),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn abi_v1() {
    let sandbox = sandbox();
    let err = sandbox.load_file(guests::ABI_V1).unwrap_err();
    match &err {
        SandboxError::IncompatibleAbi { origin, found, .. } => {
            assert!(origin.ends_with("abi_v1.wasm"), "{origin}");
            assert_eq!(found, "warden:plugin/handler@1.0.0");
        }
        other => panic!("expected IncompatibleAbi, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn not_a_plugin() {
    let sandbox = sandbox();
    let err = sandbox.load_file(guests::NOT_A_PLUGIN).unwrap_err();
    assert!(matches!(err, SandboxError::NotAPlugin { .. }), "{err}");
    assert!(err.to_string().contains("not_a_plugin.wasm"), "{err}");
    assert_still_serves(&sandbox).await;
}
