//! Server-side request forgery: names are judged before they reach the
//! resolver, every spelling of an address reaches the gate as one address,
//! and redirects are never followed.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use test_plugins_artifacts as guests;
use warden_sandbox::{SandboxError, ToolErrorKind};
use warden_types::{
    CapabilityGate, CapabilityRequest, CapabilityUse, GateDecision, HttpRequestInfo,
};

use crate::support::*;

type Seen = Arc<Mutex<Vec<CapabilityUse>>>;

/// A gate that records every request and answers with `decide`.
fn recording(
    decide: impl Fn(&CapabilityUse) -> GateDecision + Send + Sync + 'static,
) -> (Arc<dyn CapabilityGate>, Seen) {
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let gate = Arc::new(move |r: &CapabilityRequest| {
        record.lock().unwrap().push(r.capability.clone());
        decide(&r.capability)
    });
    (gate, seen)
}

/// What a policy does with names: refuse metadata and loopback names
/// before any lookup; allow everything else.
fn refuse_names(capability: &CapabilityUse) -> GateDecision {
    match capability {
        CapabilityUse::HttpLookup(info) => {
            GateDecision::deny(format!("`{}` is off limits by name", info.host))
        }
        _ => GateDecision::Allow,
    }
}

fn seen(seen: &Seen) -> Vec<CapabilityUse> {
    seen.lock().unwrap().clone()
}

fn http(capability: &CapabilityUse) -> &HttpRequestInfo {
    match capability {
        CapabilityUse::Http(info) => info,
        other => panic!("expected an HTTP request, got {other:?}"),
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn metadata_and_loopback_names_are_refused_before_any_lookup_or_connection() {
    let server = hello_server();
    let sandbox = sandbox();
    let fetch = load(&sandbox, guests::HTTP_FETCH);
    for name in [
        "metadata.google.internal",
        "metadata",
        "instance-data",
        "localhost",
        "localhost.",
        "api.localhost",
        "ip6-localhost",
    ] {
        let (gate, asked) = recording(refuse_names);
        let url = format!("http://{name}:{}/latest/meta-data/", server.port());
        let err = fetch
            .invoke(&ctx(), &json!({ "url": url }), gate)
            .await
            .unwrap_err();
        // Denied, not a DNS failure: the names that do not resolve here
        // would fail as `failed` had the resolver seen them first.
        match &err {
            SandboxError::Tool { kind, message, .. } => {
                assert_eq!(*kind, ToolErrorKind::Denied, "{name}: {message}");
                assert!(message.contains("off limits by name"), "{message}");
            }
            other => panic!("{name}: expected a tool error, got {other}"),
        }
        // The gate was asked once, by name, with no addresses: the
        // address check that follows a lookup never came.
        let asked = seen(&asked);
        assert_eq!(asked.len(), 1, "{name}: {asked:?}");
        match &asked[0] {
            CapabilityUse::HttpLookup(info) => {
                assert_eq!(info.host, name);
                assert!(info.resolved.is_empty(), "{info:?}");
                assert_eq!(info.path, "/latest/meta-data/");
            }
            other => panic!("{name}: the gate saw {other:?} first"),
        }
    }
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(server.connections(), 0, "a refused name reached the server");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_allowed_name_is_decided_again_with_its_addresses() {
    let server = hello_server();
    let sandbox = sandbox();
    let fetch = load(&sandbox, guests::HTTP_FETCH);
    let (gate, asked) = recording(|_| GateDecision::Allow);
    let url = format!("http://localhost:{}/health", server.port());
    let out = fetch
        .invoke(&ctx(), &json!({ "url": url }), gate)
        .await
        .unwrap();
    assert_eq!(out.output["result"], "200 hello");
    let asked = seen(&asked);
    assert_eq!(asked.len(), 2, "{asked:?}");
    assert!(
        matches!(&asked[0], CapabilityUse::HttpLookup(info) if info.resolved.is_empty()),
        "{asked:?}"
    );
    let info = http(&asked[1]);
    assert_eq!(info.host, "localhost");
    assert!(!info.resolved.is_empty());
    assert!(info.resolved.iter().all(IpAddr::is_loopback), "{info:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn ipv4_written_as_ipv6_or_a_bare_number_reaches_the_gate_as_ipv4() {
    let sandbox = sandbox();
    let fetch = load(&sandbox, guests::HTTP_FETCH);
    for host in ["[::a9fe:a9fe]", "[::ffff:a9fe:a9fe]", "2852039166"] {
        // What the default policy does with addresses, in a few lines.
        let (gate, asked) = recording(|c| match c {
            CapabilityUse::Http(info) if info.resolved.contains(&ip("169.254.169.254")) => {
                GateDecision::deny("169.254.169.254 is a cloud metadata endpoint")
            }
            _ => GateDecision::Allow,
        });
        let url = format!("http://{host}/latest/meta-data/");
        let err = fetch
            .invoke(&ctx(), &json!({ "url": url }), gate)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("cloud metadata endpoint"),
            "{host}: {err}"
        );
        // A literal needs no lookup: one decision, on the IPv4 address.
        let asked = seen(&asked);
        assert_eq!(asked.len(), 1, "{host}: {asked:?}");
        assert_eq!(http(&asked[0]).resolved, [ip("169.254.169.254")], "{host}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ipv4_compatible_loopback_literal_connects_to_ipv4_loopback() {
    let server = hello_server();
    let sandbox = sandbox();
    let fetch = load(&sandbox, guests::HTTP_FETCH);
    let (gate, asked) = recording(|_| GateDecision::Allow);
    let url = format!("http://[::7f00:1]:{}/health", server.port());
    let out = fetch
        .invoke(&ctx(), &json!({ "url": url }), gate)
        .await
        .unwrap();
    assert_eq!(out.output["result"], "200 hello");
    assert_eq!(server.connections(), 1);
    let asked = seen(&asked);
    assert_eq!(asked.len(), 1, "{asked:?}");
    let info = http(&asked[0]);
    assert_eq!(info.host, "::7f00:1");
    assert_eq!(info.resolved, [ip("127.0.0.1")]);
}

/// A loopback server that answers every request with a 302 to the
/// metadata endpoint.
fn redirector() -> Responder {
    Responder::start(|_| {
        Response::text(302, "moved")
            .with_header("location", "http://169.254.169.254/latest/meta-data/iam/")
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_to_the_metadata_address_is_not_followed() {
    let redirector = redirector();
    let sandbox = sandbox();
    let fetch = load(&sandbox, guests::HTTP_FETCH);
    let (gate, asked) = recording(|_| GateDecision::Allow);
    let url = format!("http://localhost:{}/", redirector.port());
    let out = fetch
        .invoke(&ctx(), &json!({ "url": url }), gate)
        .await
        .unwrap();
    // The guest gets the 302 itself; nothing went to the Location.
    assert_eq!(out.output["result"], "302 moved");
    assert_eq!((redirector.connections(), redirector.hits()), (1, 1));
    let asked = seen(&asked);
    assert_eq!(asked.len(), 2, "{asked:?}");
    for capability in &asked {
        let info = match capability {
            CapabilityUse::Http(info) | CapabilityUse::HttpLookup(info) => info,
            other => panic!("{other:?}"),
        };
        assert_eq!(info.host, "localhost");
        assert!(!info.resolved.contains(&ip("169.254.169.254")));
    }
}
