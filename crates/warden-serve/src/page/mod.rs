//! The live page: server-rendered HTML under `/ui`, behind the API's
//! tokens. A browser signs in by pasting a token once (see [`session`]);
//! pages list tasks, show a task's timeline updating live over server-sent
//! events, list approvals with Approve and Reject (answered through the
//! same [`Approvals::answer`](crate::approvals::Approvals::answer) as the
//! API, as the session's identity), the journal's verification, and the
//! incident clusters.
//!
//! Every response carries a strict Content-Security-Policy (scripts and
//! styles only from `/ui/assets`, no inline code), `X-Frame-Options: DENY`
//! and `Cache-Control: no-store`; every string from outside is escaped by
//! the templates; every state-changing form carries a CSRF token.

mod config;
mod live;
mod session;
mod views;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State as Extract};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::Markup;
use serde::Deserialize;

pub use config::UiSection;
use live::Live;
use session::{Session, Sessions};
use views::{TaskRow, Viewer};

use crate::inbox::{Item, ItemState};
use crate::server::State;

/// The most a form body may hold.
const MAX_FORM: usize = 16 * 1024;
/// The most tasks the list shows.
const MAX_ROWS: usize = 500;

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// What the page handlers share.
#[derive(Debug)]
struct Page {
    state: Arc<State>,
    sessions: Sessions,
    live: Live,
}

type Shared = Arc<Page>;

/// The `/ui` routes (none when `[ui] enabled = false`), for the API router
/// to merge.
pub(crate) fn router<S: Clone + Send + Sync + 'static>(state: Arc<State>) -> Router<S> {
    let ui = state.config.ui.clone();
    if !ui.enabled {
        return Router::new();
    }
    let tls = state.config.listen.tls_cert.is_some();
    let page = Arc::new(Page {
        sessions: Sessions::new(ui.session_ttl, ui.max_sessions, tls),
        live: Live::start(&state, ui.max_streams),
        state,
    });
    Router::new()
        .route("/ui", get(|| async { Redirect::to("/ui/tasks") }))
        .route("/ui/", get(|| async { Redirect::to("/ui/tasks") }))
        .route("/ui/login", get(login_form).post(login))
        .route("/ui/logout", post(logout))
        .route("/ui/tasks", get(tasks))
        .route("/ui/tasks/{id}", get(task))
        .route("/ui/tasks/{id}/events", get(events))
        .route("/ui/approvals", get(approvals))
        .route("/ui/approvals/{id}", get(approval).post(answer))
        .route("/ui/journal", get(journal))
        .route("/ui/incidents", get(incidents))
        .route("/ui/assets/app.js", get(script))
        .route("/ui/assets/style.css", get(style))
        .layer(axum::middleware::map_response(protect))
        .with_state(page)
}

/// The headers every page response carries.
async fn protect(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn html(status: StatusCode, markup: Markup) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response()
}

fn to_login() -> Response {
    Redirect::to("/ui/login").into_response()
}

impl Page {
    fn viewer<'a>(&self, session: &'a Session) -> Viewer<'a> {
        Viewer {
            identity: &session.identity,
            csrf: &session.csrf,
        }
    }

    /// An error page for a signed-in viewer.
    fn failure(
        &self,
        session: &Session,
        status: StatusCode,
        title: &str,
        detail: &str,
    ) -> Response {
        html(
            status,
            views::error(Some(&self.viewer(session)), title, detail),
        )
    }
}

/// The form fields of a `application/x-www-form-urlencoded` body.
fn form(body: &[u8]) -> Option<Vec<(String, String)>> {
    if body.len() > MAX_FORM {
        return None;
    }
    Some(
        form_urlencoded::parse(body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
    )
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

async fn login_form(Extract(page): Extract<Shared>) -> Response {
    let token = session::random_hex();
    let mut r = html(StatusCode::OK, views::login(&token, None));
    set_cookie(&mut r, &page.sessions.set_login(&token));
    r
}

fn set_cookie(r: &mut Response, cookie: &str) {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
}

async fn login(Extract(page): Extract<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let again = |status: StatusCode, why: &str| {
        let token = session::random_hex();
        let mut r = html(status, views::login(&token, Some(why)));
        set_cookie(&mut r, &page.sessions.set_login(&token));
        r
    };
    let Some(fields) = form(&body) else {
        return again(StatusCode::PAYLOAD_TOO_LARGE, "The form is too large.");
    };
    if !page
        .sessions
        .login_ok(&headers, field(&fields, "login_csrf"))
    {
        return again(
            StatusCode::FORBIDDEN,
            "The sign-in form expired or did not come from this page; try again.",
        );
    }
    let Some(identity) = page.state.secrets.token(field(&fields, "token").trim()) else {
        tracing::info!("a browser sign-in with an unknown token was refused");
        return again(StatusCode::UNAUTHORIZED, "That token is not valid.");
    };
    tracing::info!(who = %identity.name, "signed in to the page");
    let (id, _) = page.sessions.create(identity);
    let mut r = Redirect::to("/ui/tasks").into_response();
    set_cookie(&mut r, &page.sessions.set_session(&id));
    set_cookie(&mut r, &page.sessions.clear_login());
    r
}

async fn logout(Extract(page): Extract<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(session) = page.sessions.get(&headers) else {
        return to_login();
    };
    let fields = form(&body).unwrap_or_default();
    if !session.csrf_ok(field(&fields, "csrf")) {
        return page.failure(
            &session,
            StatusCode::FORBIDDEN,
            "Refused",
            "The form did not carry this session's CSRF token.",
        );
    }
    page.sessions.end(&headers);
    let mut r = to_login();
    set_cookie(&mut r, &page.sessions.clear_session());
    r
}

fn row(i: &Item) -> TaskRow {
    TaskRow {
        id: i.id.clone(),
        state: match i.state {
            ItemState::Pending => "pending",
            ItemState::Running => "running",
            ItemState::Done => "done",
        }
        .to_string(),
        status: i.status.clone(),
        reason: i.reason.clone(),
        source: i.source.clone(),
        env: i.env.clone(),
        principal: i.principal.clone(),
        received_at: i.received_at.clone(),
        what: what(i),
        repeats: i.repeats,
    }
}

/// In words: the goal, or the goal the agent makes of the alert.
fn what(i: &Item) -> String {
    if let Some(goal) = i.body.get("goal").and_then(|g| g.as_str()) {
        return goal.to_string();
    }
    let alert = if i.source == "api" {
        &i.body["alert"]
    } else {
        &i.body
    };
    warden::Task::from_webhook(&i.id, alert)
        .map(|t| t.goal)
        .unwrap_or_else(|_| "(an alert the agent cannot read)".into())
}

async fn tasks(Extract(page): Extract<Shared>, headers: HeaderMap) -> Response {
    let Some(session) = page.sessions.get(&headers) else {
        return to_login();
    };
    let items = match page.state.inbox(|i| i.items()).await {
        Ok(items) => items,
        Err(e) => {
            return page.failure(
                &session,
                StatusCode::INTERNAL_SERVER_ERROR,
                "The inbox failed",
                &e.to_string(),
            );
        }
    };
    let mut rows: Vec<TaskRow> = items.iter().map(row).collect();
    rows.sort_by(|a, b| b.received_at.cmp(&a.received_at));
    let more = rows.len().saturating_sub(MAX_ROWS);
    rows.truncate(MAX_ROWS);
    let pending = page.state.approvals.len();
    html(
        StatusCode::OK,
        views::tasks(&page.viewer(&session), pending, &rows, more),
    )
}

async fn task(
    Extract(page): Extract<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let Some(session) = page.sessions.get(&headers) else {
        return to_login();
    };
    let lookup = id.clone();
    let item = match page.state.inbox(move |i| i.get(&lookup)).await {
        Ok(item) => item,
        Err(e) => {
            return page.failure(
                &session,
                StatusCode::INTERNAL_SERVER_ERROR,
                "The inbox failed",
                &e.to_string(),
            );
        }
    };
    let records = match read_all(&page.state).await {
        Ok(r) => r,
        Err(e) => {
            return page.failure(
                &session,
                StatusCode::INTERNAL_SERVER_ERROR,
                "The journal could not be read",
                &e,
            );
        }
    };
    let timeline: Vec<&warden::journal::JournalRecord> =
        records.iter().filter(|r| r.task_id == id).collect();
    if item.is_none() && timeline.is_empty() {
        return page.failure(
            &session,
            StatusCode::NOT_FOUND,
            "No such task",
            &format!("No task `{id}` in the inbox or the journal."),
        );
    }
    let all = page.state.approvals.list();
    let waiting: Vec<_> = all
        .iter()
        .filter(|p| p.request.task_id == id)
        .cloned()
        .collect();
    let row = item.as_ref().map(row);
    html(
        StatusCode::OK,
        views::task(
            &page.viewer(&session),
            all.len(),
            &id,
            row.as_ref(),
            &waiting,
            &timeline,
        ),
    )
}

async fn read_all(state: &State) -> Result<Vec<warden::journal::JournalRecord>, String> {
    let agent = state.agent();
    let path = agent.journal().path().to_path_buf();
    let key = agent.journal().key().clone();
    tokio::task::spawn_blocking(move || warden::journal::read_journal(&path, &key))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}

#[derive(Deserialize)]
struct After {
    after: Option<u64>,
}

async fn events(
    Extract(page): Extract<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<After>,
) -> Response {
    if page.sessions.get(&headers).is_none() {
        return (StatusCode::UNAUTHORIZED, "sign in first").into_response();
    }
    let Some(slot) = page.live.slot() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "30")],
            "too many live timelines are open; try again later",
        )
            .into_response();
    };
    // A reconnecting EventSource says where it got to.
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .or(q.after);
    page.live
        .stream(&page.state, id, after, slot)
        .into_response()
}

async fn approvals(Extract(page): Extract<Shared>, headers: HeaderMap) -> Response {
    let Some(session) = page.sessions.get(&headers) else {
        return to_login();
    };
    let list = page.state.approvals.list();
    html(
        StatusCode::OK,
        views::approvals(&page.viewer(&session), &list),
    )
}

async fn approval(
    Extract(page): Extract<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let Some(session) = page.sessions.get(&headers) else {
        return to_login();
    };
    match page.state.approvals.get(&id) {
        Some(p) => html(
            StatusCode::OK,
            views::approval(&page.viewer(&session), page.state.approvals.len(), &p),
        ),
        None => page.failure(
            &session,
            StatusCode::NOT_FOUND,
            "No such approval",
            "Nothing waits under that id: it was answered, it expired, or it was never asked.",
        ),
    }
}

async fn answer(
    Extract(page): Extract<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let Some(session) = page.sessions.get(&headers) else {
        return to_login();
    };
    let refuse = |status: StatusCode, why: &str| page.failure(&session, status, "Refused", why);
    let Some(fields) = form(&body) else {
        return refuse(StatusCode::PAYLOAD_TOO_LARGE, "The form is too large.");
    };
    if !session.csrf_ok(field(&fields, "csrf")) {
        tracing::warn!(who = %session.identity.name, "an approval form without this session's CSRF token was refused");
        return refuse(
            StatusCode::FORBIDDEN,
            "The form did not carry this session's CSRF token.",
        );
    }
    if !session.identity.may("approver") {
        return refuse(StatusCode::FORBIDDEN, "Answering needs the approver role.");
    }
    let approve = match field(&fields, "decision") {
        "approve" => true,
        "reject" => false,
        _ => return refuse(StatusCode::BAD_REQUEST, "Choose Approve or Reject."),
    };
    let reason = Some(field(&fields, "reason").trim())
        .filter(|r| !r.is_empty())
        .map(|r| r.chars().take(1000).collect::<String>());
    match page
        .state
        .approvals
        .answer(&id, &session.identity, approve, reason)
        .await
    {
        Ok(p) => {
            page.state
                .metrics
                .approvals_pending(page.state.approvals.len());
            tracing::info!(who = %session.identity.name, approval = %p.id, approve, "answered on the page");
            Redirect::to(&format!("/ui/tasks/{}", views::seg(&p.request.task_id))).into_response()
        }
        Err(_) => page.failure(
            &session,
            StatusCode::NOT_FOUND,
            "No such approval",
            "Nothing waits under that id: it was answered, it expired, or it was never asked.",
        ),
    }
}

async fn journal(Extract(page): Extract<Shared>, headers: HeaderMap) -> Response {
    let Some(session) = page.sessions.get(&headers) else {
        return to_login();
    };
    let agent = page.state.agent();
    let path = agent.journal().path().to_path_buf();
    let key = agent.journal().key().clone();
    let shown = path.display().to_string();
    let report = tokio::task::spawn_blocking(move || {
        warden::journal::verify_journal(&path, &key, None).map_err(|e| e.to_string())
    })
    .await
    .unwrap_or_else(|e| Err(e.to_string()));
    let pending = page.state.approvals.len();
    let viewer = page.viewer(&session);
    let markup = match &report {
        Ok(r) => views::journal(&viewer, pending, &shown, Ok(r)),
        Err(e) => views::journal(&viewer, pending, &shown, Err(e)),
    };
    html(StatusCode::OK, markup)
}

async fn incidents(Extract(page): Extract<Shared>, headers: HeaderMap) -> Response {
    let Some(session) = page.sessions.get(&headers) else {
        return to_login();
    };
    let agent = page.state.agent();
    let clusters = tokio::task::spawn_blocking(move || agent.clusters().map_err(|e| e.to_string()))
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
    let pending = page.state.approvals.len();
    let viewer = page.viewer(&session);
    let markup = match &clusters {
        Ok(c) => views::incidents(&viewer, pending, Ok(c.as_deref())),
        Err(e) => views::incidents(&viewer, pending, Err(e)),
    };
    html(StatusCode::OK, markup)
}

async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("assets/app.js"),
    )
        .into_response()
}

async fn style() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("assets/style.css"),
    )
        .into_response()
}
