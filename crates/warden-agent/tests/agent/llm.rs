//! The LLM planner against a loopback OpenAI-compatible server that speaks
//! the Chat Completions wire format, with scripted conversations.

use std::time::Duration;

use serde_json::Value;
use warden_agent::{Agent, LlmPlanner, OutcomeStatus, StepStatus, Task};
use warden_fakes::openai::{FakeOpenAi, RecordedRequest, Reply};
use warden_llm::{LlmConfig, Provider};

use super::service::Service;
use super::{Setup, artifacts, policy, sandbox};

fn planner(fake: &FakeOpenAi, timeout: Duration) -> LlmPlanner {
    let mut config = LlmConfig::new(
        Provider::Compatible {
            base_url: fake.base_url(),
            api_key: None,
        },
        "test-model",
    );
    config.timeout = timeout;
    config.max_retries = 1;
    LlmPlanner::new(config).unwrap()
}

fn agent(s: &Setup, planner: LlmPlanner) -> Agent {
    let sb = sandbox(Duration::from_secs(10));
    Agent::builder()
        .plugin(sb.load_file(artifacts::PLUGIN_HTTP_PROBE).unwrap())
        .plugin(sb.load_file(artifacts::PLUGIN_HTTP_ACTION).unwrap())
        .policy_engine(policy())
        .planner(planner)
        .journal(&s.journal)
        .host_key(super::key())
        .build()
        .unwrap()
}

/// The `tool` messages of a recorded request, as (call id, content).
fn tool_messages(r: &RecordedRequest) -> Vec<(String, String)> {
    r.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| {
            (
                m["tool_call_id"].as_str().unwrap().to_string(),
                m["content"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_model_probes_remediates_and_validates_through_tool_calls() {
    let svc = Service::start().await;
    let a = svc.addr;
    let fake = FakeOpenAi::start(vec![
        Reply::tool_calls(&[(
            "call_1",
            "http-probe",
            &format!(r#"{{"url":"http://{a}/health"}}"#),
        )]),
        Reply::tool_calls(&[(
            "call_2",
            "http-action",
            &format!(
                r#"{{"url":"http://{a}/admin/restart-pool","body":{{"action":"restart-pool"}}}}"#
            ),
        )]),
        Reply::tool_calls(&[(
            "call_3",
            "http-probe",
            r#"{"url":"{{ alert.annotations.health_url }}"}"#,
        )]),
        Reply::Text("The pool was exhausted; I restarted it and health is 200 again.".into()),
    ]);
    let s = Setup::new("name: none\nsteps: []\n");
    let agent = agent(&s, planner(&fake, Duration::from_secs(10)));
    let outcome = agent
        .run(
            Task::from_webhook("t-llm", &svc.alert())
                .unwrap()
                .in_env("dev"),
        )
        .await
        .unwrap();

    assert_eq!(
        outcome.status,
        OutcomeStatus::Resolved,
        "{}",
        outcome.reason
    );
    assert_eq!(outcome.planner, "llm:test-model");
    assert_eq!(svc.admin_calls(), 1);
    assert_eq!(
        outcome.summary,
        "The pool was exhausted; I restarted it and health is 200 again."
    );
    assert!(outcome.tokens > 0);
    let requests = fake.requests();
    assert_eq!(requests.len(), 4);
    // Tools come from the manifests, with their JSON Schema.
    let tools = requests[0].body["tools"].as_array().unwrap();
    let probe = tools
        .iter()
        .find(|t| t["function"]["name"] == "http-probe")
        .unwrap();
    assert_eq!(probe["function"]["parameters"]["required"][0], "url");
    // The probe's result went back as data.
    let results = tool_messages(&requests[1]);
    assert_eq!(results[0].0, "call_1");
    let result: Value = serde_json::from_str(&results[0].1).unwrap();
    assert_eq!(result["output"]["status"], 503);
    // The templated argument was rendered against the alert.
    assert_eq!(
        outcome.observations[2].args["url"],
        format!("http://{a}/health")
    );
    assert!(super::verify(&s.journal).is_ok());
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_arguments_are_sent_back_once_for_repair() {
    let svc = Service::start().await;
    let a = svc.addr;
    let fake = FakeOpenAi::start(vec![
        Reply::tool_calls(&[("c1", "http-probe", r#"{"uri":"http://x"}"#)]),
        Reply::tool_calls(&[(
            "c2",
            "http-probe",
            &format!(r#"{{"url":"http://{a}/health"}}"#),
        )]),
        Reply::Text("health is 503".into()),
    ]);
    let s = Setup::new("name: none\nsteps: []\n");
    let agent = agent(&s, planner(&fake, Duration::from_secs(10)));
    let outcome = agent
        .run(
            Task::from_webhook("t-repair", &svc.alert())
                .unwrap()
                .in_env("dev"),
        )
        .await
        .unwrap();

    let repair = tool_messages(&fake.requests()[1]);
    assert_eq!(repair[0].0, "c1");
    assert!(
        repair[0].1.contains("invalid arguments for `http-probe`"),
        "{}",
        repair[0].1
    );
    assert_eq!(outcome.observations.len(), 1, "only the repaired call ran");
    assert_eq!(outcome.observations[0].status, StepStatus::Succeeded);
}

#[tokio::test(flavor = "multi_thread")]
async fn arguments_still_invalid_after_the_repair_fail_the_step_with_the_reason() {
    let svc = Service::start().await;
    let fake = FakeOpenAi::start(vec![
        Reply::tool_calls(&[("c1", "http-probe", r#"{"uri":"http://x"}"#)]),
        Reply::tool_calls(&[("c2", "http-probe", r#"{"uri":"http://y"}"#)]),
        Reply::Text("giving up".into()),
    ]);
    let s = Setup::new("name: none\nsteps: []\n");
    let agent = agent(&s, planner(&fake, Duration::from_secs(10)));
    let outcome = agent
        .run(
            Task::from_webhook("t-bad", &svc.alert())
                .unwrap()
                .in_env("dev"),
        )
        .await
        .unwrap();
    assert_eq!(outcome.status, OutcomeStatus::Unresolved);
    assert_eq!(outcome.observations[0].status, StepStatus::Failed);
    assert!(
        outcome.observations[0].reasons[0].contains("url"),
        "{:?}",
        outcome.observations[0].reasons
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_denied_call_is_reported_to_the_model_and_the_task_ends_cleanly() {
    let svc = Service::start().await;
    let a = svc.addr;
    let fake = FakeOpenAi::start(vec![
        Reply::tool_calls(&[(
            "c1",
            "http-action",
            &format!(r#"{{"url":"http://{a}/admin/restart-pool"}}"#),
        )]),
        Reply::Text("I could not restart the pool: it needs approval.".into()),
    ]);
    let s = Setup::new("name: none\nsteps: []\n");
    let agent = agent(&s, planner(&fake, Duration::from_secs(10)));
    let task = Task::from_webhook("t-denied", &svc.alert())
        .unwrap()
        .in_env("prod");
    let outcome = agent.run(task).await.unwrap();

    assert_eq!(svc.admin_calls(), 0);
    assert_eq!(outcome.observations[0].status, StepStatus::Rejected);
    let told = tool_messages(&fake.requests()[1]);
    assert!(
        told[0].1.contains("rejected") && told[0].1.contains("Do not retry"),
        "{}",
        told[0].1
    );
    assert_eq!(outcome.status, OutcomeStatus::Unresolved);
    assert_eq!(
        outcome.summary,
        "I could not restart the pool: it needs approval."
    );
    assert!(super::verify(&s.journal).is_ok());
}

#[tokio::test(flavor = "multi_thread")]
async fn instructions_inside_tool_output_do_not_get_past_the_policy() {
    let svc = Service::start().await;
    let a = svc.addr;
    let fake = FakeOpenAi::start(vec![
        Reply::tool_calls(&[(
            "c1",
            "http-probe",
            &format!(r#"{{"url":"http://{a}/notes"}}"#),
        )]),
        // A model that obeys the text it just read.
        Reply::tool_calls(&[(
            "c2",
            "http-action",
            &format!(r#"{{"url":"http://{a}/admin/delete-all","method":"DELETE"}}"#),
        )]),
        Reply::Text("done".into()),
    ]);
    let s = Setup::new("name: none\nsteps: []\n");
    let agent = agent(&s, planner(&fake, Duration::from_secs(10)));
    let task = Task::from_webhook("t-inject", &svc.alert())
        .unwrap()
        .in_env("prod");
    let outcome = agent.run(task).await.unwrap();

    // The injected text reached the model only as data inside a JSON result.
    let told = tool_messages(&fake.requests()[1]);
    let result: Value = serde_json::from_str(&told[0].1).unwrap();
    assert!(
        result["output"]["body_excerpt"]
            .as_str()
            .unwrap()
            .contains("IGNORE PREVIOUS INSTRUCTIONS")
    );
    // The destructive request it asked for was stopped by the policy.
    assert_eq!(outcome.observations[1].status, StepStatus::Rejected);
    assert_eq!(svc.admin_calls(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hung_model_hits_the_timeout_and_the_task_is_refused() {
    let svc = Service::start().await;
    let fake = FakeOpenAi::start(vec![Reply::Hang, Reply::Hang]);
    let s = Setup::new("name: none\nsteps: []\n");
    let agent = agent(&s, planner(&fake, Duration::from_millis(300)));
    let outcome = agent
        .run(
            Task::from_webhook("t-hang-llm", &svc.alert())
                .unwrap()
                .in_env("dev"),
        )
        .await
        .unwrap();
    assert_eq!(outcome.status, OutcomeStatus::Refused);
    assert!(
        outcome.reason.contains("planner failed"),
        "{}",
        outcome.reason
    );
    assert!(
        outcome.reason.to_lowercase().contains("timed out") || outcome.reason.contains("timeout"),
        "{}",
        outcome.reason
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limits_and_server_errors_are_retried() {
    let svc = Service::start().await;
    let fake = FakeOpenAi::start(vec![
        Reply::Status {
            code: 429,
            retry_after: Some("0".into()),
            body: r#"{"error":{"message":"slow down","type":"rate_limit"}}"#.into(),
        },
        Reply::error(500, "boom"),
        Reply::Text("nothing to do".into()),
    ]);
    let s = Setup::new("name: none\nsteps: []\n");
    let mut config = LlmConfig::new(
        Provider::Compatible {
            base_url: fake.base_url(),
            api_key: None,
        },
        "m",
    );
    config.max_retries = 3;
    let agent = agent(&s, LlmPlanner::new(config).unwrap());
    let outcome = agent
        .run(
            Task::from_webhook("t-429", &svc.alert())
                .unwrap()
                .in_env("dev"),
        )
        .await
        .unwrap();
    assert_eq!(fake.requests().len(), 3);
    assert_eq!(outcome.summary, "nothing to do");
}

#[tokio::test(flavor = "multi_thread")]
async fn when_the_model_cannot_be_reached_the_runbooks_plan_and_the_journal_says_why() {
    let svc = Service::start().await;
    // A port nothing listens on: the network to the model is down.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = dead.local_addr().unwrap().port();
    drop(dead);
    let mut config = LlmConfig::new(
        Provider::Compatible {
            base_url: format!("http://127.0.0.1:{port}/v1"),
            api_key: None,
        },
        "test-model",
    );
    config.timeout = Duration::from_secs(5);
    config.max_retries = 0;
    let s = Setup::new(super::RUNBOOK);
    let agent = s
        .builder()
        .planner(LlmPlanner::new(config).unwrap())
        .build()
        .unwrap();
    assert!(
        agent.planner_name().contains("offline"),
        "{}",
        agent.planner_name()
    );
    let task = Task::from_webhook("t-offline", &svc.alert())
        .unwrap()
        .in_env("dev");
    let outcome = agent.run(task).await.unwrap();
    assert_eq!(
        outcome.status,
        OutcomeStatus::Resolved,
        "{}",
        outcome.reason
    );
    assert_eq!(outcome.planner, "runbook:health");
    let plan = warden_agent::read_journal(&s.journal, &super::key())
        .unwrap()
        .into_iter()
        .find_map(|r| match r.event {
            warden_agent::JournalEvent::Plan(p) => Some(p),
            _ => None,
        })
        .unwrap();
    let note = plan.note.unwrap_or_default();
    assert!(
        note.contains("llm:test-model failed") && note.contains("planned offline"),
        "{note}"
    );
}
