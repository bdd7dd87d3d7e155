//! The HTTP API. Only `/healthz` and `/readyz` answer without
//! authentication; receivers use their own secrets, everything else a
//! bearer token with a role.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State as Extract};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use warden::journal::{JournalEvent, read_journal, task_list};

use crate::auth::Identity;
use crate::error::ServeError;
use crate::inbox::{Accepted, Item, ItemState, Resolved};
use crate::intake::{self, Incoming};
use crate::server::State;

type Shared = Arc<State>;

/// An error answer: a status and a JSON `{"error": …}`.
pub(crate) struct Failure(StatusCode, String);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let mut r = (self.0, axum::Json(json!({"error": self.1}))).into_response();
        if self.0 == StatusCode::TOO_MANY_REQUESTS || self.0 == StatusCode::SERVICE_UNAVAILABLE {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("30"));
        }
        if self.0 == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"warden\""),
            );
        }
        r
    }
}

impl From<ServeError> for Failure {
    fn from(e: ServeError) -> Self {
        tracing::error!(error = %e, "request failed");
        Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

fn fail(status: StatusCode, why: impl Into<String>) -> Failure {
    Failure(status, why.into())
}

pub(crate) fn router(state: Shared) -> Router {
    let limit = state.config.limits.body_bytes;
    let mcp = match (&state.mcp, &state.config.mcp) {
        (Some(server), Some(section)) => {
            crate::mcp::router(&state, server, section, state.mcp_stop.clone())
        }
        _ => Router::new(),
    };
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/v1/alerts/alertmanager", post(alertmanager))
        .route("/v1/alerts/azure-monitor", post(azure_monitor))
        .route("/v1/alerts/azure-monitor/{token}", post(azure_monitor_path))
        .route("/v1/alerts/generic", post(generic))
        .route("/v1/tasks", post(create_task).get(list_tasks))
        .route("/v1/tasks/{id}", get(show_task))
        .route("/v1/approvals", get(list_approvals))
        .route(
            "/v1/approvals/{id}",
            get(show_approval).post(answer_approval),
        )
        .route("/v1/incidents/similar", get(similar))
        .merge(crate::chat::router())
        .merge(crate::page::router(state.clone()))
        .merge(mcp)
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// The caller, who must hold `role`.
pub(crate) fn caller(state: &State, headers: &HeaderMap, role: &str) -> Result<Identity, Failure> {
    let Some(who) = state.secrets.identity(headers) else {
        return Err(fail(
            StatusCode::UNAUTHORIZED,
            "a valid bearer token is required",
        ));
    };
    if !who.may(role) {
        return Err(fail(
            StatusCode::FORBIDDEN,
            format!("`{}` lacks the `{role}` role", who.name),
        ));
    }
    Ok(who)
}

async fn readyz(Extract(state): Extract<Shared>) -> Response {
    if state.accepting.load(Ordering::SeqCst) {
        (StatusCode::OK, "ready").into_response()
    } else {
        fail(StatusCode::SERVICE_UNAVAILABLE, "draining").into_response()
    }
}

async fn metrics(Extract(state): Extract<Shared>, headers: HeaderMap) -> Result<Response, Failure> {
    caller(&state, &headers, "viewer")?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response())
}

fn parse_json(body: &[u8]) -> Result<Value, Failure> {
    serde_json::from_slice(body).map_err(|e| {
        fail(
            StatusCode::BAD_REQUEST,
            format!("the body is not JSON: {e}"),
        )
    })
}

/// A receiver's verdict on a request's credentials: `None` when the
/// receiver is not configured, else whether they hold (or why not).
type Verdict = Option<Result<(), String>>;

/// What every receiver does once it has checked the credentials: parse,
/// split into alerts (all checked before any is accepted), and accept.
async fn webhook(
    state: &Shared,
    source: &'static str,
    verdict: Verdict,
    body: &[u8],
    split: fn(&Value) -> Result<Vec<Incoming>, String>,
    env: Option<String>,
) -> Result<Response, Failure> {
    match verdict {
        None => {
            return Err(fail(
                StatusCode::NOT_FOUND,
                format!("the `{source}` receiver is not configured"),
            ));
        }
        Some(Err(why)) => return Err(fail(StatusCode::UNAUTHORIZED, why)),
        Some(Ok(())) => {}
    }
    let incoming = split(&parse_json(body)?).map_err(|e| fail(StatusCode::BAD_REQUEST, e))?;
    receive(state, source, source, env, incoming).await
}

fn held(ok: Option<bool>, why: &str) -> Verdict {
    ok.map(|ok| if ok { Ok(()) } else { Err(why.to_string()) })
}

async fn alertmanager(
    Extract(state): Extract<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Failure> {
    let verdict = held(
        state.secrets.alertmanager(&headers),
        "wrong or missing Alertmanager credentials",
    );
    let env = state
        .config
        .receivers
        .alertmanager
        .as_ref()
        .and_then(|r| r.env.clone());
    webhook(
        &state,
        "alertmanager",
        verdict,
        &body,
        intake::alertmanager,
        env,
    )
    .await
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

async fn azure_monitor(
    Extract(state): Extract<Shared>,
    Query(q): Query<TokenQuery>,
    body: Bytes,
) -> Result<Response, Failure> {
    azure(state, q.token, body).await
}

async fn azure_monitor_path(
    Extract(state): Extract<Shared>,
    Path(token): Path<String>,
    body: Bytes,
) -> Result<Response, Failure> {
    azure(state, Some(token), body).await
}

async fn azure(state: Shared, token: Option<String>, body: Bytes) -> Result<Response, Failure> {
    let verdict = held(
        state.secrets.azure(token.as_deref()),
        "wrong or missing Azure Monitor token",
    );
    let env = state
        .config
        .receivers
        .azure_monitor
        .as_ref()
        .and_then(|r| r.env.clone());
    webhook(
        &state,
        "azure-monitor",
        verdict,
        &body,
        intake::azure_monitor,
        env,
    )
    .await
}

async fn generic(
    Extract(state): Extract<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Failure> {
    let now = jiff::Timestamp::now().as_second();
    let verdict = state.secrets.generic(&headers, &body, now);
    let env = state
        .config
        .receivers
        .generic
        .as_ref()
        .and_then(|r| r.env.clone());
    webhook(&state, "generic", verdict, &body, intake::generic, env).await
}

/// Accept each alert of one notification: commit it to the inbox (or fold
/// it into its running task, or stop that task when it resolved), journal
/// what happened, and only then answer.
async fn receive(
    state: &Shared,
    source: &str,
    by: &str,
    env: Option<String>,
    incoming: Vec<Incoming>,
) -> Result<Response, Failure> {
    if !state.accepting.load(Ordering::SeqCst) {
        return Err(fail(
            StatusCode::SERVICE_UNAVAILABLE,
            "the service is draining",
        ));
    }
    if !state.admit(source) {
        state.metrics.received(source, "rate-limited");
        return Err(fail(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "`{source}` sent more alerts this minute than the policy allows (data.warden.config.intake)"
            ),
        ));
    }
    let env = env
        .or_else(|| state.config.agent.env.clone())
        .unwrap_or_default();
    let mut results = Vec::new();
    for alert in incoming {
        let (disposition, task) = if alert.status == "resolved" {
            let key = alert.key.clone();
            match state.inbox(move |i| i.resolve(&key)).await? {
                Resolved::Dropped(id) => ("dropped", id),
                Resolved::Running(id) => {
                    state.stop_task(
                        &id,
                        "the alert resolved while its task ran; pending steps do not run",
                    );
                    ("stopping", id)
                }
                Resolved::Ended(id) => ("after-end", id),
                Resolved::Nothing => ("nothing-running", String::new()),
            }
        } else {
            let item = Item {
                id: task_id(source),
                source: source.to_string(),
                key: alert.key.clone(),
                body: alert.body,
                env: env.clone(),
                principal: format!("{source}:receiver"),
                received_at: jiff::Timestamp::now().to_string(),
                state: ItemState::Pending,
                status: None,
                reason: None,
                done_at: None,
                repeats: 0,
            };
            let window = state.config.limits.group_window;
            match state.inbox(move |i| i.accept(item, window)).await? {
                Accepted::New(id) => ("queued", id),
                Accepted::Duplicate(id) => ("duplicate", id),
                Accepted::Grouped(id) => ("grouped", id),
                Accepted::Full => {
                    state.metrics.received(source, "full");
                    return Err(fail(
                        StatusCode::TOO_MANY_REQUESTS,
                        "the inbox is full; retry later",
                    ));
                }
            }
        };
        state.metrics.received(source, disposition);
        if !task.is_empty() {
            let event = JournalEvent::Received {
                source: source.to_string(),
                key: alert.key.clone(),
                status: alert.status.clone(),
                disposition: disposition.to_string(),
                by: by.to_string(),
            };
            journal_intake(state, &task, &event, disposition == "queued").await?;
        }
        if disposition == "queued" {
            state.wake.notify_one();
        }
        results.push(json!({"key": alert.key, "status": alert.status, "disposition": disposition, "task_id": task}));
    }
    if let Ok(n) = state.inbox(|i| i.pending()).await {
        state.metrics.queue_depth(n);
    }
    Ok((StatusCode::ACCEPTED, axum::Json(json!({"alerts": results}))).into_response())
}

/// Journal an intake. When the journal cannot take it, a task that was
/// just queued is withdrawn before the 500, so nothing runs unrecorded.
async fn journal_intake(
    state: &Shared,
    task: &str,
    event: &JournalEvent,
    queued: bool,
) -> Result<(), Failure> {
    let Err(e) = state.journal(task, event) else {
        return Ok(());
    };
    if queued {
        let id = task.to_string();
        let withdrawn = state
            .inbox(move |i| {
                i.finish(
                    &id,
                    "refused",
                    "its intake could not be journaled, so it never ran",
                )
            })
            .await;
        if let Err(w) = withdrawn {
            tracing::error!(task, error = %w, "could not withdraw a task whose intake was not journaled");
        }
    }
    Err(e.into())
}

fn task_id(source: &str) -> String {
    let short = &crate::approvals::new_id()[..12];
    format!("{source}-{}-{short}", jiff::Timestamp::now().as_second())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTask {
    goal: Option<String>,
    alert: Option<Value>,
    env: Option<String>,
}

async fn create_task(
    Extract(state): Extract<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Failure> {
    let who = caller(&state, &headers, "operator")?;
    if !state.accepting.load(Ordering::SeqCst) {
        return Err(fail(
            StatusCode::SERVICE_UNAVAILABLE,
            "the service is draining",
        ));
    }
    if !state.admit("api") {
        return Err(fail(
            StatusCode::TOO_MANY_REQUESTS,
            "too many tasks this minute (data.warden.config.intake.api)",
        ));
    }
    let req: NewTask = serde_json::from_slice(&body).map_err(|e| {
        fail(
            StatusCode::BAD_REQUEST,
            format!("expected {{\"goal\": …}} or {{\"alert\": …}}: {e}"),
        )
    })?;
    let body = match (&req.goal, &req.alert) {
        (Some(goal), None) if !goal.trim().is_empty() => json!({"goal": goal}),
        (None, Some(alert)) => {
            warden::Task::from_webhook("check", alert)
                .map_err(|e| fail(StatusCode::BAD_REQUEST, e.to_string()))?;
            json!({"alert": alert})
        }
        _ => {
            return Err(fail(
                StatusCode::BAD_REQUEST,
                "give exactly one of a non-empty `goal` or an `alert`",
            ));
        }
    };
    let env = req
        .env
        .or_else(|| state.config.agent.env.clone())
        .unwrap_or_default();
    // The environment is checked now, so a typo is a 400, not a refused task.
    state
        .agent()
        .policy()
        .environments()
        .canonical(&env)
        .map_err(|e| fail(StatusCode::BAD_REQUEST, e.to_string()))?;
    let item = Item {
        id: task_id("api"),
        source: "api".into(),
        key: String::new(),
        body,
        env,
        principal: who.name.clone(),
        received_at: jiff::Timestamp::now().to_string(),
        state: ItemState::Pending,
        status: None,
        reason: None,
        done_at: None,
        repeats: 0,
    };
    let window = state.config.limits.group_window;
    let id = match state.inbox(move |i| i.accept(item, window)).await? {
        Accepted::New(id) => id,
        Accepted::Full => {
            return Err(fail(
                StatusCode::TOO_MANY_REQUESTS,
                "the inbox is full; retry later",
            ));
        }
        Accepted::Duplicate(id) | Accepted::Grouped(id) => id,
    };
    let event = JournalEvent::Received {
        source: "api".into(),
        key: String::new(),
        status: "goal".into(),
        disposition: "queued".into(),
        by: who.name,
    };
    journal_intake(&state, &id, &event, true).await?;
    state.metrics.received("api", "queued");
    state.wake.notify_one();
    Ok((StatusCode::ACCEPTED, axum::Json(json!({"task_id": id}))).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskQuery {
    /// At most this many, newest first [default 100, at most 1000].
    limit: Option<usize>,
    /// Only tasks received before this time (RFC 3339): the next page.
    before: Option<String>,
    /// Only tasks in this state (`pending`, `running`, `done`).
    state: Option<String>,
}

async fn list_tasks(
    Extract(state): Extract<Shared>,
    headers: HeaderMap,
    Query(q): Query<TaskQuery>,
) -> Result<Response, Failure> {
    caller(&state, &headers, "viewer")?;
    let mut items = state.inbox(|i| i.items()).await?;
    items.sort_by(|a, b| b.received_at.cmp(&a.received_at));
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let page: Vec<Value> = items
        .iter()
        .filter(|i| {
            q.before
                .as_deref()
                .is_none_or(|b| i.received_at.as_str() < b)
        })
        .filter(|i| {
            q.state
                .as_deref()
                .is_none_or(|s| serde_json::to_value(i.state).is_ok_and(|v| v == s))
        })
        .take(limit + 1)
        .map(item_view)
        .collect();
    let more = page.len() > limit;
    let page: Vec<Value> = page.into_iter().take(limit).collect();
    let next = more
        .then(|| {
            page.last()
                .and_then(|v| v["received_at"].as_str().map(str::to_string))
        })
        .flatten();
    Ok(axum::Json(json!({"tasks": page, "next_before": next})).into_response())
}

fn item_view(i: &Item) -> Value {
    json!({
        "task_id": i.id,
        "source": i.source,
        "key": i.key,
        "env": i.env,
        "received_at": i.received_at,
        "state": i.state,
        "status": i.status,
        "reason": i.reason,
        "repeats": i.repeats,
    })
}

async fn show_task(
    Extract(state): Extract<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Failure> {
    caller(&state, &headers, "viewer")?;
    let lookup = id.clone();
    let item = state.inbox(move |i| i.get(&lookup)).await?;
    let agent = state.agent();
    let path = agent.journal().path().to_path_buf();
    let key = agent.journal().key().clone();
    let records = tokio::task::spawn_blocking(move || read_journal(&path, &key))
        .await
        .map_err(|e| fail(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| fail(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let timeline: Vec<&warden::journal::JournalRecord> =
        records.iter().filter(|r| r.task_id == id).collect();
    if item.is_none() && timeline.is_empty() {
        return Err(fail(StatusCode::NOT_FOUND, format!("no task `{id}`")));
    }
    let summary = task_list(&records).into_iter().find(|t| t.task_id == id);
    Ok(axum::Json(json!({
        "task": item.as_ref().map(item_view),
        "summary": summary,
        "timeline": timeline,
    }))
    .into_response())
}

async fn list_approvals(
    Extract(state): Extract<Shared>,
    headers: HeaderMap,
) -> Result<Response, Failure> {
    caller(&state, &headers, "viewer")?;
    Ok(axum::Json(json!({"approvals": state.approvals.list()})).into_response())
}

async fn show_approval(
    Extract(state): Extract<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Failure> {
    caller(&state, &headers, "viewer")?;
    match state.approvals.get(&id) {
        Some(p) => Ok(axum::Json(p).into_response()),
        None => Err(fail(
            StatusCode::NOT_FOUND,
            format!("no pending approval `{id}`"),
        )),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Answer {
    approve: bool,
    #[serde(default)]
    reason: Option<String>,
}

async fn answer_approval(
    Extract(state): Extract<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, Failure> {
    let who = caller(&state, &headers, "approver")?;
    let answer: Answer = serde_json::from_slice(&body).map_err(|e| {
        fail(
            StatusCode::BAD_REQUEST,
            format!("expected {{\"approve\": true|false, \"reason\": …}}: {e}"),
        )
    })?;
    let reason = answer
        .reason
        .map(|r| r.chars().take(1000).collect::<String>());
    match state
        .approvals
        .answer(&id, &who, answer.approve, reason)
        .await
    {
        Ok(p) => {
            state.metrics.approvals_pending(state.approvals.len());
            Ok(axum::Json(json!({
                "id": p.id,
                "task_id": p.request.task_id,
                "step_id": p.request.step_id,
                "approved": answer.approve,
                "by": who.name,
                "note": "the approval policy (data.warden.approve) has the last word; see the task's timeline",
            }))
            .into_response())
        }
        Err(_) => Err(fail(
            StatusCode::NOT_FOUND,
            format!("no pending approval `{id}` (answered, expired, or never asked)"),
        )),
    }
}

#[derive(Deserialize)]
struct SimilarQuery {
    q: String,
    #[serde(default)]
    k: Option<usize>,
}

async fn similar(
    Extract(state): Extract<Shared>,
    headers: HeaderMap,
    Query(q): Query<SimilarQuery>,
) -> Result<Response, Failure> {
    caller(&state, &headers, "viewer")?;
    if q.q.len() > 4096 {
        return Err(fail(
            StatusCode::BAD_REQUEST,
            "`q` is longer than 4096 bytes",
        ));
    }
    let k = q.k.unwrap_or(5).clamp(1, 50);
    let agent = state.agent();
    let hits = tokio::task::spawn_blocking(move || agent.recall(&q.q, k))
        .await
        .map_err(|e| fail(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| fail(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let hits: Vec<Value> = hits
        .into_iter()
        .map(|h| {
            json!({
                "id": h.incident.id,
                "title": h.incident.title,
                "score": h.score,
                "resolution": h.incident.resolution,
                "cluster": h.cluster.map(|c| c.id),
            })
        })
        .collect();
    Ok(axum::Json(json!({"incidents": hits})).into_response())
}
