//! Approvals and `/warden` in chat: a fake Slack Web API and a fake Teams
//! incoming webhook over HTTPS with a test CA, requests signed as Slack and
//! Teams sign them, and the real service, agent and plugins behind.

use serde_json::{Value, json};
use warden::journal::{ApprovalGiven, JournalEvent, JournalRecord};
use warden_fakes::slack::{FakeSlack, block_actions, signed, slash_command};
use warden_fakes::teams::{FakeTeams, hmac_header, outgoing};
use warden_fakes::tls::TestCa;

use crate::support::{ADMIN, Harness, Options, task_of};

const BOT_TOKEN: &str = "xoxb-0123456789-warden-test-token";
const SIGNING_SECRET: &str = "slack-signing-secret-0123456789";
/// base64 of `teams-outgoing-secret-0123456789`, as Teams shows it.
const TEAMS_TOKEN: &str = "dGVhbXMtb3V0Z29pbmctc2VjcmV0LTAxMjM0NTY3ODk=";
const CAROL: &str = "00000000-0000-4000-8000-00000000ca01";
const CHANNEL: &str = "C0WARDEN1";

/// The service with Slack and Teams configured against the fakes.
struct Chat {
    h: Harness,
    slack: FakeSlack,
    teams: FakeTeams,
    /// A certificate the service trusts, for more servers.
    cert: warden_fakes::tls::ServerCert,
    _dir: tempfile::TempDir,
}

impl Chat {
    async fn start(mut opts: Options) -> Chat {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new();
        let ca_file = ca.write_pem(dir.path());
        let cert = ca.server_cert(&["127.0.0.1"]);
        let slack = FakeSlack::start_tls(&cert, BOT_TOKEN);
        let teams = FakeTeams::start_tls(&cert);
        let secret = |name: &str, value: &str| {
            let path = dir.path().join(name);
            fs_err::write(&path, format!("{value}\n")).unwrap();
            path.display().to_string()
        };
        opts.extra_toml = format!(
            r#"
[chat]
extra_ca_file = "{ca}"

[chat.slack]
bot_token = {{ file = "{token}" }}
signing_secret = {{ file = "{signing}" }}
channel = "{CHANNEL}"
api_base = "{api}"
response_base = "{hooks}"

[chat.slack.approvers.U0ALICE]
name = "alice"
roles = ["approver"]

[chat.slack.approvers.U0BOB]
name = "bob"
roles = ["operator", "approver"]

[chat.slack.approvers.U0VAL]
name = "val"
roles = ["viewer"]

[chat.teams]
webhook_url = {{ file = "{webhook}" }}
outgoing_secret = {{ file = "{teams}" }}

[chat.teams.approvers.{CAROL}]
name = "carol"
roles = ["approver"]
"#,
            ca = ca_file.display(),
            token = secret("slack-token", BOT_TOKEN),
            signing = secret("slack-signing", SIGNING_SECRET),
            api = slack.api_base(),
            hooks = slack.hooks_base(),
            webhook = secret("teams-webhook", &teams.webhook_url()),
            teams = secret("teams-token", TEAMS_TOKEN),
        );
        let h = Harness::start(opts).await;
        Chat {
            h,
            slack,
            teams,
            cert,
            _dir: dir,
        }
    }

    /// POST `body` to `path` with `headers`.
    async fn send(&self, path: &str, headers: &[(String, String)], body: &str) -> (u16, Value) {
        let mut req = self.h.client.post(self.h.url(path)).body(body.to_string());
        for (k, v) in headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// A button click as Slack posts it, signed now.
    async fn click(&self, user: &str, action: &str, id: &str, hook: &str) -> u16 {
        let body = block_actions(
            user,
            action,
            id,
            &self.slack.response_url(hook),
            CHANNEL,
            "1700000000.000001",
        );
        self.send(
            "/v1/chat/slack/interactions",
            &signed(SIGNING_SECRET, now(), &body),
            &body,
        )
        .await
        .0
    }

    /// `/warden <text>` as Slack posts it, signed now.
    async fn command(&self, user: &str, text: &str, hook: &str) -> (u16, Value) {
        let body = slash_command(user, text, &self.slack.response_url(hook));
        self.send(
            "/v1/chat/slack/commands",
            &signed(SIGNING_SECRET, now(), &body),
            &body,
        )
        .await
    }

    /// A message to the outgoing webhook as Teams posts it.
    async fn teams_says(
        &self,
        aad: &str,
        text: &str,
        token: &str,
        at: jiff::Timestamp,
    ) -> (u16, Value) {
        let body = outgoing(aad, "Someone", text, &at.to_string());
        let headers = [
            (
                "content-type".to_string(),
                "application/json; charset=utf-8".to_string(),
            ),
            ("authorization".to_string(), hmac_header(token, &body)),
        ];
        self.send("/v1/chat/teams/actions", &headers, &body).await
    }

    /// The first `n` messages Slack accepted from `method` (bounded wait).
    async fn slack_calls(&self, method: &str, n: usize) -> Vec<Value> {
        self.h
            .wait(&format!("{n} {method}"), || async {
                let got = self.slack.accepted(method);
                (got.len() >= n).then_some(got)
            })
            .await
    }

    /// What the `response_url` named `hook` received (bounded wait for `n`).
    async fn responses(&self, hook: &str, n: usize) -> Vec<Value> {
        self.h
            .wait(&format!("{n} response(s) at {hook}"), || async {
                let got = self.slack.responses(hook);
                (got.len() >= n).then_some(got)
            })
            .await
    }

    async fn cards(&self, n: usize) {
        self.h
            .wait(&format!("{n} Teams card(s)"), || async {
                (self.teams.cards().len() >= n).then_some(())
            })
            .await;
    }
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

fn approvals(records: &[JournalRecord]) -> Vec<ApprovalGiven> {
    records
        .iter()
        .filter_map(|r| match &r.event {
            JournalEvent::Approval(a) => Some(a.clone()),
            _ => None,
        })
        .collect()
}

/// The `Received` events of `records` from `source`: (status, disposition, by).
fn received(records: &[JournalRecord], source: &str) -> Vec<(String, String, String)> {
    records
        .iter()
        .filter_map(|r| match &r.event {
            JournalEvent::Received {
                source: s,
                status,
                disposition,
                by,
                ..
            } if s == source => Some((status.clone(), disposition.clone(), by.clone())),
            _ => None,
        })
        .collect()
}

fn action_ids(blocks: &Value) -> Vec<(String, String)> {
    blocks
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["type"] == "actions")
        .flat_map(|b| b["elements"].as_array().unwrap().clone())
        .map(|e| {
            (
                e["action_id"].as_str().unwrap().to_string(),
                e["value"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slack_click_approves_the_remediation_updates_the_message_and_the_journal_names_the_mapped_approver()
 {
    let c = Chat::start(Options {
        env: "prod",
        ..Options::default()
    })
    .await;
    let (_, answer) = c.h.alert(&c.h.checkout.alert("slack-1", "firing")).await;
    let task = task_of(&answer);
    let pending = c.h.pending_approval().await;
    let id = pending["id"].as_str().unwrap().to_string();

    let post = c.slack_calls("chat.postMessage", 1).await.remove(0);
    assert_eq!(post["channel"], CHANNEL);
    assert_eq!(
        action_ids(&post["blocks"]),
        [
            ("warden-approve".to_string(), id.clone()),
            ("warden-reject".to_string(), id.clone())
        ]
    );
    let shown = post["blocks"].to_string();
    assert!(
        shown.contains("http-action") && shown.contains("*prod*") && shown.contains(&task),
        "{shown}"
    );
    let ts = c.slack.calls()[0].answer["ts"]
        .as_str()
        .unwrap()
        .to_string();

    assert_eq!(
        c.click("U0ALICE", "warden-approve", &id, "click-1").await,
        200
    );
    let done = c.h.done(&task).await;
    assert_eq!(done["task"]["status"], "resolved", "{done}");
    assert_eq!(c.h.checkout.admin_calls(), 1);

    let update = c.slack_calls("chat.update", 1).await.remove(0);
    assert_eq!(
        (update["channel"].as_str(), update["ts"].as_str()),
        (Some(CHANNEL), Some(ts.as_str()))
    );
    let now_shown = c.slack.message(CHANNEL, &ts).unwrap();
    assert!(
        action_ids(&now_shown["blocks"]).is_empty(),
        "the buttons are gone: {now_shown}"
    );
    assert!(
        now_shown["blocks"]
            .to_string()
            .contains("Approved by *alice* via Slack"),
        "{now_shown}"
    );
    // Every call carried the bot token (the fake refuses any other).
    assert_eq!(c.slack.refused(), Vec::<(String, String)>::new());
    for seen in c.slack.requests() {
        assert_eq!(
            seen.header("authorization"),
            Some(format!("Bearer {BOT_TOKEN}").as_str())
        );
    }

    let records = c.h.records(&task);
    let given = approvals(&records);
    assert_eq!(given.len(), 1);
    assert!(given[0].approved);
    assert_eq!(given[0].approver, "alice");
    assert!(
        given[0]
            .note
            .as_deref()
            .unwrap()
            .contains("via Slack (user U0ALICE)")
    );
    assert_eq!(
        received(&records, "slack"),
        [(
            "approve".into(),
            "answered".into(),
            "alice (slack:U0ALICE)".into()
        )]
    );
    assert!(c.h.verify_journal());
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_stale_and_replayed_slack_requests_are_refused_and_decide_nothing() {
    let c = Chat::start(Options {
        env: "prod",
        ..Options::default()
    })
    .await;
    let (_, answer) = c.h.alert(&c.h.checkout.alert("slack-2", "firing")).await;
    let task = task_of(&answer);
    let id = c.h.pending_approval().await["id"]
        .as_str()
        .unwrap()
        .to_string();
    c.slack_calls("chat.postMessage", 1).await;
    let path = "/v1/chat/slack/interactions";
    let click = block_actions(
        "U0ALICE",
        "warden-approve",
        &id,
        &c.slack.response_url("x"),
        CHANNEL,
        "1",
    );
    let t = now();

    // Signed with another secret.
    let (s, why) = c
        .send(
            path,
            &signed("not-the-signing-secret-0123", t, &click),
            &click,
        )
        .await;
    assert_eq!(s, 401, "{why}");
    // Signed right, but six minutes old, or six minutes ahead.
    for at in [t - 360, t + 360] {
        let (s, why) = c
            .send(path, &signed(SIGNING_SECRET, at, &click), &click)
            .await;
        assert_eq!(s, 401, "{why}");
        assert!(
            why["error"].as_str().unwrap().contains("5 minutes"),
            "{why}"
        );
    }
    // A signature for one body on another (the click as Mallory's, Bob's…).
    let other = block_actions(
        "U0BOB",
        "warden-approve",
        &id,
        &c.slack.response_url("x"),
        CHANNEL,
        "1",
    );
    let (s, _) = c
        .send(path, &signed(SIGNING_SECRET, t, &click), &other)
        .await;
    assert_eq!(s, 401);
    // No signature at all.
    let (s, _) = c
        .send(
            path,
            &[(
                "content-type".into(),
                "application/x-www-form-urlencoded".into(),
            )],
            &click,
        )
        .await;
    assert_eq!(s, 401);
    // Nothing was decided, nothing updated.
    let (s, _) = c.h.get(&format!("/v1/approvals/{id}"), ADMIN).await;
    assert_eq!(s, 200, "still pending");
    assert!(c.slack.accepted("chat.update").is_empty());

    // A valid command, then the same request again: the copy is refused.
    let body = slash_command("U0VAL", "status", &c.slack.response_url("y"));
    let headers = signed(SIGNING_SECRET, now(), &body);
    assert_eq!(
        c.send("/v1/chat/slack/commands", &headers, &body).await.0,
        200
    );
    let (s, why) = c.send("/v1/chat/slack/commands", &headers, &body).await;
    assert_eq!(s, 401);
    assert!(why["error"].as_str().unwrap().contains("replay"), "{why}");

    // A valid rejection counts once; its replay is refused.
    let reject = block_actions(
        "U0ALICE",
        "warden-reject",
        &id,
        &c.slack.response_url("z"),
        CHANNEL,
        "1",
    );
    let headers = signed(SIGNING_SECRET, now(), &reject);
    assert_eq!(c.send(path, &headers, &reject).await.0, 200);
    assert_eq!(c.send(path, &headers, &reject).await.0, 401);
    let done = c.h.done(&task).await;
    assert_eq!(done["task"]["status"], "unresolved", "{done}");
    assert_eq!(c.h.checkout.admin_calls(), 0);
    let given = approvals(&c.h.records(&task));
    assert_eq!(given.len(), 1);
    assert!(!given[0].approved);
    assert_eq!(given[0].approver, "alice");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unmapped_or_unentitled_slack_user_is_told_no_and_an_answer_elsewhere_updates_the_message()
 {
    let c = Chat::start(Options {
        env: "prod",
        ..Options::default()
    })
    .await;
    // Alert text from outside that would be a mention and a disguised link.
    let mut alert = c.h.checkout.alert("slack-3", "firing");
    let url = alert["alerts"][0]["annotations"]["remediation_url"]
        .as_str()
        .unwrap()
        .to_string();
    alert["alerts"][0]["annotations"]["remediation_url"] = json!(format!(
        "{url}?note=<!channel>&x=<https://evil.example|click>"
    ));
    let (_, answer) = c.h.alert(&alert).await;
    let task = task_of(&answer);
    let id = c.h.pending_approval().await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let post = c.slack_calls("chat.postMessage", 1).await.remove(0);
    let blocks = post["blocks"].to_string();
    assert!(
        !blocks.contains("<!channel>") && !blocks.contains("<https://evil"),
        "{blocks}"
    );
    assert!(
        blocks.contains("&lt;!channel&gt;&amp;x=&lt;https://evil.example|click&gt;"),
        "{blocks}"
    );

    // A signed click whose response_url points elsewhere (a server the
    // service would trust): not followed.
    let elsewhere = warden_fakes::http::OkServer::start_tls(&c.cert);
    let body = block_actions(
        "U0MALLORY",
        "warden-approve",
        &id,
        &elsewhere.url("/hooks/x"),
        CHANNEL,
        "1",
    );
    let (s, _) = c
        .send(
            "/v1/chat/slack/interactions",
            &signed(SIGNING_SECRET, now(), &body),
            &body,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        c.click("U0MALLORY", "warden-approve", &id, "mallory").await,
        200
    );
    let told = c.responses("mallory", 1).await.remove(0);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        elsewhere.hits(),
        0,
        "a response_url outside response_base was followed"
    );
    assert_eq!(told["response_type"], "ephemeral");
    assert!(
        told["text"].as_str().unwrap().contains("not mapped"),
        "{told}"
    );
    assert_eq!(c.click("U0VAL", "warden-approve", &id, "val").await, 200);
    let told = c.responses("val", 1).await.remove(0);
    assert!(
        told["text"]
            .as_str()
            .unwrap()
            .contains("lacks the `approver` role"),
        "{told}"
    );
    let (s, _) = c.h.get(&format!("/v1/approvals/{id}"), ADMIN).await;
    assert_eq!(s, 200, "still pending");
    assert!(c.slack.accepted("chat.update").is_empty());

    // Answered through the API instead: the Slack message says so.
    let (s, _) =
        c.h.post(
            &format!("/v1/approvals/{id}"),
            ADMIN,
            &json!({"approve": false, "reason": "not <now>"}),
        )
        .await;
    assert_eq!(s, 200);
    let update = c.slack_calls("chat.update", 1).await.remove(0);
    let text = update["blocks"].to_string();
    assert!(
        text.contains("Rejected by *admin* via the API: not &lt;now&gt;"),
        "{text}"
    );
    let done = c.h.done(&task).await;
    assert_eq!(done["task"]["status"], "unresolved", "{done}");
    assert_eq!(c.h.checkout.admin_calls(), 0);
    let records = c.h.records(&task);
    assert_eq!(
        received(&records, "slack"),
        [
            (
                "approve".into(),
                "refused: not a mapped Slack user".into(),
                "slack:U0MALLORY".into()
            ),
            (
                "approve".into(),
                "refused: not a mapped Slack user".into(),
                "slack:U0MALLORY".into()
            ),
            (
                "approve".into(),
                "refused: no approver role".into(),
                "slack:U0VAL".into()
            ),
        ]
    );
    assert_eq!(approvals(&records)[0].approver, "admin");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_approval_nobody_answers_is_marked_expired_in_slack_and_in_teams() {
    let c = Chat::start(Options {
        env: "prod",
        approval_timeout: "1s",
        ..Options::default()
    })
    .await;
    let (_, answer) = c.h.alert(&c.h.checkout.alert("slack-4", "firing")).await;
    let task = task_of(&answer);
    let done = c.h.done(&task).await;
    assert_eq!(done["task"]["status"], "unresolved", "{done}");
    let update = c.slack_calls("chat.update", 1).await.remove(0);
    assert!(
        update["blocks"]
            .to_string()
            .contains("Expired: nobody answered within 1s"),
        "{update}"
    );
    c.cards(2).await;
    assert!(
        c.teams
            .card_text(1)
            .contains("expired: nobody answered within 1s"),
        "{}",
        c.teams.card_text(1)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_teams_answer_signed_with_the_outgoing_token_approves_and_slack_hears_of_it() {
    let c = Chat::start(Options {
        env: "prod",
        ..Options::default()
    })
    .await;
    let (_, answer) = c.h.alert(&c.h.checkout.alert("teams-1", "firing")).await;
    let task = task_of(&answer);
    let id = c.h.pending_approval().await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let short = &id[..8];
    c.cards(1).await;
    let card = c.teams.card_text(0);
    assert!(
        card.contains(&format!("approve {short}")) && card.contains("Tool: http-action (mutating)"),
        "{card}"
    );
    let say = format!("<at>warden</at> approve {short} pool restart is safe");
    let t = jiff::Timestamp::now();

    // Signed with the token's text instead of its bytes, or another token.
    let wrong = "d3JvbmctdGVhbXMtdG9rZW4tMDEyMzQ1Njc4OWFiY2Q=";
    assert_eq!(c.teams_says(CAROL, &say, wrong, t).await.0, 401);
    // Signed right, ten minutes old.
    let old = t.checked_sub(jiff::SignedDuration::from_mins(10)).unwrap();
    let (s, why) = c.teams_says(CAROL, &say, TEAMS_TOKEN, old).await;
    assert_eq!(s, 401, "{why}");
    // Someone not mapped.
    let stranger = "00000000-0000-4000-8000-0000000bad01";
    let (s, reply) = c.teams_says(stranger, &say, TEAMS_TOKEN, t).await;
    assert_eq!(s, 200);
    assert!(
        reply["text"].as_str().unwrap().contains("not mapped"),
        "{reply}"
    );
    let (s, _) = c.h.get(&format!("/v1/approvals/{id}"), ADMIN).await;
    assert_eq!(s, 200, "still pending");

    // Carol asks what waits, and for past incidents (there is no memory).
    let (s, reply) = c
        .teams_says(CAROL, "<at>warden</at> status", TEAMS_TOKEN, t)
        .await;
    assert_eq!(s, 200);
    let text = reply["text"].as_str().unwrap();
    assert!(
        text.contains("1 approval(s) pending")
            && text.contains(&format!("{short} http-action in prod")),
        "{text}"
    );
    let (_, reply) = c
        .teams_says(
            CAROL,
            "<at>warden</at> similar pool [x](https://evil.example)",
            TEAMS_TOKEN,
            t,
        )
        .await;
    let text = reply["text"].as_str().unwrap();
    assert!(
        text.starts_with("No past incidents like pool [x]\u{200b}(https://evil.example)"),
        "{text}"
    );

    // Carol, signed: approved; the same request again is a replay.
    let body = outgoing(CAROL, "Carol", &say, &t.to_string());
    let headers = [
        ("content-type".to_string(), "application/json".to_string()),
        ("authorization".to_string(), hmac_header(TEAMS_TOKEN, &body)),
    ];
    let (s, reply) = c.send("/v1/chat/teams/actions", &headers, &body).await;
    assert_eq!(s, 200);
    assert_eq!(reply["type"], "message");
    assert!(
        reply["text"]
            .as_str()
            .unwrap()
            .starts_with(&format!("Approved approval {short}")),
        "{reply}"
    );
    assert_eq!(
        c.send("/v1/chat/teams/actions", &headers, &body).await.0,
        401
    );

    let done = c.h.done(&task).await;
    assert_eq!(done["task"]["status"], "resolved", "{done}");
    assert_eq!(c.h.checkout.admin_calls(), 1);
    let records = c.h.records(&task);
    let given = approvals(&records);
    assert_eq!(given[0].approver, "carol");
    assert_eq!(
        given[0].note.as_deref(),
        Some("via Teams: pool restart is safe")
    );
    assert_eq!(
        received(&records, "teams"),
        [
            (
                "approve".into(),
                "refused: not a mapped Teams user".into(),
                format!("teams:{stranger}")
            ),
            (
                "approve".into(),
                "answered".into(),
                format!("carol (teams:{CAROL})")
            ),
        ]
    );
    c.cards(2).await;
    assert!(
        c.teams.card_text(1).contains("approved by carol via Teams"),
        "{}",
        c.teams.card_text(1)
    );
    let update = c.slack_calls("chat.update", 1).await.remove(0);
    assert!(
        update["blocks"]
            .to_string()
            .contains("Approved by *carol* via Teams"),
        "{update}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn slash_status_lists_pending_approvals_and_similar_recalls_past_incidents() {
    let memory = tempfile::tempdir().unwrap();
    {
        use warden::memory::{Incident, Memory};
        let mut m = Memory::open(memory.path()).unwrap();
        m.ingest(vec![
            Incident::new(
                "INC-7",
                "checkout connection pool exhausted",
                "checkout health check failing, pool exhausted",
            )
            .with_resolution("restarted the checkout pool"),
            Incident::new("INC-9", "disk full on db-1", "the data volume filled up"),
        ])
        .unwrap();
    }
    let c = Chat::start(Options {
        env: "prod",
        memory: Some(memory.path().to_path_buf()),
        ..Options::default()
    })
    .await;
    let (_, answer) = c.h.alert(&c.h.checkout.alert("status-1", "firing")).await;
    let task = task_of(&answer);
    let id = c.h.pending_approval().await["id"]
        .as_str()
        .unwrap()
        .to_string();

    let (s, status) = c.command("U0VAL", "status", "s").await;
    assert_eq!(s, 200, "{status}");
    assert_eq!(status["response_type"], "ephemeral");
    let text = status["text"].as_str().unwrap();
    assert!(text.contains("1 approval(s) pending"), "{text}");
    assert!(
        text.contains("`http-action` (mutating) in *prod*")
            && text.contains(&id)
            && text.contains(&task),
        "{text}"
    );

    let (s, similar) = c
        .command("U0VAL", "similar checkout pool exhausted again", "s")
        .await;
    assert_eq!(s, 200);
    let text = similar["text"].as_str().unwrap();
    let first = text.lines().nth(1).unwrap_or_default();
    assert!(
        first.contains("*INC-7* checkout connection pool exhausted"),
        "{text}"
    );
    assert!(
        first.contains("resolved by restarted the checkout pool"),
        "{text}"
    );

    let (s, refused) = c.command("U0MALLORY", "status", "s").await;
    assert_eq!(s, 200);
    assert!(
        refused["text"].as_str().unwrap().contains("not mapped"),
        "{refused}"
    );

    let all = c.h.all_records();
    assert_eq!(
        received(&all, "slack"),
        [
            (
                "status".into(),
                "answered".into(),
                "val (slack:U0VAL)".into()
            ),
            (
                "similar".into(),
                "answered".into(),
                "val (slack:U0VAL)".into()
            ),
            (
                "command".into(),
                "refused: not a mapped Slack user".into(),
                "slack:U0MALLORY".into()
            ),
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_question_in_slack_starts_a_chat_task_whose_change_waits_for_the_buttons() {
    let c = Chat::start(Options::default()).await; // dev: changes would run unasked
    let alert = c.h.checkout.alert("unused", "firing");
    let annotations = &alert["alerts"][0]["annotations"];
    let runbook = format!(
        r#"
name: chat-checkout
match: {{source: [chat], keywords: [checkout]}}
steps:
  - id: probe
    tool: http-probe
    args: {{url: "{health}", expect_status: [200]}}
  - id: remediate
    tool: http-action
    why: the pool is exhausted
    depends_on: [probe]
    when: {{step: probe, pointer: /ok, equals: false}}
    args: {{url: "{restart}", body: {{action: restart-pool}}}}
  - id: validate
    tool: http-probe
    verify: true
    depends_on: [remediate]
    args: {{url: "{health}", expect_status: [200]}}
summary: "health {{{{ steps.probe.output.status }}}} -> {{{{ steps.validate.output.status }}}}"
"#,
        health = annotations["health_url"].as_str().unwrap(),
        restart = annotations["remediation_url"].as_str().unwrap(),
    );
    fs_err::write(c.h.dir.path().join("runbooks/chat-checkout.yaml"), runbook).unwrap();
    c.h.handle.reload().unwrap();

    // Alice may approve but not ask.
    let (_, refused) = c.command("U0ALICE", "why is checkout failing?", "a").await;
    assert!(
        refused["text"]
            .as_str()
            .unwrap()
            .contains("lacks the `operator` role"),
        "{refused}"
    );

    let (s, started) = c.command("U0BOB", "why is checkout failing?", "q").await;
    assert_eq!(s, 200, "{started}");
    assert_eq!(started["response_type"], "in_channel");
    let text = started["text"].as_str().unwrap();
    let task = text.split('`').nth(1).unwrap().to_string();
    assert!(task.starts_with("chat-"), "{text}");

    // The change waits for a human even in dev, and the buttons come to Slack.
    let pending = c.h.pending_approval().await;
    assert_eq!(pending["task_id"], task.as_str());
    assert_eq!(pending["principal"], "bob");
    assert!(
        pending["reasons"].to_string().contains("asked for in chat"),
        "{pending}"
    );
    let id = pending["id"].as_str().unwrap().to_string();
    let post = c.slack_calls("chat.postMessage", 1).await.remove(0);
    assert!(
        post["blocks"]
            .to_string()
            .contains("*Why:* the pool is exhausted"),
        "{post}"
    );
    assert_eq!(
        c.click("U0ALICE", "warden-approve", &id, "click").await,
        200
    );

    let done = c.h.done(&task).await;
    assert_eq!(done["task"]["status"], "resolved", "{done}");
    assert_eq!(done["task"]["source"], "chat");
    assert_eq!(c.h.checkout.admin_calls(), 1);
    let answer = c.responses("q", 1).await.remove(0);
    assert_eq!(answer["response_type"], "in_channel");
    let text = answer["text"].as_str().unwrap();
    assert_eq!(
        text,
        format!("Task `{task}` *resolved*: health 503 -&gt; 200")
    );

    let records = c.h.records(&task);
    let started = records
        .iter()
        .find_map(|r| match &r.event {
            JournalEvent::Task(t) => Some(t.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        (started.source.as_str(), started.principal.as_str()),
        ("chat", "bob")
    );
    assert_eq!(started.goal, "why is checkout failing?");
    assert_eq!(
        received(&records, "chat"),
        [("goal".into(), "queued".into(), "bob (slack)".into())]
    );
    assert_eq!(approvals(&records)[0].approver, "alice");
}
