//! Browser sessions: a login form takes an API token once; the browser then
//! holds only a random session id in an `HttpOnly`, `SameSite=Strict`
//! cookie (`Secure`, with the `__Host-` prefix, under TLS). The server maps
//! the id (by its SHA-256, so a lookup's timing says nothing about the id)
//! to the token's identity until the session expires. Every form that
//! changes something carries the session's CSRF token; the login form,
//! before any session exists, a double-submit token in a short-lived cookie.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use crate::auth::Identity;

/// How long a login form stays usable.
pub(crate) const LOGIN_TTL: Duration = Duration::from_secs(600);

/// One signed-in browser.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// Who: the identity of the token pasted at login.
    pub identity: Identity,
    /// What every state-changing form must carry.
    pub csrf: String,
    expires: Instant,
}

impl Session {
    /// Whether `presented` is this session's CSRF token (constant-time).
    pub(crate) fn csrf_ok(&self, presented: &str) -> bool {
        bool::from(presented.as_bytes().ct_eq(self.csrf.as_bytes()))
    }
}

/// The sessions, in memory: a restart signs everyone out.
#[derive(Debug)]
pub(crate) struct Sessions {
    by_digest: Mutex<HashMap<[u8; 32], Session>>,
    ttl: Duration,
    max: usize,
    /// Cookies get `Secure` and the `__Host-` prefix.
    pub tls: bool,
}

impl Sessions {
    pub(crate) fn new(ttl: Duration, max: usize, tls: bool) -> Sessions {
        Sessions {
            by_digest: Mutex::new(HashMap::new()),
            ttl,
            max: max.max(1),
            tls,
        }
    }

    /// Start a session for `identity`; returns its id (the cookie value).
    /// Expired sessions are dropped; at the limit, the oldest goes.
    pub(crate) fn create(&self, identity: Identity) -> (String, Session) {
        let id = random_hex();
        let now = Instant::now();
        let session = Session {
            identity,
            csrf: random_hex(),
            expires: now + self.ttl,
        };
        let mut map = self.by_digest.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, s| s.expires > now);
        while map.len() >= self.max {
            let oldest = map.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| *k);
            match oldest {
                Some(k) => map.remove(&k),
                None => break,
            };
        }
        map.insert(digest(&id), session.clone());
        (id, session)
    }

    /// The live session the request's cookie names.
    pub(crate) fn get(&self, headers: &HeaderMap) -> Option<Session> {
        let id = cookie(headers, &self.session_cookie())?;
        let key = digest(&id);
        let mut map = self.by_digest.lock().unwrap_or_else(|p| p.into_inner());
        let session = map.get(&key)?;
        if session.expires <= Instant::now() {
            map.remove(&key);
            return None;
        }
        Some(session.clone())
    }

    /// End the request's session, if it has one.
    pub(crate) fn end(&self, headers: &HeaderMap) {
        if let Some(id) = cookie(headers, &self.session_cookie()) {
            let mut map = self.by_digest.lock().unwrap_or_else(|p| p.into_inner());
            map.remove(&digest(&id));
        }
    }

    /// The session cookie's name.
    pub(crate) fn session_cookie(&self) -> String {
        self.name("warden_session")
    }

    /// The login form's double-submit cookie's name.
    pub(crate) fn login_cookie(&self) -> String {
        self.name("warden_login")
    }

    fn name(&self, base: &str) -> String {
        if self.tls {
            format!("__Host-{base}")
        } else {
            base.to_string()
        }
    }

    /// `Set-Cookie` for the session `id`.
    pub(crate) fn set_session(&self, id: &str) -> String {
        self.set(&self.session_cookie(), id, self.ttl.as_secs())
    }

    /// `Set-Cookie` that clears the session cookie.
    pub(crate) fn clear_session(&self) -> String {
        self.set(&self.session_cookie(), "", 0)
    }

    /// `Set-Cookie` for a login form's token.
    pub(crate) fn set_login(&self, token: &str) -> String {
        self.set(&self.login_cookie(), token, LOGIN_TTL.as_secs())
    }

    /// `Set-Cookie` that clears the login form's token.
    pub(crate) fn clear_login(&self) -> String {
        self.set(&self.login_cookie(), "", 0)
    }

    fn set(&self, name: &str, value: &str, max_age: u64) -> String {
        let secure = if self.tls { "; Secure" } else { "" };
        format!("{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}")
    }

    /// Whether the login form's field matches its cookie (constant-time).
    pub(crate) fn login_ok(&self, headers: &HeaderMap, field: &str) -> bool {
        let Some(expected) = cookie(headers, &self.login_cookie()) else {
            return false;
        };
        !expected.is_empty() && bool::from(field.as_bytes().ct_eq(expected.as_bytes()))
    }
}

/// 128 random bits, hex.
pub(crate) fn random_hex() -> String {
    crate::approvals::new_id()
}

fn digest(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

/// The value of cookie `name` in the request, if it looks like one of ours
/// (hex, at most 64 characters).
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    for header in headers.get_all(axum::http::header::COOKIE) {
        let Ok(text) = header.to_str() else { continue };
        for pair in text.split(';') {
            let Some((k, v)) = pair.trim().split_once('=') else {
                continue;
            };
            if k == name && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Some(v.to_string());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    fn who() -> Identity {
        Identity {
            name: "alice".into(),
            roles: vec!["approver".into()],
        }
    }

    fn with_cookie(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("cookie", value.parse().unwrap());
        h
    }

    #[test]
    fn a_session_is_found_by_its_cookie_and_not_by_another() {
        let s = Sessions::new(Duration::from_secs(60), 10, false);
        let (id, session) = s.create(who());
        let found = s.get(&with_cookie(&format!("other=1; warden_session={id}")));
        assert_eq!(found.unwrap().csrf, session.csrf);
        assert!(
            s.get(&with_cookie(&format!("warden_session={}", random_hex())))
                .is_none()
        );
        assert!(s.get(&with_cookie("warden_session=<script>")).is_none());
        s.end(&with_cookie(&format!("warden_session={id}")));
        assert!(
            s.get(&with_cookie(&format!("warden_session={id}")))
                .is_none()
        );
    }

    #[test]
    fn an_expired_session_is_refused() {
        let s = Sessions::new(Duration::from_millis(1), 10, false);
        let (id, _) = s.create(who());
        std::thread::sleep(Duration::from_millis(5));
        assert!(
            s.get(&with_cookie(&format!("warden_session={id}")))
                .is_none()
        );
    }

    #[test]
    fn the_oldest_session_goes_when_the_limit_is_reached() {
        let s = Sessions::new(Duration::from_secs(60), 2, false);
        let (first, _) = s.create(who());
        std::thread::sleep(Duration::from_millis(2));
        let (second, _) = s.create(who());
        std::thread::sleep(Duration::from_millis(2));
        let (third, _) = s.create(who());
        let alive = |id: &str| {
            s.get(&with_cookie(&format!("warden_session={id}")))
                .is_some()
        };
        assert!(!alive(&first));
        assert!(alive(&second) && alive(&third));
    }

    #[test]
    fn cookies_are_http_only_strict_and_secure_under_tls() {
        let plain = Sessions::new(Duration::from_secs(3600), 10, false).set_session("ab");
        assert_eq!(
            plain,
            "warden_session=ab; Path=/; Max-Age=3600; HttpOnly; SameSite=Strict"
        );
        let tls = Sessions::new(Duration::from_secs(3600), 10, true).set_session("ab");
        assert!(
            tls.starts_with("__Host-warden_session=ab; Path=/;"),
            "{tls}"
        );
        assert!(
            tls.ends_with("; HttpOnly; SameSite=Strict; Secure"),
            "{tls}"
        );
    }

    #[test]
    fn the_login_token_must_match_its_cookie() {
        let s = Sessions::new(Duration::from_secs(60), 10, false);
        let token = random_hex();
        let headers = with_cookie(&format!("warden_login={token}"));
        assert!(s.login_ok(&headers, &token));
        assert!(!s.login_ok(&headers, &random_hex()));
        assert!(!s.login_ok(&HeaderMap::new(), &token));
        assert!(!s.login_ok(&with_cookie("warden_login="), ""));
    }
}
