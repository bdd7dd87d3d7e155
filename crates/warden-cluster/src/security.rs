//! How workers reach PostgreSQL and NATS: TLS (with certificates checked
//! against the Mozilla roots plus an optional CA, and an optional client
//! certificate for mutual TLS) and NATS credentials.
//!
//! Plaintext is refused to anything but loopback or a Unix socket, unless
//! the operator says so: `sslmode=disable` written in the PostgreSQL
//! connection string, or [`Security::allow_plaintext`]. A cluster stretched
//! across sites over plaintext would hand alerts, plans and the journal to
//! whoever sits on the path.

use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use tokio::sync::mpsc;
use tokio_postgres::config::{Host, SslMode};

use crate::ClusterError;

/// How a worker authenticates to NATS (besides a client certificate).
///
/// `Debug` never shows the secret.
///
/// ```
/// let auth = warden_cluster::NatsAuth::UserPassword { user: "w1".into(), password: "s3cret-s3cret-s3cret".into() };
/// assert!(!format!("{auth:?}").contains("s3cret"));
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub enum NatsAuth {
    /// A user and password (`authorization { users = [...] }`).
    UserPassword {
        /// The user.
        user: String,
        /// The password.
        password: String,
    },
    /// An nkey seed (`SU…`): the server knows the public key, the seed
    /// signs its challenge and never leaves this process.
    Nkey {
        /// The seed.
        seed: String,
    },
}

impl fmt::Debug for NatsAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NatsAuth::UserPassword { user, .. } => f
                .debug_struct("UserPassword")
                .field("user", user)
                .finish_non_exhaustive(),
            NatsAuth::Nkey { .. } => f.debug_struct("Nkey").finish_non_exhaustive(),
        }
    }
}

/// TLS and credentials for the connections to PostgreSQL and NATS.
///
/// The default is plaintext, which is only allowed to loopback and Unix
/// sockets:
///
/// ```
/// # async fn demo() {
/// use warden_cluster::{Record, Security};
/// let err = Record::connect_with("host=10.1.2.3 user=warden dbname=warden", &Security::default())
///     .await
///     .unwrap_err();
/// assert!(err.to_string().contains("plaintext"), "{err}");
/// # }
/// ```
///
/// With a CA and a client certificate:
///
/// ```no_run
/// # fn demo() -> Result<(), warden_cluster::ClusterError> {
/// use std::path::Path;
/// let security = warden_cluster::Security::default()
///     .with_tls(Some(Path::new("ca.pem")), Some((Path::new("worker.pem"), Path::new("worker.key"))))?;
/// assert!(security.has_tls());
/// # Ok(()) }
/// ```
#[derive(Clone, Default)]
pub struct Security {
    tls: Option<Arc<rustls::ClientConfig>>,
    nats_auth: Option<NatsAuth>,
    allow_plaintext: bool,
}

impl fmt::Debug for Security {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Security")
            .field("tls", &self.tls.is_some())
            .field("nats_auth", &self.nats_auth)
            .field("allow_plaintext", &self.allow_plaintext)
            .finish()
    }
}

impl Security {
    /// Use TLS to both servers: certificates are checked against the
    /// Mozilla roots plus `ca` (a PEM bundle), and `identity` (certificate
    /// chain, key; PEM) is presented to servers that ask for one.
    pub fn with_tls(
        mut self,
        ca: Option<&Path>,
        identity: Option<(&Path, &Path)>,
    ) -> Result<Security, ClusterError> {
        let config = warden_tls::client_config_with_identity(ca, identity)
            .map_err(|e| ClusterError::Security { why: e.to_string() })?;
        self.tls = Some(Arc::new(config));
        Ok(self)
    }

    /// Authenticate to NATS with `auth`.
    pub fn with_nats_auth(mut self, auth: NatsAuth) -> Security {
        self.nats_auth = Some(auth);
        self
    }

    /// Allow plaintext to hosts that are not loopback (a private network
    /// the operator trusts). Off by default.
    pub fn allow_plaintext(mut self, allow: bool) -> Security {
        self.allow_plaintext = allow;
        self
    }

    /// Whether a connection to the NATS servers in `url` would be made
    /// with these settings (parsed, no credentials in the URL, no plaintext
    /// to a host that is not loopback), without connecting.
    ///
    /// ```
    /// let plain = warden_cluster::Security::default();
    /// assert!(plain.check_nats("nats://127.0.0.1:4222").is_ok());
    /// assert!(plain.check_nats("nats://nats.prod.example:4222").is_err());
    /// assert!(plain.check_nats("tls://nats.prod.example:4222").is_ok());
    /// ```
    pub fn check_nats(&self, url: &str) -> Result<(), ClusterError> {
        self.nats_options(url, "check", Duration::from_secs(1))
            .map(drop)
            .map_err(|why| ClusterError::Security { why })
    }

    /// Whether a connection to PostgreSQL with `url` would be made with
    /// these settings (see [`Record::connect_with`](crate::Record::connect_with)),
    /// without connecting.
    ///
    /// ```
    /// let plain = warden_cluster::Security::default();
    /// assert!(plain.check_postgres("host=127.0.0.1 user=warden").is_ok());
    /// assert!(plain.check_postgres("host=db.example user=warden").is_err());
    /// assert!(plain.check_postgres("host=db.example user=warden sslmode=disable").is_ok());
    /// ```
    pub fn check_postgres(&self, url: &str) -> Result<(), ClusterError> {
        self.postgres_config(url).map(drop)
    }

    /// The driver's configuration for `url`, and whether it uses TLS.
    fn postgres_config(&self, url: &str) -> Result<(tokio_postgres::Config, bool), ClusterError> {
        let refuse = |why: String| ClusterError::Security { why };
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(ClusterError::pg("parse the connection string"))?;
        let explicit = url.to_ascii_lowercase().contains("sslmode");
        let mode = config.get_ssl_mode();
        let tls = if self.tls.is_some() {
            if explicit && mode == SslMode::Disable {
                return Err(refuse(
                    "the PostgreSQL connection string says sslmode=disable, but TLS is configured for the cluster".into(),
                ));
            }
            config.ssl_mode(SslMode::Require);
            true
        } else if explicit {
            mode != SslMode::Disable
        } else {
            config.ssl_mode(SslMode::Disable);
            false
        };
        if !tls
            && !explicit
            && !self.allow_plaintext
            && let Some(host) = remote_pg_host(&config)
        {
            return Err(refuse(format!(
                "refusing plaintext to PostgreSQL at {host}: configure TLS for the cluster (or write sslmode=require), or write sslmode=disable to accept plaintext on a network you trust"
            )));
        }
        Ok((config, tls))
    }

    /// Whether TLS is configured.
    pub fn has_tls(&self) -> bool {
        self.tls.is_some()
    }

    fn client_config(&self) -> Result<rustls::ClientConfig, String> {
        match &self.tls {
            Some(config) => Ok(config.as_ref().clone()),
            None => warden_tls::client_config(None).map_err(|e| e.to_string()),
        }
    }

    /// Open a PostgreSQL connection to `url` with these settings.
    ///
    /// - With TLS configured, TLS is required (`sslmode=disable` in `url`
    ///   contradicts it and is an error).
    /// - Without, `sslmode=require` or `prefer` written in `url` uses TLS
    ///   checked against the Mozilla roots; nothing written means
    ///   plaintext, which is refused to a host that is not loopback unless
    ///   `sslmode=disable` is written or plaintext is allowed.
    pub(crate) async fn connect_postgres(
        &self,
        url: &str,
    ) -> Result<tokio_postgres::Client, ClusterError> {
        self.connect_postgres_feeding(url, None).await
    }

    /// As [`Security::connect_postgres`]; with `notices`, the payload of
    /// every `NOTIFY` the connection receives is sent there (the sender is
    /// dropped when the connection ends).
    pub(crate) async fn connect_postgres_feeding(
        &self,
        url: &str,
        notices: Option<mpsc::UnboundedSender<String>>,
    ) -> Result<tokio_postgres::Client, ClusterError> {
        let refuse = |why: String| ClusterError::Security { why };
        let (config, tls) = self.postgres_config(url)?;
        let client = if tls {
            let connector = tokio_postgres_rustls::MakeRustlsConnect::new(
                self.client_config().map_err(refuse)?,
            );
            let (client, connection) = config
                .connect(connector)
                .await
                .map_err(ClusterError::pg("connect"))?;
            tokio::spawn(drive(connection, notices));
            client
        } else {
            let (client, connection) = config
                .connect(tokio_postgres::NoTls)
                .await
                .map_err(ClusterError::pg("connect"))?;
            tokio::spawn(drive(connection, notices));
            client
        };
        Ok(client)
    }

    /// The NATS connect options for `url` with these settings; an error
    /// (for [`BusError::Connect`](crate::BusError::Connect)) when plaintext
    /// would go to a host that is not loopback.
    pub(crate) fn nats_options(
        &self,
        url: &str,
        name: &str,
        timeout: Duration,
    ) -> Result<async_nats::ConnectOptions, String> {
        let mut opts = async_nats::ConnectOptions::new()
            .name(name)
            .connection_timeout(timeout);
        let mut any_tls_url = false;
        let mut remote = None;
        for server in url.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let addr: async_nats::ServerAddr = server
                .parse()
                .map_err(|e| format!("`{server}` is not a NATS server address: {e}"))?;
            if addr.has_user_pass() {
                return Err(
                    "the NATS URL holds a user and password: give them as the cluster's NATS credentials (a secret), not in the URL".into(),
                );
            }
            any_tls_url |= addr.tls_required();
            if !is_loopback_name(addr.host()) && remote.is_none() {
                remote = Some(addr.host().to_string());
            }
        }
        if self.tls.is_some() || any_tls_url {
            opts = opts
                .require_tls(true)
                .tls_client_config(self.client_config()?);
        } else if let Some(host) = remote
            && !self.allow_plaintext
        {
            return Err(format!(
                "refusing plaintext to NATS at {host}: configure TLS for the cluster (or use a tls:// URL), or allow plaintext on a network you trust"
            ));
        }
        match &self.nats_auth {
            Some(NatsAuth::UserPassword { user, password }) => {
                opts = opts.user_and_password(user.clone(), password.clone());
            }
            Some(NatsAuth::Nkey { seed }) => {
                opts = opts.nkey(seed.clone());
            }
            None => {}
        }
        Ok(opts)
    }
}

/// Drive a PostgreSQL connection until it ends, saying why it did.
/// Run a PostgreSQL connection until it ends, handing `NOTIFY` payloads to
/// `notices` when given.
async fn drive<S, T>(
    mut connection: tokio_postgres::Connection<S, T>,
    notices: Option<mpsc::UnboundedSender<String>>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let Some(notices) = notices else {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "PostgreSQL connection ended");
        }
        return;
    };
    let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
    while let Some(message) = messages.next().await {
        match message {
            Ok(tokio_postgres::AsyncMessage::Notification(n)) => {
                if notices.send(n.payload().to_string()).is_err() {
                    return;
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "PostgreSQL feed connection ended");
                return;
            }
        }
    }
}

/// The first host in `config` that is neither loopback nor a Unix socket.
fn remote_pg_host(config: &tokio_postgres::Config) -> Option<String> {
    let addrs = config.get_hostaddrs();
    if !addrs.is_empty() {
        return addrs
            .iter()
            .find(|a| !a.is_loopback())
            .map(ToString::to_string);
    }
    config.get_hosts().iter().find_map(|h| match h {
        Host::Tcp(name) if !is_loopback_name(name) => Some(name.clone()),
        _ => None,
    })
}

fn is_loopback_name(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names_are_recognised_and_others_are_not() {
        for name in ["localhost", "127.0.0.1", "127.8.9.10", "::1", "[::1]"] {
            assert!(is_loopback_name(name), "{name}");
        }
        for name in ["db.internal", "10.0.0.1", "localhost.evil.example", "::2"] {
            assert!(!is_loopback_name(name), "{name}");
        }
    }

    #[test]
    fn plaintext_to_a_remote_nats_is_refused_unless_allowed_or_tls() {
        let t = Duration::from_secs(1);
        let plain = Security::default();
        let err = plain
            .nats_options("nats://127.0.0.1:4222,nats://nats.prod:4222", "w", t)
            .unwrap_err();
        assert!(err.contains("nats.prod"), "{err}");
        assert!(plain.nats_options("nats://127.0.0.1:4222", "w", t).is_ok());
        assert!(plain.nats_options("tls://nats.prod:4222", "w", t).is_ok());
        assert!(
            plain
                .clone()
                .allow_plaintext(true)
                .nats_options("nats://nats.prod:4222", "w", t)
                .is_ok()
        );
        let err = plain
            .nats_options("nats://w1:hunter2@127.0.0.1:4222", "w", t)
            .unwrap_err();
        assert!(err.contains("user and password"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn a_remote_postgres_host_is_found_in_hosts_and_hostaddrs() {
        let remote = |url: &str| remote_pg_host(&url.parse().unwrap());
        assert_eq!(remote("host=127.0.0.1 user=w"), None);
        assert_eq!(remote("host=/run/postgresql user=w"), None);
        assert_eq!(remote("user=w"), None);
        assert_eq!(remote("host=localhost,db2 user=w").as_deref(), Some("db2"));
        assert_eq!(
            remote("postgresql://w@db.internal:5433/warden").as_deref(),
            Some("db.internal")
        );
        assert_eq!(
            remote("host=db hostaddr=127.0.0.1 user=w"),
            None,
            "hostaddr is where the connection goes"
        );
    }
}
