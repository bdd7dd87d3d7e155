//! Host-side secrets: named URLs (webhooks with a token in the path) that a
//! plugin can send to without ever seeing them.
//!
//! A guest addresses secret `<name>` as `https://<name>.secret.warden/`;
//! the manifest declares it as the HTTP host `<name>.secret.warden` (or
//! `*.secret.warden` for any secret; a bare `*` does not cover secrets).
//! The host swaps in the real URL just before the usual checks, and
//! everything it reports (denials, gate requests, errors) names the secret,
//! never the URL.

use std::collections::BTreeMap;
use std::sync::Arc;

use warden_types::{Capability, ToolManifest};

use crate::SandboxError;

/// The reserved host suffix of secret references.
pub(crate) const SECRET_SUFFIX: &str = ".secret.warden";

/// Named URLs known only to the host. `Debug` lists the names only.
#[derive(Clone, Default)]
pub(crate) struct Secrets {
    urls: Arc<BTreeMap<String, String>>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.urls.keys()).finish()
    }
}

impl Secrets {
    pub fn insert(&mut self, name: &str, url: &str) {
        Arc::make_mut(&mut self.urls).insert(name.to_string(), url.to_string());
    }

    /// Refuse bad names and URLs up front, naming the secret but not the URL.
    pub fn check(&self) -> Result<(), SandboxError> {
        for (name, url) in self.urls.iter() {
            if !valid_name(name) {
                return Err(SandboxError::Config {
                    message: format!(
                        "secret name `{name}` must be 1-63 lowercase letters, digits or `-`, not starting or ending with `-`"
                    ),
                });
            }
            if parse_url(url).is_none() {
                return Err(SandboxError::Config {
                    message: format!(
                        "secret `{name}` does not hold an absolute http:// or https:// URL with a host and no user info"
                    ),
                });
            }
        }
        Ok(())
    }

    /// A scrubber for every URL held.
    pub fn scrubber(&self) -> Result<crate::scrub::Scrubber, SandboxError> {
        crate::scrub::Scrubber::new(self.urls.iter().map(|(n, u)| (n.as_str(), u.as_str())))
    }

    /// The URL held under `name`.
    pub fn get(&self, name: &str) -> Option<http::Uri> {
        self.urls.get(name).and_then(|u| parse_url(u))
    }
}

fn parse_url(url: &str) -> Option<http::Uri> {
    let uri: http::Uri = url.parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let host = uri.host()?;
    // Credentials in the authority would end up in the `host` header.
    let userinfo = uri.authority()?.as_str().contains('@');
    ((scheme == "http" || scheme == "https") && !host.is_empty() && !userinfo).then_some(uri)
}

/// A DNS label, so `<name>.secret.warden` is a valid host.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && !name.starts_with('-')
        && !name.ends_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The secret a request host refers to (`Some` for every host under the
/// reserved suffix, valid name or not); `host` is lower case.
pub(crate) fn reserved_name(host: &str) -> Option<&str> {
    let host = host.trim_end_matches('.');
    host.strip_suffix(SECRET_SUFFIX)
        .or_else(|| (host == &SECRET_SUFFIX[1..]).then_some(""))
}

/// Whether the manifest declares secret `name`: the host
/// `<name>.secret.warden` or `*.secret.warden`, never a bare `*`.
pub(crate) fn declares_secret(manifest: &ToolManifest, name: &str) -> bool {
    let exact = format!("{name}{SECRET_SUFFIX}");
    let any = format!("*{SECRET_SUFFIX}");
    manifest.capabilities.iter().any(|c| match c {
        Capability::Http { hosts } => hosts.iter().any(|p| {
            let p = p.trim_end_matches('.').to_ascii_lowercase();
            p == exact || p == any
        }),
        Capability::Kv => false,
    })
}

/// Strip what a transport error may carry about the real destination.
pub(crate) fn redact_error(
    error: wasmtime_wasi_http::Error,
    name: &str,
) -> wasmtime_wasi_http::Error {
    use wasmtime_wasi_http::Error as E;
    match error {
        E::Tls(_) => E::TlsProtocolError,
        E::InvalidDnsNameError(_) | E::DnsError { .. } => E::DnsError {
            rcode: Some(format!("resolving the host of secret `{name}` failed")),
            info_code: None,
        },
        E::InternalError(Some(_)) => {
            E::InternalError(Some(format!("request to secret `{name}` failed")))
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(hosts: &[&str]) -> ToolManifest {
        ToolManifest {
            name: "t".into(),
            version: "0.1.0".into(),
            description: String::new(),
            input_schema: serde_json::Value::Null,
            output_schema: serde_json::Value::Null,
            effect: warden_types::Effect::Mutating,
            supports_dry_run: true,
            capabilities: vec![Capability::Http {
                hosts: hosts.iter().map(|h| h.to_string()).collect(),
            }],
        }
    }

    #[test]
    fn names_under_the_reserved_suffix_are_secret_references() {
        assert_eq!(reserved_name("ops-slack.secret.warden"), Some("ops-slack"));
        assert_eq!(reserved_name("ops-slack.secret.warden."), Some("ops-slack"));
        assert_eq!(reserved_name("a.b.secret.warden"), Some("a.b"));
        assert_eq!(reserved_name("secret.warden"), Some(""));
        assert_eq!(reserved_name("hooks.slack.com"), None);
        assert_eq!(reserved_name("notsecret.warden"), None);
    }

    #[test]
    fn only_secret_patterns_declare_a_secret() {
        assert!(declares_secret(&manifest(&["ops.secret.warden"]), "ops"));
        assert!(declares_secret(&manifest(&["*.SECRET.warden"]), "ops"));
        assert!(!declares_secret(&manifest(&["*"]), "ops"));
        assert!(!declares_secret(&manifest(&["other.secret.warden"]), "ops"));
    }

    #[test]
    fn check_names_the_secret_but_never_the_url() {
        let mut s = Secrets::default();
        s.insert("ok", "https://hooks.example.com/T/B/tok3n");
        assert!(s.check().is_ok());
        s.insert("creds", "https://user:pw@hooks.example.com/");
        assert!(
            s.check()
                .unwrap_err()
                .to_string()
                .contains("secret `creds`")
        );
        let mut s = Secrets::default();
        s.insert("bad", "ftp://hooks.example.com/tok3n");
        let err = s.check().unwrap_err().to_string();
        assert!(err.contains("secret `bad`"), "{err}");
        assert!(!err.contains("tok3n"), "{err}");
        let mut s = Secrets::default();
        s.insert("no_underscores", "https://example.com/");
        assert!(
            s.check()
                .unwrap_err()
                .to_string()
                .contains("no_underscores")
        );
        assert!(!format!("{s:?}").contains("example.com"));
    }
}
