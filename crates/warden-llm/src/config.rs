use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::{LlmError, Price};

/// Default model when only `OPENAI_API_KEY` is set.
const DEFAULT_OPENAI_MODEL: &str = "gpt-4o-mini";
/// A GA Azure OpenAI data-plane version that supports tools and streaming usage.
const DEFAULT_AZURE_API_VERSION: &str = "2024-10-21";

/// Where the chat model lives.
#[derive(Clone, PartialEq, Eq)]
pub enum Provider {
    /// api.openai.com.
    OpenAi {
        /// Secret key, sent as `Authorization: Bearer`.
        api_key: String,
    },
    /// Any OpenAI-compatible server: Ollama, vLLM, llama.cpp, a gateway.
    Compatible {
        /// Base URL including the version path, e.g. `http://127.0.0.1:11434/v1`.
        base_url: String,
        /// Sent as `Authorization: Bearer` when set; no auth header otherwise.
        api_key: Option<String>,
    },
    /// Azure OpenAI: `{endpoint}/openai/deployments/{deployment}/chat/completions?api-version=...`.
    Azure {
        /// Resource endpoint, e.g. `https://my-resource.openai.azure.com`.
        endpoint: String,
        /// Deployment name.
        deployment: String,
        /// Data-plane API version, e.g. `2024-10-21`.
        api_version: String,
        /// Key or Entra ID token.
        auth: AzureAuth,
    },
}

/// How to authenticate to Azure OpenAI.
#[derive(Clone, PartialEq, Eq)]
pub enum AzureAuth {
    /// Resource key, sent in the `api-key` header.
    ApiKey(String),
    /// Entra ID access token, sent as `Authorization: Bearer`.
    Bearer(String),
}

// Secrets never reach logs through Debug.
impl fmt::Debug for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OpenAi { .. } => f.debug_struct("OpenAi").finish_non_exhaustive(),
            Self::Compatible { base_url, api_key } => f
                .debug_struct("Compatible")
                .field("base_url", base_url)
                .field("api_key", &api_key.as_ref().map(|_| "<redacted>"))
                .finish(),
            Self::Azure {
                endpoint,
                deployment,
                api_version,
                auth,
            } => f
                .debug_struct("Azure")
                .field("endpoint", endpoint)
                .field("deployment", deployment)
                .field("api_version", api_version)
                .field("auth", auth)
                .finish(),
        }
    }
}

impl fmt::Debug for AzureAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ApiKey(_) => f.write_str("ApiKey(<redacted>)"),
            Self::Bearer(_) => f.write_str("Bearer(<redacted>)"),
        }
    }
}

/// Everything [`ChatClient`](crate::ChatClient) needs.
///
/// ```
/// use std::time::Duration;
/// use warden_llm::{LlmConfig, Provider};
///
/// let config = LlmConfig::new(
///     Provider::Compatible { base_url: "http://127.0.0.1:11434/v1".into(), api_key: None },
///     "qwen2.5:7b",
/// );
/// assert_eq!(config.timeout, Duration::from_secs(60));
/// assert_eq!(config.max_retries, 3);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct LlmConfig {
    /// Endpoint and credentials.
    pub provider: Provider,
    /// Model name (for Azure the deployment decides; this is reported only).
    pub model: String,
    /// Limit for one attempt, streaming included. Default 60 s.
    pub timeout: Duration,
    /// Retries after the first attempt for 429, 5xx, connection errors and
    /// timeouts. Default 3.
    pub max_retries: u32,
    /// Price used for cost accounting; `None` when unknown.
    pub price: Option<Price>,
    /// Cap on generated tokens; `None` leaves it to the server.
    pub max_output_tokens: Option<u32>,
    /// A PEM bundle of CA certificates trusted beside the Mozilla roots,
    /// for servers behind a private CA (a gateway, a local vLLM with its own
    /// certificate). Default `None`: the Mozilla roots only.
    pub extra_ca_file: Option<PathBuf>,
}

impl LlmConfig {
    /// A configuration with the defaults: 60 s timeout, 3 retries, no price,
    /// no output cap, no extra CA.
    pub fn new(provider: Provider, model: impl Into<String>) -> Self {
        Self {
            provider,
            model: model.into(),
            timeout: Duration::from_secs(60),
            max_retries: 3,
            price: None,
            max_output_tokens: None,
            extra_ca_file: None,
        }
    }

    /// Reads the configuration from the process environment; see
    /// [`LlmConfig::from_vars`] for the variables.
    ///
    /// `Ok(None)` means no model is configured: the agent then plans from
    /// offline runbooks.
    pub fn from_env() -> Result<Option<Self>, LlmError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `var` (empty values count as unset).
    ///
    /// The first matching group wins:
    ///
    /// 1. `WARDEN_LLM_BASE_URL` + `WARDEN_LLM_MODEL` (+ `WARDEN_LLM_API_KEY`):
    ///    any OpenAI-compatible server.
    /// 2. `AZURE_OPENAI_ENDPOINT` + `AZURE_OPENAI_DEPLOYMENT` +
    ///    (`AZURE_OPENAI_API_KEY` | `AZURE_OPENAI_AD_TOKEN`) (+
    ///    `AZURE_OPENAI_API_VERSION`, default `2024-10-21`).
    /// 3. `OPENAI_API_KEY` (+ `OPENAI_BASE_URL`, `WARDEN_LLM_MODEL`, default
    ///    `gpt-4o-mini`).
    ///
    /// `WARDEN_LLM_TIMEOUT_SECS` and `WARDEN_LLM_MAX_RETRIES` override the
    /// defaults for every provider; `WARDEN_EXTRA_CA_FILE` names a PEM bundle
    /// of CA certificates to trust beside the Mozilla roots (the same
    /// variable the ARM capability reads).
    ///
    /// ```
    /// use warden_llm::{LlmConfig, Provider};
    ///
    /// let env = [("WARDEN_LLM_BASE_URL", "http://127.0.0.1:8080/v1"), ("WARDEN_LLM_MODEL", "smollm2")];
    /// let config = LlmConfig::from_vars(|k| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string()))?
    ///     .expect("configured");
    /// assert_eq!(config.model, "smollm2");
    /// assert!(matches!(config.provider, Provider::Compatible { api_key: None, .. }));
    ///
    /// assert_eq!(LlmConfig::from_vars(|_| None)?, None);
    /// # Ok::<(), warden_llm::LlmError>(())
    /// ```
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, LlmError> {
        let get = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let model = get("WARDEN_LLM_MODEL");

        let config = if let Some(base_url) = get("WARDEN_LLM_BASE_URL") {
            let model = model.ok_or_else(|| {
                LlmError::config("WARDEN_LLM_BASE_URL is set but WARDEN_LLM_MODEL is not")
            })?;
            let provider = Provider::Compatible {
                base_url: checked_url("WARDEN_LLM_BASE_URL", base_url)?,
                api_key: get("WARDEN_LLM_API_KEY"),
            };
            Self::new(provider, model)
        } else if let Some(endpoint) = get("AZURE_OPENAI_ENDPOINT") {
            let deployment = get("AZURE_OPENAI_DEPLOYMENT").ok_or_else(|| {
                LlmError::config("AZURE_OPENAI_ENDPOINT is set but AZURE_OPENAI_DEPLOYMENT is not")
            })?;
            let auth = match (get("AZURE_OPENAI_API_KEY"), get("AZURE_OPENAI_AD_TOKEN")) {
                (Some(key), _) => AzureAuth::ApiKey(key),
                (None, Some(token)) => AzureAuth::Bearer(token),
                (None, None) => {
                    return Err(LlmError::config(
                        "AZURE_OPENAI_ENDPOINT is set but neither AZURE_OPENAI_API_KEY nor AZURE_OPENAI_AD_TOKEN is",
                    ));
                }
            };
            let provider = Provider::Azure {
                endpoint: checked_url("AZURE_OPENAI_ENDPOINT", endpoint)?,
                deployment: deployment.clone(),
                api_version: get("AZURE_OPENAI_API_VERSION")
                    .unwrap_or_else(|| DEFAULT_AZURE_API_VERSION.to_owned()),
                auth,
            };
            Self::new(provider, model.unwrap_or(deployment))
        } else if let Some(api_key) = get("OPENAI_API_KEY") {
            let provider = match get("OPENAI_BASE_URL") {
                Some(base_url) => Provider::Compatible {
                    base_url: checked_url("OPENAI_BASE_URL", base_url)?,
                    api_key: Some(api_key),
                },
                None => Provider::OpenAi { api_key },
            };
            Self::new(
                provider,
                model.unwrap_or_else(|| DEFAULT_OPENAI_MODEL.to_owned()),
            )
        } else {
            return Ok(None);
        };

        let mut config = config;
        if let Some(secs) = get("WARDEN_LLM_TIMEOUT_SECS") {
            let secs: f64 = secs
                .trim()
                .parse()
                .ok()
                .filter(|s: &f64| *s > 0.0)
                .ok_or_else(|| {
                    LlmError::config(format!(
                        "WARDEN_LLM_TIMEOUT_SECS is not a positive number: {secs}"
                    ))
                })?;
            config.timeout = Duration::try_from_secs_f64(secs).map_err(|_| {
                LlmError::config(format!("WARDEN_LLM_TIMEOUT_SECS is too large: {secs}"))
            })?;
        }
        if let Some(retries) = get("WARDEN_LLM_MAX_RETRIES") {
            config.max_retries = retries.trim().parse().map_err(|_| {
                LlmError::config(format!(
                    "WARDEN_LLM_MAX_RETRIES is not a whole number: {retries}"
                ))
            })?;
        }
        config.extra_ca_file = get("WARDEN_EXTRA_CA_FILE").map(|p| PathBuf::from(p.trim()));
        Ok(Some(config))
    }
}

fn checked_url(name: &str, url: String) -> Result<String, LlmError> {
    let url = url.trim().trim_end_matches('/').to_owned();
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(url)
    } else {
        Err(LlmError::config(format!(
            "{name} must start with http:// or https://, got {url}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Result<Option<LlmConfig>, LlmError> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        LlmConfig::from_vars(move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn nothing_configured_means_no_llm() {
        assert_eq!(vars(&[]).unwrap(), None);
        assert_eq!(vars(&[("OPENAI_API_KEY", "  ")]).unwrap(), None);
        assert_eq!(vars(&[("WARDEN_LLM_MODEL", "gpt-4o")]).unwrap(), None);
    }

    #[test]
    fn two_variables_configure_a_compatible_endpoint() {
        let config = vars(&[
            ("WARDEN_LLM_BASE_URL", "http://127.0.0.1:11434/v1/"),
            ("WARDEN_LLM_MODEL", "qwen2.5:7b"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            config.provider,
            Provider::Compatible {
                base_url: "http://127.0.0.1:11434/v1".into(),
                api_key: None
            }
        );
        assert_eq!(config.model, "qwen2.5:7b");
        assert_eq!(config.timeout, Duration::from_secs(60));
        assert_eq!(config.max_retries, 3);
        assert_eq!(config.extra_ca_file, None);
    }

    #[test]
    fn an_extra_ca_file_is_read_from_warden_extra_ca_file() {
        let config = vars(&[
            ("OPENAI_API_KEY", "sk"),
            ("WARDEN_EXTRA_CA_FILE", " /etc/warden/corp-ca.pem "),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            config.extra_ca_file,
            Some(PathBuf::from("/etc/warden/corp-ca.pem"))
        );
        let config = vars(&[("OPENAI_API_KEY", "sk"), ("WARDEN_EXTRA_CA_FILE", "")])
            .unwrap()
            .unwrap();
        assert_eq!(config.extra_ca_file, None);
    }

    #[test]
    fn compatible_endpoint_takes_an_optional_key_and_wins_over_openai() {
        let config = vars(&[
            ("WARDEN_LLM_BASE_URL", "https://llm.internal/v1"),
            ("WARDEN_LLM_MODEL", "llama3.1"),
            ("WARDEN_LLM_API_KEY", "k"),
            ("OPENAI_API_KEY", "sk-other"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            config.provider,
            Provider::Compatible {
                base_url: "https://llm.internal/v1".into(),
                api_key: Some("k".into())
            }
        );
    }

    #[test]
    fn base_url_without_model_is_an_error_naming_the_variable() {
        let err = vars(&[("WARDEN_LLM_BASE_URL", "http://127.0.0.1:8080/v1")]).unwrap_err();
        assert!(err.to_string().contains("WARDEN_LLM_MODEL"), "{err}");
        let err = vars(&[
            ("WARDEN_LLM_BASE_URL", "127.0.0.1:8080"),
            ("WARDEN_LLM_MODEL", "m"),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("http://"), "{err}");
    }

    #[test]
    fn openai_key_alone_uses_api_openai_com_and_gpt_4o_mini() {
        let config = vars(&[("OPENAI_API_KEY", "sk-test")]).unwrap().unwrap();
        assert_eq!(
            config.provider,
            Provider::OpenAi {
                api_key: "sk-test".into()
            }
        );
        assert_eq!(config.model, "gpt-4o-mini");
    }

    #[test]
    fn openai_key_with_base_url_is_a_compatible_endpoint() {
        let config = vars(&[
            ("OPENAI_API_KEY", "sk-test"),
            ("OPENAI_BASE_URL", "https://gateway.example/v1"),
            ("WARDEN_LLM_MODEL", "gpt-4.1"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            config.provider,
            Provider::Compatible {
                base_url: "https://gateway.example/v1".into(),
                api_key: Some("sk-test".into())
            }
        );
        assert_eq!(config.model, "gpt-4.1");
    }

    #[test]
    fn azure_needs_a_deployment_and_a_credential() {
        let config = vars(&[
            ("AZURE_OPENAI_ENDPOINT", "https://res.openai.azure.com/"),
            ("AZURE_OPENAI_DEPLOYMENT", "gpt4o-prod"),
            ("AZURE_OPENAI_API_KEY", "azk"),
            ("OPENAI_API_KEY", "sk-ignored"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            config.provider,
            Provider::Azure {
                endpoint: "https://res.openai.azure.com".into(),
                deployment: "gpt4o-prod".into(),
                api_version: "2024-10-21".into(),
                auth: AzureAuth::ApiKey("azk".into()),
            }
        );
        assert_eq!(config.model, "gpt4o-prod");

        let config = vars(&[
            ("AZURE_OPENAI_ENDPOINT", "https://res.openai.azure.com"),
            ("AZURE_OPENAI_DEPLOYMENT", "d"),
            ("AZURE_OPENAI_AD_TOKEN", "eyJ"),
            ("AZURE_OPENAI_API_VERSION", "2025-01-01-preview"),
        ])
        .unwrap()
        .unwrap();
        assert!(matches!(
            config.provider,
            Provider::Azure { ref auth, ref api_version, .. }
                if *auth == AzureAuth::Bearer("eyJ".into()) && api_version == "2025-01-01-preview"
        ));

        let err = vars(&[("AZURE_OPENAI_ENDPOINT", "https://res.openai.azure.com")]).unwrap_err();
        assert!(err.to_string().contains("AZURE_OPENAI_DEPLOYMENT"), "{err}");
        let err = vars(&[
            ("AZURE_OPENAI_ENDPOINT", "https://res.openai.azure.com"),
            ("AZURE_OPENAI_DEPLOYMENT", "d"),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("AZURE_OPENAI_AD_TOKEN"), "{err}");
    }

    #[test]
    fn timeout_and_retries_can_be_overridden() {
        let config = vars(&[
            ("OPENAI_API_KEY", "sk"),
            ("WARDEN_LLM_TIMEOUT_SECS", "2.5"),
            ("WARDEN_LLM_MAX_RETRIES", "0"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(config.timeout, Duration::from_millis(2500));
        assert_eq!(config.max_retries, 0);
        assert!(vars(&[("OPENAI_API_KEY", "sk"), ("WARDEN_LLM_TIMEOUT_SECS", "0")]).is_err());
        assert!(vars(&[("OPENAI_API_KEY", "sk"), ("WARDEN_LLM_MAX_RETRIES", "-1")]).is_err());
    }

    #[test]
    fn debug_output_redacts_secrets() {
        let config = vars(&[
            ("AZURE_OPENAI_ENDPOINT", "https://res.openai.azure.com"),
            ("AZURE_OPENAI_DEPLOYMENT", "d"),
            ("AZURE_OPENAI_API_KEY", "super-secret-key"),
        ])
        .unwrap()
        .unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("super-secret-key"), "{shown}");
        assert!(shown.contains("res.openai.azure.com"), "{shown}");
        let shown = format!(
            "{:?}",
            Provider::OpenAi {
                api_key: "sk-live".into()
            }
        );
        assert!(!shown.contains("sk-live"), "{shown}");
    }
}
