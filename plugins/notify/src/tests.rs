use serde_json::json;

use super::*;

fn input(target: &str) -> Input {
    serde_json::from_value(json!({
        "target": target,
        "secret": "ops-chat",
        "title": "Disk /var on db01 fills in 2 days",
        "text": "## Why\n**/var** grows 4 GiB/day; see [the runbook](https://runbooks.example/disk).\n- rotate logs\n- grow the volume",
        "severity": "warning",
        "fields": {"host": "db01", "free_gib": 7.5, "eta_days": 2},
        "link": {"title": "Dashboard", "url": "https://grafana.example/d/disk?var-host=db01&from=now-7d"}
    }))
    .unwrap()
}

fn dry() -> Context {
    Context {
        dry_run: true,
        ..Context::default()
    }
}

fn message(e: ToolError) -> String {
    match e {
        ToolError::InvalidInput(m) => m,
        other => panic!("expected invalid input, got {other}"),
    }
}

#[test]
fn slack_payload_is_block_kit_with_header_section_fields_and_context() {
    let p = payload(&input("slack")).unwrap();
    assert_eq!(p["text"], "[WARNING] Disk /var on db01 fills in 2 days");
    let blocks = p["blocks"].as_array().unwrap();
    let kinds: Vec<&str> = blocks.iter().map(|b| b["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["header", "section", "section", "context"]);
    assert_eq!(blocks[0]["text"]["type"], "plain_text");
    assert_eq!(
        blocks[0]["text"]["text"],
        ":warning: Disk /var on db01 fills in 2 days"
    );
    assert_eq!(blocks[1]["text"]["type"], "mrkdwn");
    assert_eq!(
        blocks[1]["text"]["text"],
        "*Why*\n*/var* grows 4 GiB/day; see <https://runbooks.example/disk|the runbook>.\n• rotate logs\n• grow the volume"
    );
    let fields = blocks[2]["fields"].as_array().unwrap();
    assert_eq!(fields.len(), 3);
    assert_eq!(fields[0]["type"], "mrkdwn");
    assert_eq!(fields[0]["text"], "*eta_days*\n2");
    assert_eq!(fields[1]["text"], "*free_gib*\n7.5");
    let context = blocks[3]["elements"][0]["text"].as_str().unwrap();
    assert!(context.contains("Severity: *warning*"), "{context}");
    assert!(
        context
            .contains("<https://grafana.example/d/disk?var-host=db01&amp;from=now-7d|Dashboard>"),
        "{context}"
    );
}

#[test]
fn slack_splits_many_fields_into_sections_of_ten_and_caps_the_header() {
    let mut i = input("slack");
    i.title = "x".repeat(400);
    i.fields = (0..23).map(|n| (format!("k{n:02}"), json!(n))).collect();
    let p = payload(&i).unwrap();
    let blocks = p["blocks"].as_array().unwrap();
    let field_counts: Vec<usize> = blocks
        .iter()
        .filter_map(|b| b["fields"].as_array().map(Vec::len))
        .collect();
    assert_eq!(field_counts, [10, 10, 3]);
    assert_eq!(
        blocks[0]["text"]["text"].as_str().unwrap().chars().count(),
        150
    );
}

#[test]
fn teams_payload_is_an_adaptive_card_message() {
    let p = payload(&input("teams")).unwrap();
    assert_eq!(p["type"], "message");
    let attachment = &p["attachments"][0];
    assert_eq!(
        attachment["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    let card = &attachment["content"];
    assert_eq!(card["type"], "AdaptiveCard");
    assert_eq!(card["version"], "1.4");
    assert_eq!(
        card["$schema"],
        "http://adaptivecards.io/schemas/adaptive-card.json"
    );
    let body = card["body"].as_array().unwrap();
    assert_eq!(body[0]["type"], "TextBlock");
    assert_eq!(body[0]["text"], "Disk /var on db01 fills in 2 days");
    assert_eq!(body[0]["color"], "Warning");
    assert!(
        body[1]["text"]
            .as_str()
            .unwrap()
            .starts_with("**Why**\n**/var**")
    );
    let facts = body.iter().find(|b| b["type"] == "FactSet").unwrap()["facts"]
        .as_array()
        .unwrap();
    assert_eq!(facts[2], json!({"title": "host", "value": "db01"}));
    assert_eq!(card["actions"][0]["type"], "Action.OpenUrl");
    assert_eq!(card["actions"][0]["title"], "Dashboard");
}

#[test]
fn webhook_payload_is_plain_json_with_the_source() {
    let p = payload(&input("webhook")).unwrap();
    assert_eq!(p["source"], "warden");
    assert_eq!(p["severity"], "warning");
    assert_eq!(p["title"], "Disk /var on db01 fills in 2 days");
    assert_eq!(p["fields"]["free_gib"], "7.5");
    assert_eq!(p["link"]["title"], "Dashboard");
    let mut no_link = input("webhook");
    no_link.link = None;
    assert!(payload(&no_link).unwrap()["link"].is_null());
}

#[test]
fn a_dry_run_returns_the_payload_and_sends_nothing() {
    let out = Notify::invoke(&dry(), input("teams")).unwrap();
    assert!(out.dry_run && !out.sent);
    assert_eq!(out.status, None);
    let payload = out.payload.unwrap();
    assert_eq!(
        out.payload_bytes,
        serde_json::to_vec(&payload).unwrap().len()
    );
    assert_eq!(payload["type"], "message");
}

#[test]
fn empty_title_or_text_bad_secret_or_link_are_invalid_input() {
    let mut i = input("slack");
    i.title = "  ".into();
    assert_eq!(
        message(Notify::invoke(&dry(), i).unwrap_err()),
        "title is empty"
    );
    let mut i = input("slack");
    i.text = String::new();
    assert_eq!(
        message(Notify::invoke(&dry(), i).unwrap_err()),
        "text is empty"
    );
    let mut i = input("slack");
    i.secret = "Ops_Chat".into();
    assert!(message(Notify::invoke(&dry(), i).unwrap_err()).contains("`Ops_Chat`"));
    let mut i = input("slack");
    i.link = Some(Link {
        title: "x".into(),
        url: "javascript:alert(1)".into(),
    });
    assert!(message(Notify::invoke(&dry(), i).unwrap_err()).contains("link url"));
    let r: Result<Input, _> = serde_json::from_value(json!({
        "target": "discord", "secret": "a", "title": "t", "text": "x"
    }));
    assert!(r.is_err());
}

#[test]
fn mrkdwn_escapes_control_characters_and_keeps_code() {
    assert_eq!(
        format::mrkdwn("a < b && *c*\n```\nx **y**\n```\n`**z**`"),
        "a &lt; b &amp;&amp; _c_\n```\nx **y**\n```\n`**z**`"
    );
    assert_eq!(format::mrkdwn("~~gone~~ __bold__"), "~gone~ *bold*");
}

#[test]
fn the_manifest_declares_only_secret_hosts() {
    let caps = Notify::capabilities();
    assert_eq!(
        caps,
        vec![Capability::Http {
            hosts: vec!["*.secret.warden".into()]
        }]
    );
    let schema = serde_json::to_string(&schemars::schema_for!(Input)).unwrap();
    for field in ["target", "secret", "severity", "fields", "link"] {
        assert!(schema.contains(field), "{field}");
    }
}
