//! `[ui]` in `warden.toml`: the live page's sessions and streams.

use std::time::Duration;

use serde::Deserialize;

/// `[ui]`: the browser pages under `/ui`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UiSection {
    /// Serve the pages [default: true]. Off, `/ui` answers 404.
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// A browser session ends this long after the login, whatever it does
    /// meanwhile [default: 8h].
    #[serde(default = "default_ttl", with = "crate::config::humantime_serde")]
    pub session_ttl: Duration,
    /// Sessions kept at once; a login beyond this ends the oldest
    /// [default: 1000].
    #[serde(default = "default_sessions")]
    pub max_sessions: usize,
    /// Live timelines (server-sent event streams) open at once; one more
    /// is answered 503 [default: 32].
    #[serde(default = "default_streams")]
    pub max_streams: usize,
}

impl Default for UiSection {
    fn default() -> Self {
        UiSection {
            enabled: default_enabled(),
            session_ttl: default_ttl(),
            max_sessions: default_sessions(),
            max_streams: default_streams(),
        }
    }
}

impl UiSection {
    /// What is wrong with the values, if anything.
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.session_ttl < Duration::from_secs(60)
            || self.session_ttl > Duration::from_secs(7 * 24 * 3600)
        {
            return Err("ui.session_ttl must be between 1m and 7d".into());
        }
        if self.max_sessions == 0 || self.max_sessions > 1_000_000 {
            return Err("ui.max_sessions must be between 1 and 1000000".into());
        }
        if self.max_streams == 0 || self.max_streams > 10_000 {
            return Err("ui.max_streams must be between 1 and 10000".into());
        }
        Ok(())
    }
}

fn default_enabled() -> bool {
    true
}
fn default_ttl() -> Duration {
    Duration::from_secs(8 * 3600)
}
fn default_sessions() -> usize {
    1000
}
fn default_streams() -> usize {
    32
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use crate::config::Config;

    fn load(ui: &str) -> Result<Config, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("warden.toml");
        fs_err::write(&path, format!("[agent]\n[ui]\n{ui}\n")).unwrap();
        Config::load(&path).map_err(|e| e.to_string())
    }

    #[test]
    fn ui_settings_load_with_defaults_and_bounds() {
        let c = load("session_ttl = \"30m\"").unwrap();
        assert_eq!(c.ui.session_ttl.as_secs(), 1800);
        assert_eq!((c.ui.max_streams, c.ui.max_sessions), (32, 1000));
        assert!(c.ui.enabled);
        let e = load("max_streams = 0").unwrap_err();
        assert!(e.contains("ui.max_streams"), "{e}");
        let e = load("session_ttl = \"1s\"").unwrap_err();
        assert!(e.contains("ui.session_ttl"), "{e}");
        let e = load("cookie_name = \"x\"").unwrap_err();
        assert!(e.contains("cookie_name"), "{e}");
    }
}
