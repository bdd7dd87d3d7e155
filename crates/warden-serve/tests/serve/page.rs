//! The live page over HTTP, as a browser would use it: sign-in, cookies,
//! CSRF, escaping, the live timeline and its bounds.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{ADMIN, ALICE, Harness, Options, VIEWER, task_of};

/// A client that shows redirects instead of following them, trusting the
/// harness's test CA under TLS.
pub fn browser(h: &Harness) -> reqwest::Client {
    let ca = h.dir.path().join("test-ca.pem");
    let ca = ca.exists().then_some(ca);
    reqwest::Client::builder()
        .tls_backend_preconfigured(warden_tls::client_config(ca.as_deref()).unwrap())
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// The `value` of the first `<input name="{name}">` in `html`.
fn input(html: &str, name: &str) -> String {
    let at = html
        .find(&format!("name=\"{name}\" value=\""))
        .unwrap_or_else(|| panic!("no {name} field in {html}"));
    let rest = &html[at + name.len() + 15..];
    rest[..rest.find('"').unwrap()].to_string()
}

/// `name=value` of every `Set-Cookie`.
fn set_cookies(r: &reqwest::Response) -> Vec<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

fn pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_string()
}

/// What signing in with `token` answered: status, `Set-Cookie`s, body.
async fn sign_in(h: &Harness, c: &reqwest::Client, token: &str) -> (u16, Vec<String>, String) {
    let form = c.get(h.url("/ui/login")).send().await.unwrap();
    assert_eq!(form.status(), 200);
    let login_cookie = pair(&set_cookies(&form)[0]);
    let html = form.text().await.unwrap();
    let login_csrf = input(&html, "login_csrf");
    let r = c
        .post(h.url("/ui/login"))
        .header("cookie", login_cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            form_urlencoded::Serializer::new(String::new())
                .append_pair("token", token)
                .append_pair("login_csrf", &login_csrf)
                .finish(),
        )
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let cookies = set_cookies(&r);
    (status, cookies, r.text().await.unwrap())
}

/// A signed-in browser: its `Cookie` header and its CSRF token.
pub struct Browser {
    pub client: reqwest::Client,
    pub cookie: String,
    pub csrf: String,
}

impl Browser {
    pub async fn sign_in(h: &Harness, token: &str) -> Browser {
        let client = browser(h);
        let (status, cookies, _) = sign_in(h, &client, token).await;
        assert_eq!(status, 303);
        let session = cookies
            .iter()
            .find(|c| c.contains("warden_session="))
            .unwrap();
        let cookie = pair(session);
        let (_, html) = Browser::get_with(&client, &cookie, &h.url("/ui/tasks")).await;
        let csrf = input(&html, "csrf");
        Browser {
            client,
            cookie,
            csrf,
        }
    }

    async fn get_with(c: &reqwest::Client, cookie: &str, url: &str) -> (u16, String) {
        let r = c.get(url).header("cookie", cookie).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    pub async fn get(&self, h: &Harness, path: &str) -> (u16, String) {
        Browser::get_with(&self.client, &self.cookie, &h.url(path)).await
    }

    pub async fn post(
        &self,
        h: &Harness,
        path: &str,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut form = form_urlencoded::Serializer::new(String::new());
        for (k, v) in fields {
            form.append_pair(k, v);
        }
        self.client
            .post(h.url(path))
            .header("cookie", &self.cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.finish())
            .send()
            .await
            .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn signing_in_sets_an_http_only_strict_session_cookie_and_pages_are_locked_down() {
    let h = Harness::start(Options::default()).await;
    let c = browser(&h);
    // Without a session every page sends the browser to sign in.
    for path in ["/ui/tasks", "/ui/approvals", "/ui/journal", "/ui/incidents"] {
        let r = c.get(h.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 303, "{path}");
        assert_eq!(r.headers()["location"], "/ui/login");
    }
    let (status, cookies, _) = sign_in(&h, &c, VIEWER).await;
    assert_eq!(status, 303);
    let session = cookies
        .iter()
        .find(|c| c.starts_with("warden_session="))
        .unwrap();
    let id = pair(session)["warden_session=".len()..].to_string();
    assert_eq!(id.len(), 32, "128 random bits: {session}");
    assert!(session.contains("; HttpOnly"), "{session}");
    assert!(session.contains("; SameSite=Strict"), "{session}");
    assert!(session.contains("; Path=/"), "{session}");
    assert!(session.contains("; Max-Age=28800"), "{session}");
    assert!(!session.contains("Secure"), "plain HTTP: {session}");
    // The login form's cookie is cleared.
    assert!(
        cookies.iter().any(|c| c.starts_with("warden_login=;")),
        "{cookies:?}"
    );

    let r = c
        .get(h.url("/ui/tasks"))
        .header("cookie", pair(session))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let headers = r.headers().clone();
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["cache-control"], "no-store");
    let html = r.text().await.unwrap();
    assert!(html.contains("val (viewer)"), "{html}");
    // No inline script: the only script is the asset.
    assert_eq!(html.matches("<script").count(), 1, "{html}");
    assert!(html.contains("<script src=\"/ui/assets/app.js\" defer></script>"));

    // The session is not an API credential.
    let r = c
        .get(h.url("/v1/tasks"))
        .header("cookie", pair(session))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn under_tls_the_session_cookie_is_secure_and_host_prefixed() {
    let h = Harness::start(Options {
        tls: true,
        ..Options::default()
    })
    .await;
    assert!(h.base.starts_with("https://"));
    let c = browser(&h);
    let (status, cookies, _) = sign_in(&h, &c, VIEWER).await;
    assert_eq!(status, 303);
    let session = cookies
        .iter()
        .find(|c| c.starts_with("__Host-warden_session="))
        .unwrap_or_else(|| panic!("{cookies:?}"));
    assert!(session.contains("; Secure"), "{session}");
    assert!(session.contains("; HttpOnly; SameSite=Strict"), "{session}");
    let r = c
        .get(h.url("/ui/tasks"))
        .header("cookie", pair(session))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The plain name does not count under TLS.
    let plain = pair(session).replacen("__Host-", "", 1);
    let r = c
        .get(h.url("/ui/tasks"))
        .header("cookie", plain)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_token_or_a_forged_cookie_does_not_sign_in() {
    let h = Harness::start(Options::default()).await;
    let c = browser(&h);
    let (status, cookies, html) = sign_in(&h, &c, "not-a-token-0123456789abcdef").await;
    assert_eq!(status, 401);
    assert!(html.contains("That token is not valid."), "{html}");
    assert!(
        !cookies.iter().any(|c| c.contains("warden_session=")),
        "{cookies:?}"
    );
    // A receiver's secret is not an API token either.
    let (status, _, _) = sign_in(&h, &c, crate::support::AM_TOKEN).await;
    assert_eq!(status, 401);
    // A made-up session id gets nothing.
    let r = c
        .get(h.url("/ui/tasks"))
        .header("cookie", "warden_session=0123456789abcdef0123456789abcdef")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sign_in_form_posted_from_elsewhere_is_refused() {
    let h = Harness::start(Options::default()).await;
    let c = browser(&h);
    // A cross-site form has neither our login cookie nor its value.
    let r = c
        .post(h.url("/ui/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "token={ADMIN}&login_csrf=0123456789abcdef0123456789abcdef"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(
        !set_cookies(&r)
            .iter()
            .any(|c| c.contains("warden_session="))
    );
    // Our cookie with another value fails too.
    let r = c
        .post(h.url("/ui/login"))
        .header("cookie", "warden_login=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "token={ADMIN}&login_csrf=bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_alert_whose_summary_is_markup_shows_as_text() {
    let h = Harness::start(Options::default()).await;
    let evil = "<script>alert(\"pwned\")</script><img src=x onerror=alert(1)>";
    let mut alert = h.checkout.alert("xss-1", "firing");
    alert["alerts"][0]["annotations"]["summary"] = json!(evil);
    alert["alerts"][0]["labels"]["service"] = json!("<b>checkout</b>");
    let (s, answer) = h.alert(&alert).await;
    assert_eq!(s, 202, "{answer}");
    let task = task_of(&answer);
    h.done(&task).await;
    let b = Browser::sign_in(&h, VIEWER).await;
    for path in ["/ui/tasks".to_string(), format!("/ui/tasks/{task}")] {
        let (status, html) = b.get(&h, &path).await;
        assert_eq!(status, 200, "{path}");
        assert!(
            html.contains("&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"),
            "{path}: {html}"
        );
        assert!(!html.contains("<script>alert"), "{path}");
        assert!(!html.contains("<img src=x"), "{path}");
        assert_eq!(html.matches("<script").count(), 1, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_approval_form_without_the_sessions_csrf_token_is_refused() {
    let h = Harness::start(Options {
        env: "prod",
        ..Options::default()
    })
    .await;
    let (_, answer) = h.alert(&h.checkout.alert("page-csrf", "firing")).await;
    let task = task_of(&answer);
    let id = h.pending_approval().await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/ui/approvals/{id}");
    let alice = Browser::sign_in(&h, ALICE).await;
    let other = Browser::sign_in(&h, ADMIN).await;
    assert_ne!(alice.csrf, other.csrf);

    let (status, html) = alice.get(&h, &path).await;
    assert_eq!(status, 200);
    assert!(html.contains("id=\"approve\""), "{html}");
    for csrf in ["", "0123456789abcdef0123456789abcdef", other.csrf.as_str()] {
        let r = alice
            .post(&h, &path, &[("csrf", csrf), ("decision", "approve")])
            .await;
        assert_eq!(r.status(), 403, "csrf {csrf:?}");
    }
    // A viewer with a valid token still lacks the role.
    let val = Browser::sign_in(&h, VIEWER).await;
    let (_, html) = val.get(&h, &path).await;
    assert!(!html.contains("id=\"approve\""), "no buttons for a viewer");
    let r = val
        .post(&h, &path, &[("csrf", &val.csrf), ("decision", "approve")])
        .await;
    assert_eq!(r.status(), 403);
    // None of that answered it.
    let (_, list) = h.get("/v1/approvals", VIEWER).await;
    assert_eq!(list["approvals"][0]["id"], id.as_str());

    let r = alice
        .post(
            &h,
            &path,
            &[
                ("csrf", &alice.csrf),
                ("decision", "approve"),
                ("reason", "safe <restart>"),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"],
        format!("/ui/tasks/{task}").as_str()
    );
    let done = h.done(&task).await;
    assert_eq!(done["task"]["status"], "resolved", "{done}");
    let given: Vec<_> = h
        .records(&task)
        .into_iter()
        .filter_map(|r| match r.event {
            warden::journal::JournalEvent::Approval(a) => Some(a),
            _ => None,
        })
        .collect();
    assert_eq!(given[0].approver, "alice");
    assert_eq!(given[0].note.as_deref(), Some("safe <restart>"));
    // Answered once: the form finds nothing the second time.
    let r = alice
        .post(&h, &path, &[("csrf", &alice.csrf), ("decision", "reject")])
        .await;
    assert_eq!(r.status(), 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn signing_out_ends_the_session_and_needs_the_csrf_token() {
    let h = Harness::start(Options::default()).await;
    let b = Browser::sign_in(&h, VIEWER).await;
    let r = b.post(&h, "/ui/logout", &[("csrf", "")]).await;
    assert_eq!(r.status(), 403);
    assert_eq!(b.get(&h, "/ui/tasks").await.0, 200);
    let r = b.post(&h, "/ui/logout", &[("csrf", &b.csrf)]).await;
    assert_eq!(r.status(), 303);
    assert!(set_cookies(&r)[0].starts_with("warden_session=; Path=/; Max-Age=0"));
    // The old cookie is dead server-side, whatever the browser keeps.
    assert_eq!(b.get(&h, "/ui/tasks").await.0, 303);
}

/// Read server-sent events from `r` until `want` matches one (bounded).
async fn read_events(
    r: &mut reqwest::Response,
    within: Duration,
    want: impl Fn(&Value) -> bool,
) -> Vec<Value> {
    let start = Instant::now();
    let mut buf = String::new();
    let mut seen = Vec::new();
    while start.elapsed() < within {
        let left = within.saturating_sub(start.elapsed());
        let chunk = match tokio::time::timeout(left, r.chunk()).await {
            Ok(Ok(Some(c))) => c,
            Ok(Ok(None)) | Err(_) => break,
            Ok(Err(e)) => panic!("the stream failed: {e}"),
        };
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let mut event = json!({});
            for line in block.lines() {
                if let Some((k, v)) = line.split_once(':') {
                    event[k] = json!(v.trim_start());
                }
            }
            if let Some(data) = event["data"].as_str() {
                event["data"] = serde_json::from_str(data).unwrap();
            }
            let done = want(&event);
            seen.push(event);
            if done {
                return seen;
            }
        }
    }
    panic!("no matching event within {within:?}; saw {seen:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_live_timeline_delivers_a_record_appended_after_it_opened() {
    let h = Harness::start(Options {
        env: "prod",
        ..Options::default()
    })
    .await;
    let (_, answer) = h.alert(&h.checkout.alert("page-live", "firing")).await;
    let task = task_of(&answer);
    let id = h.pending_approval().await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let last = h.records(&task).last().unwrap().seq;
    let b = Browser::sign_in(&h, VIEWER).await;
    // The page points its script at the stream, after what it shows.
    let (_, html) = b.get(&h, &format!("/ui/tasks/{task}")).await;
    assert!(
        html.contains(&format!(
            "data-stream=\"/ui/tasks/{task}/events?after={last}\""
        )),
        "{html}"
    );
    let mut r = b
        .client
        .get(h.url(&format!("/ui/tasks/{task}/events?after={last}")))
        .header("cookie", &b.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");

    // Something happens to the task: the approval is answered.
    let (s, _) = h
        .post(
            &format!("/v1/approvals/{id}"),
            ALICE,
            &json!({"approve": true}),
        )
        .await;
    assert_eq!(s, 200);
    let events = read_events(&mut r, Duration::from_secs(30), |e| {
        e["data"]["kind"] == "outcome"
    })
    .await;
    let kinds: Vec<&str> = events
        .iter()
        .filter_map(|e| e["data"]["kind"].as_str())
        .collect();
    assert_eq!(kinds.first(), Some(&"approval"), "{events:?}");
    assert!(kinds.contains(&"call"), "{kinds:?}");
    let approval = &events[0];
    assert_eq!(approval["event"], "record");
    assert_eq!(approval["id"], (last + 1).to_string().as_str());
    assert!(
        approval["data"]["text"]
            .as_str()
            .unwrap()
            .contains("approved by alice"),
        "{approval}"
    );
    assert_eq!(events.last().unwrap()["data"]["status"], "resolved");
    // Every record once, in order, all of this task.
    let seqs: Vec<u64> = events
        .iter()
        .filter_map(|e| e["id"].as_str())
        .map(|s| s.parse().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    let ours: Vec<u64> = h
        .records(&task)
        .iter()
        .map(|r| r.seq)
        .filter(|s| *s > last)
        .collect();
    assert_eq!(seqs, ours);

    // A reconnect resumes after the last record it got.
    let mut again = b
        .client
        .get(h.url(&format!("/ui/tasks/{task}/events")))
        .header("cookie", &b.cookie)
        .header("last-event-id", seqs[seqs.len() - 2].to_string())
        .send()
        .await
        .unwrap();
    let resumed = read_events(&mut again, Duration::from_secs(10), |e| {
        e["data"]["kind"] == "outcome"
    })
    .await;
    assert_eq!(resumed.len(), 1, "{resumed:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn live_timelines_are_bounded_and_need_a_session() {
    let h = Harness::start(Options::default()).await;
    let b = Browser::sign_in(&h, VIEWER).await;
    let open = |b: &Browser| {
        b.client
            .get(h.url("/ui/tasks/none/events"))
            .header("cookie", &b.cookie)
            .send()
    };
    let r = b
        .client
        .get(h.url("/ui/tasks/none/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // The default bound is 32 at once.
    let mut streams = Vec::new();
    for _ in 0..32 {
        let r = open(&b).await.unwrap();
        assert_eq!(r.status(), 200);
        streams.push(r);
    }
    let r = open(&b).await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "30");
    // A closed stream gives its slot back (bounded wait).
    drop(streams.pop());
    let start = Instant::now();
    loop {
        let r = open(&b).await.unwrap();
        if r.status() == 200 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "the slot never came back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_journal_page_shows_the_verification() {
    let h = Harness::start(Options::default()).await;
    let (_, answer) = h.alert(&h.checkout.alert("page-journal", "firing")).await;
    h.done(&task_of(&answer)).await;
    let b = Browser::sign_in(&h, VIEWER).await;
    let (status, html) = b.get(&h, "/ui/journal").await;
    assert_eq!(status, 200);
    assert!(html.contains("<p class=\"ok\" id=\"verify\">"), "{html}");
    assert!(html.contains("Intact: "), "{html}");

    // Edit a record behind the service's back: the page says so.
    let journal = h.journal();
    let text = fs_err::read_to_string(&journal).unwrap();
    fs_err::write(&journal, text.replacen("checkout", "checkoup", 1)).unwrap();
    let (_, html) = b.get(&h, "/ui/journal").await;
    assert!(html.contains("<p class=\"bad\" id=\"verify\">"), "{html}");
    assert!(html.contains("<td>edited</td>"), "{html}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_incidents_page_shows_clusters_once_memory_is_configured() {
    let opts = Options::default();
    let h = Harness::start(Options::default()).await;
    let b = Browser::sign_in(&h, VIEWER).await;
    let (status, html) = b.get(&h, "/ui/incidents").await;
    assert_eq!(status, 200);
    assert!(html.contains("Incident memory is not configured"), "{html}");

    let memory = h.dir.path().join("memory");
    {
        let mut m = warden::memory::Memory::open(&memory).unwrap();
        let incidents: Vec<warden::memory::Incident> = serde_json::from_value(json!([
            {"id": "d1", "title": "disk full on db-1", "body": "/var/lib/postgresql at 100%"},
            {"id": "d2<img src=x>", "title": "disk full on db-2", "body": "/var/lib/postgresql at 99%"},
            {"id": "t1", "title": "TLS certificate expired on ingress", "body": "NET::ERR_CERT_DATE_INVALID"},
        ]))
        .unwrap();
        m.ingest(incidents).unwrap();
    }
    let config = fs_err::read_to_string(&h.config).unwrap();
    fs_err::write(
        &h.config,
        config.replacen("[agent]\n", "[agent]\nmemory = \"memory\"\n", 1),
    )
    .unwrap();
    let h = h.restart(&opts).await;
    let b = Browser::sign_in(&h, VIEWER).await;
    let (status, html) = b.get(&h, "/ui/incidents").await;
    assert_eq!(status, 200);
    assert!(html.contains("<table class=\"clusters\">"), "{html}");
    assert!(html.contains("d2&lt;img src=x&gt;"), "{html}");
    assert!(!html.contains("<img"), "{html}");
}
