//! The pages, as maud templates: every spliced string is HTML-escaped by
//! maud, and every string from outside is also clipped to a size.

use maud::{DOCTYPE, Markup, html};
use serde_json::Value;
use warden::journal::{JournalRecord, VerifyReport, render_record};

use super::live::{clip, time_of};
use crate::approvals::Pending;
use crate::auth::Identity;

/// Table cells hold at most this many characters of outside text.
const CELL: usize = 240;
/// A detail holds at most this many.
const DETAIL: usize = 8 * 1024;

/// Who is looking, for the header and the forms.
pub(crate) struct Viewer<'a> {
    pub identity: &'a Identity,
    pub csrf: &'a str,
}

/// One task row, from the inbox.
pub(crate) struct TaskRow {
    pub id: String,
    pub state: String,
    pub status: Option<String>,
    pub reason: Option<String>,
    pub source: String,
    pub env: String,
    pub principal: String,
    pub received_at: String,
    pub what: String,
    pub repeats: u32,
}

/// A path segment, percent-encoded (ids come from outside too).
pub(crate) fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn page(title: &str, viewer: Option<&Viewer<'_>>, pending: usize, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · warden" }
                link rel="stylesheet" href="/ui/assets/style.css";
                script src="/ui/assets/app.js" defer {}
            }
            body {
                header {
                    a.brand href="/ui/tasks" { "warden" }
                    @if let Some(v) = viewer {
                        nav {
                            a href="/ui/tasks" { "Tasks" }
                            a href="/ui/approvals" {
                                "Approvals"
                                @if pending > 0 { " " span.count { (pending) } }
                            }
                            a href="/ui/journal" { "Journal" }
                            a href="/ui/incidents" { "Incidents" }
                        }
                        form.logout method="post" action="/ui/logout" {
                            span.who { (clip(&v.identity.name, 64)) " (" (v.identity.roles.join(", ")) ")" }
                            input type="hidden" name="csrf" value=(v.csrf);
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// The login form. `error` is ours, never the caller's text.
pub(crate) fn login(login_token: &str, error: Option<&str>) -> Markup {
    page(
        "Sign in",
        None,
        0,
        html! {
            h1 { "Sign in" }
            @if let Some(e) = error { p.error role="alert" { (e) } }
            form.login method="post" action="/ui/login" {
                label for="token" { "API token" }
                input #token type="password" name="token" autocomplete="off" required autofocus;
                input type="hidden" name="login_csrf" value=(login_token);
                button type="submit" { "Sign in" }
            }
            p.hint { "Paste a token from the service's [[tokens]]. The browser keeps only a session cookie; the token is not stored." }
        },
    )
}

/// A short error page.
pub(crate) fn error(viewer: Option<&Viewer<'_>>, title: &str, detail: &str) -> Markup {
    page(
        title,
        viewer,
        0,
        html! {
            h1 { (title) }
            p.error { (clip(detail, DETAIL)) }
            p { a href="/ui/tasks" { "Back to the tasks" } }
        },
    )
}

fn state_badge(state: &str, status: Option<&str>) -> Markup {
    let text = match status {
        Some(s) => format!("{state}: {s}"),
        None => state.to_string(),
    };
    let class = format!("badge {}", status.unwrap_or(state));
    html! { span #task-status class=(class) { (clip(&text, 64)) } }
}

/// The tasks, newest first.
pub(crate) fn tasks(viewer: &Viewer<'_>, pending: usize, rows: &[TaskRow], more: usize) -> Markup {
    page(
        "Tasks",
        Some(viewer),
        pending,
        html! {
            h1 { "Tasks" }
            @if pending > 0 {
                p.notice { a href="/ui/approvals" { (pending) " approval(s) waiting" } }
            }
            @if rows.is_empty() {
                p { "No tasks yet." }
            } @else {
                table.tasks {
                    thead { tr { th { "Task" } th { "State" } th { "What" } th { "Source" } th { "Env" } th { "Received" } } }
                    tbody {
                        @for r in rows {
                            tr {
                                td { a href={ "/ui/tasks/" (seg(&r.id)) } { (clip(&r.id, CELL)) } }
                                td { (state_badge(&r.state, r.status.as_deref())) }
                                td.what { (clip(&r.what, CELL)) @if r.repeats > 0 { " (+" (r.repeats) ")" } }
                                td { (clip(&r.source, CELL)) }
                                td { (clip(&r.env, CELL)) }
                                td { time { (clip(&r.received_at, 64)) } }
                            }
                        }
                    }
                }
                @if more > 0 { p.hint { (more) " older task(s) not shown." } }
            }
        },
    )
}

/// One task: its inbox entry, its pending approvals, and its timeline,
/// which the page's script keeps up to date over server-sent events.
pub(crate) fn task(
    viewer: &Viewer<'_>,
    pending_total: usize,
    id: &str,
    row: Option<&TaskRow>,
    approvals: &[Pending],
    records: &[&JournalRecord],
) -> Markup {
    let last = records.last().map(|r| r.seq);
    let done = row.is_some_and(|r| r.state == "done");
    let stream = match last {
        Some(seq) => format!("/ui/tasks/{}/events?after={seq}", seg(id)),
        None => format!("/ui/tasks/{}/events", seg(id)),
    };
    page(
        "Task",
        Some(viewer),
        pending_total,
        html! {
            h1 { "Task " code { (clip(id, CELL)) } }
            @if let Some(r) = row {
                dl.facts {
                    dt { "State" } dd { (state_badge(&r.state, r.status.as_deref())) }
                    @if let Some(reason) = &r.reason { dt { "Why" } dd { (clip(reason, DETAIL)) } }
                    dt { "What" } dd { (clip(&r.what, DETAIL)) }
                    dt { "Source" } dd { (clip(&r.source, CELL)) }
                    dt { "Env" } dd { (clip(&r.env, CELL)) }
                    dt { "On behalf of" } dd { (clip(&r.principal, CELL)) }
                    dt { "Received" } dd { (clip(&r.received_at, 64)) }
                }
            } @else {
                p.hint { "Not in this service's inbox (started elsewhere); the journal has its timeline." }
            }
            @if !approvals.is_empty() {
                section #waiting {
                    h2 { "Waiting for approval" }
                    ul.approvals {
                        @for p in approvals {
                            li data-step=(clip(&p.request.step_id, 256)) {
                                a href={ "/ui/approvals/" (seg(&p.id)) } {
                                    "Step " code { (clip(&p.request.step_id, CELL)) } " runs " code { (clip(&p.request.tool, CELL)) }
                                }
                                " — expires " (clip(&p.expires_at, 64))
                            }
                        }
                    }
                }
            }
            h2 { "Timeline " span #live.live { @if done { "finished" } @else { "" } } }
            ol #timeline.timeline data-stream=[(!done).then_some(stream.as_str())] {
                @for r in records { (record_item(r)) }
            }
            @if records.is_empty() { p #timeline-empty.hint { "Nothing journaled yet." } }
        },
    )
}

fn record_item(r: &JournalRecord) -> Markup {
    let kind = r.event.kind();
    html! {
        li data-seq=(r.seq) class={ "kind-" (kind) } {
            time { (time_of(&r.ts)) }
            " "
            span.kind { (kind) }
            pre { (clip(&render_record(r), DETAIL)) }
        }
    }
}

/// The approvals waiting.
pub(crate) fn approvals(viewer: &Viewer<'_>, list: &[Pending]) -> Markup {
    page(
        "Approvals",
        Some(viewer),
        list.len(),
        html! {
            h1 { "Waiting for approval" }
            @if list.is_empty() {
                p { "Nothing waits for approval." }
            } @else {
                table.approvals {
                    thead { tr { th { "Task" } th { "Step" } th { "Tool" } th { "Effect" } th { "Env" } th { "Why the policy asks" } th { "Expires" } th {} } }
                    tbody {
                        @for p in list {
                            tr {
                                td { a href={ "/ui/tasks/" (seg(&p.request.task_id)) } { (clip(&p.request.task_id, CELL)) } }
                                td { (clip(&p.request.step_id, CELL)) }
                                td { (clip(&p.request.tool, CELL)) }
                                td { (clip(&p.request.effect, CELL)) }
                                td { (clip(&p.request.env, CELL)) }
                                td { ul { @for reason in p.request.reasons.iter().take(10) { li { (clip(reason, CELL)) } } } }
                                td { (clip(&p.expires_at, 64)) }
                                td { a.button href={ "/ui/approvals/" (seg(&p.id)) } { "Review" } }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// One approval, with Approve and Reject for an approver.
pub(crate) fn approval(viewer: &Viewer<'_>, pending_total: usize, p: &Pending) -> Markup {
    let r = &p.request;
    let args = serde_json::to_string_pretty(&r.args).unwrap_or_else(|_| r.args.to_string());
    page(
        "Approval",
        Some(viewer),
        pending_total,
        html! {
            h1 { "Approve " code { (clip(&r.tool, CELL)) } "?" }
            dl.facts {
                dt { "Task" } dd { a href={ "/ui/tasks/" (seg(&r.task_id)) } { (clip(&r.task_id, CELL)) } }
                dt { "Step" } dd { (clip(&r.step_id, CELL)) }
                dt { "Effect" } dd { (clip(&r.effect, CELL)) }
                dt { "Env" } dd { (clip(&r.env, CELL)) }
                dt { "On behalf of" } dd { (clip(&r.principal, CELL)) }
                dt { "Why the step" } dd { (clip(&r.why, DETAIL)) }
                dt { "Why the policy asks" } dd { ul { @for reason in r.reasons.iter().take(20) { li { (clip(reason, DETAIL)) } } } }
                dt { "Asked" } dd { (clip(&p.asked_at, 64)) }
                dt { "Expires" } dd { (clip(&p.expires_at, 64)) }
            }
            h2 { "Arguments" }
            pre.args { (clip(&args, DETAIL)) }
            @if viewer.identity.may("approver") {
                form.answer method="post" action={ "/ui/approvals/" (seg(&p.id)) } {
                    input type="hidden" name="csrf" value=(viewer.csrf);
                    label for="reason" { "Reason (optional, journaled)" }
                    textarea #reason name="reason" maxlength="1000" rows="2" {}
                    div.buttons {
                        button #approve.approve type="submit" name="decision" value="approve" { "Approve" }
                        button #reject.reject type="submit" name="decision" value="reject" { "Reject" }
                    }
                    p.hint { "You answer as " (clip(&viewer.identity.name, 64)) "; the approval policy has the last word." }
                }
            } @else {
                p.hint { "Answering needs the approver role." }
            }
        },
    )
}

/// The journal's verification.
pub(crate) fn journal(
    viewer: &Viewer<'_>,
    pending: usize,
    path: &str,
    report: Result<&VerifyReport, &str>,
) -> Markup {
    page(
        "Journal",
        Some(viewer),
        pending,
        html! {
            h1 { "Journal" }
            p { code { (clip(path, CELL)) } }
            @match report {
                Err(e) => p.error { "Could not verify: " (clip(e, DETAIL)) },
                Ok(r) => {
                    @if r.problems.is_empty() {
                        p #verify.ok { "Intact: " (r.records) " record(s) of " (r.tasks) " task(s); every MAC and link checks out." }
                    } @else {
                        p #verify.bad { (r.problems.len()) " problem(s) in " (r.records) " record(s)." }
                        table.problems {
                            thead { tr { th { "Line" } th { "Record" } th { "Kind" } th { "Detail" } } }
                            tbody {
                                @for p in r.problems.iter().take(200) {
                                    tr {
                                        td { (p.line) }
                                        td { @if let Some(s) = p.seq { (s) } }
                                        td { (kind_name(&p.kind)) }
                                        td { (clip(&p.detail, DETAIL)) }
                                    }
                                }
                            }
                        }
                    }
                    @for line in r.recovered.iter().take(50) { p.hint { (clip(line, DETAIL)) } }
                    p.hint { "Head: " (r.head.records) " record(s), MAC " code { (clip(&r.head.mac, 16)) } ", at " (clip(&r.head.at, 64)) }
                }
            }
        },
    )
}

fn kind_name(kind: &warden::journal::ProblemKind) -> String {
    match serde_json::to_value(kind) {
        Ok(Value::String(s)) => s,
        _ => format!("{kind:?}"),
    }
}

/// Incident clusters, largest first (`None`: no incident memory).
pub(crate) fn incidents(
    viewer: &Viewer<'_>,
    pending: usize,
    clusters: Result<Option<&[warden::memory::Cluster]>, &str>,
) -> Markup {
    page(
        "Incidents",
        Some(viewer),
        pending,
        html! {
            h1 { "Incident clusters" }
            @match clusters {
                Err(e) => p.error { "Could not read the incident memory: " (clip(e, DETAIL)) },
                Ok(None) => p { "Incident memory is not configured (" code { "[agent] memory" } " in warden.toml)." },
                Ok(Some([])) => p { "No clusters yet." },
                Ok(Some(list)) => table.clusters {
                    thead { tr { th { "Cluster" } th { "Size" } th { "Terms" } th { "First seen" } th { "Last seen" } th { "Closest incidents" } } }
                    tbody {
                        @for c in list.iter().take(500) {
                            tr {
                                td { (c.id) }
                                td { (c.size) }
                                td { (clip(&c.label.join(", "), CELL)) }
                                td { @if let Some(t) = &c.first_seen { (t.to_string()) } }
                                td { @if let Some(t) = &c.last_seen { (t.to_string()) } }
                                td { (clip(&c.representatives.join(", "), CELL)) }
                            }
                        }
                    }
                },
            }
        },
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    fn alice() -> Identity {
        Identity {
            name: "alice".into(),
            roles: vec!["viewer".into()],
        }
    }

    #[test]
    fn outside_text_in_a_task_row_is_escaped_and_clipped() {
        let who = alice();
        let viewer = Viewer {
            identity: &who,
            csrf: "c0ffee",
        };
        let row = TaskRow {
            id: "t\"><script>alert(1)</script>".into(),
            state: "done".into(),
            status: Some("resolved".into()),
            reason: None,
            source: "generic".into(),
            env: "<b>prod</b>".into(),
            principal: "x".into(),
            received_at: "2026-12-05T10:00:00Z".into(),
            what: format!("<img src=x onerror=alert(1)>{}", "a".repeat(1000)),
            repeats: 0,
        };
        let html = tasks(&viewer, 0, &[row], 0).into_string();
        assert_eq!(html.matches("<script").count(), 1, "only the asset: {html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(
            html.contains("&lt;img src=x onerror=alert(1)&gt;"),
            "{html}"
        );
        assert!(html.contains("&lt;b&gt;prod&lt;/b&gt;"), "{html}");
        // The id is escaped as text and percent-encoded in the link.
        assert!(
            html.contains("href=\"/ui/tasks/t%22%3E%3Cscript%3Ealert%281%29%3C%2Fscript%3E\""),
            "{html}"
        );
        assert!(!html.contains(&"a".repeat(CELL + 1)), "clipped");
    }

    #[test]
    fn a_path_segment_keeps_only_unreserved_bytes() {
        assert_eq!(seg("am-1_a.b~c"), "am-1_a.b~c");
        assert_eq!(seg("a/b?c#d é"), "a%2Fb%3Fc%23d%20%C3%A9");
    }

    #[test]
    fn cluster_terms_and_ids_are_escaped() {
        let who = alice();
        let viewer = Viewer {
            identity: &who,
            csrf: "c0ffee",
        };
        let cluster: warden::memory::Cluster = serde_json::from_value(serde_json::json!({
            "id": 7, "label": ["<svg onload=alert(1)>", "disk"], "size": 2,
            "first_seen": null, "last_seen": null, "representatives": ["d1", "<b>d2</b>"],
        }))
        .unwrap();
        let html = incidents(&viewer, 0, Ok(Some(&[cluster]))).into_string();
        assert!(html.contains("&lt;svg onload=alert(1)&gt;, disk"), "{html}");
        assert!(html.contains("d1, &lt;b&gt;d2&lt;/b&gt;"), "{html}");
        let none = incidents(&viewer, 0, Ok(None)).into_string();
        assert!(none.contains("Incident memory is not configured"), "{none}");
    }
}
