//! Receivers: authentication, the durable inbox, deduplication, resolution,
//! backpressure and bad input.

use serde_json::json;

use crate::support::{AM_TOKEN, AZ_TOKEN, HOOK_SECRET, Harness, Options, task_of};

#[tokio::test(flavor = "multi_thread")]
async fn an_alertmanager_alert_is_journaled_before_the_answer_and_resolved() {
    let h = Harness::start(Options::default()).await;
    let (status, answer) = h.alert(&h.checkout.alert("fp-1", "firing")).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["alerts"][0]["disposition"], "queued");
    let task = task_of(&answer);
    // Accepted means recorded: the intake record is the task's first.
    let first = h.records(&task).into_iter().next().unwrap();
    assert_eq!(first.event.kind(), "received");

    let done = h.done(&task).await;
    assert_eq!(done["task"]["status"], "resolved", "{done}");
    assert_eq!(h.checkout.admin_calls(), 1);
    let kinds: Vec<String> = h
        .records(&task)
        .iter()
        .map(|r| r.event.kind().to_string())
        .collect();
    assert_eq!(
        kinds.last().map(String::as_str),
        Some("outcome"),
        "{kinds:?}"
    );
    assert!(h.verify_journal());
}

#[tokio::test(flavor = "multi_thread")]
async fn alertmanager_without_its_credentials_is_refused_and_nothing_is_queued() {
    let h = Harness::start(Options::default()).await;
    let body = h.checkout.alert("fp-1", "firing");
    for token in ["", "wrong-token-0123456789abcdef", crate::support::ADMIN] {
        let (status, _) = h.post("/v1/alerts/alertmanager", token, &body).await;
        assert_eq!(status, 401, "token `{token}`");
    }
    let (_, tasks) = h.get("/v1/tasks", crate::support::ADMIN).await;
    assert_eq!(tasks["tasks"], json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_repeat_joins_its_running_task_and_a_resolved_alert_stops_it() {
    // In prod the remediation waits for a human, so the task stays running.
    let h = Harness::start(Options {
        env: "prod",
        ..Options::default()
    })
    .await;
    let (_, first) = h.alert(&h.checkout.alert("fp-9", "firing")).await;
    let task = task_of(&first);
    h.pending_approval().await;

    let (status, again) = h.alert(&h.checkout.alert("fp-9", "firing")).await;
    assert_eq!(status, 202);
    assert_eq!(again["alerts"][0]["disposition"], "duplicate");
    assert_eq!(task_of(&again), task);

    let (_, resolved) = h.alert(&h.checkout.alert("fp-9", "resolved")).await;
    assert_eq!(resolved["alerts"][0]["disposition"], "stopping");
    let done = h.done(&task).await;
    assert_eq!(done["task"]["status"], "cancelled", "{done}");
    assert!(
        done["task"]["reason"]
            .as_str()
            .unwrap()
            .contains("resolved"),
        "{done}"
    );
    assert_eq!(h.checkout.admin_calls(), 0, "the remediation never ran");
    // A resolution that comes after the end still goes on the timeline.
    let (_, late) = h.alert(&h.checkout.alert("fp-9", "resolved")).await;
    assert_eq!(late["alerts"][0]["disposition"], "after-end", "{late}");
    assert_eq!(task_of(&late), task);
    let kinds: Vec<String> = h
        .records(&task)
        .iter()
        .map(|r| r.event.kind().to_string())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| *k == "received").count(),
        4,
        "{kinds:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_webhook_is_refused_whole_with_what_was_wrong() {
    let h = Harness::start(Options::default()).await;
    let mut two = h.checkout.alert("fp-a", "firing");
    let bad = json!({"status": "firing", "annotations": {}});
    two["alerts"].as_array_mut().unwrap().push(bad);
    let cases = [
        (two, "alert 1"),
        (json!({"version": "3", "alerts": []}), "version"),
        (json!({"version": "4", "alerts": []}), "no alerts"),
        (json!("just a string"), "version"),
    ];
    for (body, expected) in cases {
        let (status, answer) = h.alert(&body).await;
        assert_eq!(status, 400, "{body}");
        let msg = answer["error"].as_str().unwrap();
        assert!(
            msg.contains(expected),
            "`{msg}` should mention `{expected}`"
        );
    }
    let r = h
        .client
        .post(h.url("/v1/alerts/alertmanager"))
        .bearer_auth(AM_TOKEN)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let (_, tasks) = h.get("/v1/tasks", crate::support::ADMIN).await;
    assert_eq!(tasks["tasks"], json!([]), "nothing half-applied");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oversized_body_is_refused_before_it_is_read_whole() {
    let h = Harness::start(Options::default()).await;
    let mut body = h.checkout.alert("fp-big", "firing");
    body["alerts"][0]["annotations"]["description"] = json!("x".repeat(100 * 1024));
    let (status, _) = h.alert(&body).await;
    assert_eq!(status, 413);
}

fn signed(body: &str, ts: i64, secret: &str) -> String {
    format!(
        "sha256={}",
        hex::encode(warden_serve::sign(secret, ts, body.as_bytes()))
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn generic_webhooks_need_a_fresh_valid_signature_and_cannot_be_replayed() {
    let h = Harness::start(Options::default()).await;
    let body = json!({"name": "DiskFull", "key": "web-1/disk", "summary": "disk full"}).to_string();
    let now = jiff::Timestamp::now().as_second();
    let send = |ts: Option<i64>, sig: Option<String>| {
        let mut r = h
            .client
            .post(h.url("/v1/alerts/generic"))
            .body(body.clone());
        if let Some(ts) = ts {
            r = r.header("x-warden-timestamp", ts.to_string());
        }
        if let Some(sig) = sig {
            r = r.header("x-warden-signature", sig);
        }
        async move {
            let r = r.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (s, msg) = send(None, None).await;
    assert_eq!(s, 401, "{msg}");
    let (s, msg) = send(
        Some(now),
        Some(signed(&body, now, "another-secret-0123456789")),
    )
    .await;
    assert_eq!(s, 401);
    assert!(msg.contains("does not match"), "{msg}");
    let stale = now - 600;
    let (s, msg) = send(Some(stale), Some(signed(&body, stale, HOOK_SECRET))).await;
    assert_eq!(s, 401);
    assert!(msg.contains("5 minutes"), "{msg}");
    // The signature covers the timestamp: a fresh timestamp on an old signature fails.
    let (s, _) = send(Some(now), Some(signed(&body, stale, HOOK_SECRET))).await;
    assert_eq!(s, 401);

    let (s, msg) = send(Some(now), Some(signed(&body, now, HOOK_SECRET))).await;
    assert_eq!(s, 202, "{msg}");
    let (s, msg) = send(Some(now), Some(signed(&body, now, HOOK_SECRET))).await;
    assert_eq!(s, 401);
    assert!(msg.contains("replay"), "{msg}");
}

#[tokio::test(flavor = "multi_thread")]
async fn azure_monitor_alerts_need_the_token_in_the_url() {
    let h = Harness::start(Options::default()).await;
    let body = json!({
        "schemaId": "azureMonitorCommonAlertSchema",
        "data": {"essentials": {
            "alertId": "/subscriptions/s/providers/Microsoft.AlertsManagement/alerts/a1",
            "alertRule": "HighCpu", "severity": "Sev2", "monitorCondition": "Fired",
            "alertTargetIDs": ["/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1"],
        }}
    });
    let (s, _) = h
        .post(
            "/v1/alerts/azure-monitor?token=wrong-0123456789abcdef",
            "",
            &body,
        )
        .await;
    assert_eq!(s, 401);
    let (s, _) = h.post("/v1/alerts/azure-monitor", "", &body).await;
    assert_eq!(s, 401);
    let (s, answer) = h
        .post(
            &format!("/v1/alerts/azure-monitor?token={AZ_TOKEN}"),
            "",
            &body,
        )
        .await;
    assert_eq!(s, 202, "{answer}");
    assert!(
        answer["alerts"][0]["key"]
            .as_str()
            .unwrap()
            .starts_with("az:")
    );
    let (s, again) = h
        .post(&format!("/v1/alerts/azure-monitor/{AZ_TOKEN}"), "", &body)
        .await;
    assert_eq!(s, 202);
    assert_ne!(again["alerts"][0]["disposition"], "queued", "{again}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_inbox_answers_429_with_retry_after() {
    // One worker, stuck on an approval; room for one more.
    let h = Harness::start(Options {
        env: "prod",
        workers: 1,
        queue: 1,
        ..Options::default()
    })
    .await;
    let (s, _) = h.alert(&h.checkout.alert("q-1", "firing")).await;
    assert_eq!(s, 202);
    h.pending_approval().await;
    let (s, _) = h.alert(&h.checkout.alert("q-2", "firing")).await;
    assert_eq!(s, 202);
    let r = h
        .client
        .post(h.url("/v1/alerts/alertmanager"))
        .bearer_auth(AM_TOKEN)
        .body(h.checkout.alert("q-3", "firing").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    assert_eq!(r.headers()["retry-after"], "30");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_policy_limits_how_many_alerts_a_source_may_send_a_minute() {
    let h = Harness::start(Options {
        policy_config: json!({"intake": {"alertmanager": {"per_minute": 2}}}),
        ..Options::default()
    })
    .await;
    for i in 0..2 {
        let (s, _) = h
            .alert(&h.checkout.alert(&format!("r-{i}"), "firing"))
            .await;
        assert_eq!(s, 202);
    }
    let (s, answer) = h.alert(&h.checkout.alert("r-2", "firing")).await;
    assert_eq!(s, 429);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("data.warden.config.intake")
    );
}
