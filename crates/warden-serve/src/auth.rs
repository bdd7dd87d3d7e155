//! Who is calling: API bearer tokens with roles, the receivers' shared
//! secrets, and HMAC-signed webhooks with a replay window. Every compare of
//! a secret is constant-time.

use std::collections::VecDeque;
use std::sync::Mutex;

use axum::http::HeaderMap;
use base64::Engine as _;
use hmac::{Hmac, Mac as _};
use sha2::Sha256;
use subtle::ConstantTimeEq as _;

use crate::config::{AlertmanagerReceiver, Config};
use crate::error::ServeError;

/// An authenticated caller: the name the journal records, and its roles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The token's name.
    pub name: String,
    /// `viewer`, `operator`, `approver`.
    pub roles: Vec<String>,
}

impl Identity {
    /// Whether it holds `role` (`operator` and `approver` imply `viewer`).
    pub fn may(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role) || (role == "viewer" && !self.roles.is_empty())
    }
}

/// The secrets, read once from the environment or files.
#[derive(Debug)]
pub(crate) struct Secrets {
    tokens: Vec<(Identity, String)>,
    alertmanager: Option<AmAuth>,
    azure: Option<String>,
    generic: Option<String>,
    replay: Mutex<VecDeque<(i64, [u8; 32])>>,
}

#[derive(Debug)]
enum AmAuth {
    Bearer(String),
    Basic(String, String),
}

/// How long a signed webhook stays valid, either side of now.
pub(crate) const REPLAY_WINDOW_SECS: i64 = 300;

impl Secrets {
    pub(crate) fn load(config: &Config) -> Result<Secrets, ServeError> {
        let base = &config.base;
        let mut tokens = Vec::new();
        for t in &config.tokens {
            let value = t.token.read(base, &format!("token `{}`", t.name))?;
            tokens.push((
                Identity {
                    name: t.name.clone(),
                    roles: t.roles.clone(),
                },
                value,
            ));
        }
        let r = &config.receivers;
        let alertmanager = r
            .alertmanager
            .as_ref()
            .map(|am| am_auth(am, base))
            .transpose()?;
        let azure = r
            .azure_monitor
            .as_ref()
            .map(|a| a.secret.read(base, "receivers.azure_monitor.secret"))
            .transpose()?;
        let generic = r
            .generic
            .as_ref()
            .map(|g| g.secret.read(base, "receivers.generic.secret"))
            .transpose()?;
        Ok(Secrets {
            tokens,
            alertmanager,
            azure,
            generic,
            replay: Mutex::new(VecDeque::new()),
        })
    }

    /// The caller behind `Authorization: Bearer …`, if any token matches.
    pub(crate) fn identity(&self, headers: &HeaderMap) -> Option<Identity> {
        self.token(bearer(headers)?)
    }

    /// The caller whose API token is `presented`, if any (the page's login).
    pub(crate) fn token(&self, presented: &str) -> Option<Identity> {
        // Every token is compared, so the time taken does not say which
        // (or whether) one matched.
        let mut found = None;
        for (identity, token) in &self.tokens {
            if bool::from(presented.as_bytes().ct_eq(token.as_bytes())) {
                found = Some(identity.clone());
            }
        }
        found
    }

    /// Whether the Alertmanager receiver is on and the request carries its
    /// credentials (`None`: not configured).
    pub(crate) fn alertmanager(&self, headers: &HeaderMap) -> Option<bool> {
        let auth = self.alertmanager.as_ref()?;
        Some(match auth {
            AmAuth::Bearer(token) => {
                bearer(headers).is_some_and(|p| bool::from(p.as_bytes().ct_eq(token.as_bytes())))
            }
            AmAuth::Basic(user, password) => basic(headers).is_some_and(|(u, p)| {
                let u = u.as_bytes().ct_eq(user.as_bytes());
                let p = p.as_bytes().ct_eq(password.as_bytes());
                bool::from(u & p)
            }),
        })
    }

    /// Whether the Azure Monitor receiver is on and `token` is its secret.
    pub(crate) fn azure(&self, token: Option<&str>) -> Option<bool> {
        let secret = self.azure.as_ref()?;
        Some(token.is_some_and(|t| bool::from(t.as_bytes().ct_eq(secret.as_bytes()))))
    }

    /// Check a generic webhook's signature: `X-Warden-Timestamp` (Unix
    /// seconds) and `X-Warden-Signature: sha256=<hex>` of HMAC-SHA256 over
    /// `<timestamp>.<body>`, within five minutes of now, never seen before.
    /// `None`: not configured.
    pub(crate) fn generic(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: i64,
    ) -> Option<Result<(), String>> {
        let secret = self.generic.as_ref()?;
        Some(self.check_signature(secret, headers, body, now))
    }

    fn check_signature(
        &self,
        secret: &str,
        headers: &HeaderMap,
        body: &[u8],
        now: i64,
    ) -> Result<(), String> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let ts = header("x-warden-timestamp").ok_or("no X-Warden-Timestamp header")?;
        let ts: i64 = ts
            .parse()
            .map_err(|_| "X-Warden-Timestamp is not Unix seconds")?;
        if (now - ts).abs() > REPLAY_WINDOW_SECS {
            return Err("X-Warden-Timestamp is more than 5 minutes from now".into());
        }
        let sig = header("x-warden-signature")
            .and_then(|s| s.strip_prefix("sha256="))
            .ok_or("no X-Warden-Signature: sha256=<hex> header")?;
        let sig = hex::decode(sig).map_err(|_| "X-Warden-Signature is not hex")?;
        let expected = sign(secret, ts, body);
        if !bool::from(sig.as_slice().ct_eq(expected.as_slice())) {
            return Err("the signature does not match".into());
        }
        let mut digest = [0u8; 32];
        digest.copy_from_slice(&expected);
        let mut seen = self.replay.lock().map_err(|_| "replay cache poisoned")?;
        while seen
            .front()
            .is_some_and(|(t, _)| now - *t > 2 * REPLAY_WINDOW_SECS)
        {
            seen.pop_front();
        }
        if seen.iter().any(|(_, d)| *d == digest) {
            return Err("this signed request was already received (replay)".into());
        }
        // A bound on memory: a flood of validly signed requests beyond this
        // is the signer's problem, and old entries are past their window.
        if seen.len() >= 100_000 {
            seen.pop_front();
        }
        seen.push_back((now, digest));
        Ok(())
    }
}

/// HMAC-SHA256 of `<ts>.<body>` under `secret`: what a sender of a generic
/// webhook puts in `X-Warden-Signature` (hex, after `sha256=`).
///
/// ```
/// let mac = warden_serve::sign("a-long-shared-secret", 1_700_000_000, b"{}");
/// assert_eq!(mac.len(), 32);
/// ```
pub fn sign(secret: &str, ts: i64, body: &[u8]) -> Vec<u8> {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return Vec::new();
    };
    mac.update(ts.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

fn am_auth(am: &AlertmanagerReceiver, base: &std::path::Path) -> Result<AmAuth, ServeError> {
    if let Some(b) = &am.bearer {
        return Ok(AmAuth::Bearer(
            b.read(base, "receivers.alertmanager.bearer")?,
        ));
    }
    match (&am.basic_user, &am.basic_password) {
        (Some(u), Some(p)) => Ok(AmAuth::Basic(
            u.clone(),
            p.read(base, "receivers.alertmanager.basic_password")?,
        )),
        _ => Err(ServeError::Config {
            reason: "receivers.alertmanager needs `bearer` or basic auth".into(),
        }),
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}
