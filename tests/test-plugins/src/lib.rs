//! Shared input type for the test guests.
use schemars::JsonSchema;
use serde::Deserialize;

/// Most test guests take an optional URL or size.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct Input {
    /// A URL to fetch.
    #[serde(default)]
    pub url: Option<String>,
    /// A size in bytes.
    #[serde(default)]
    pub bytes: Option<usize>,
    /// Free text.
    #[serde(default)]
    pub text: Option<String>,
}

/// Output of the test guests.
#[derive(Debug, serde::Serialize, JsonSchema)]
pub struct Output {
    /// What happened.
    pub result: String,
}

/// Build an output.
pub fn out(result: impl Into<String>) -> Output {
    Output {
        result: result.into(),
    }
}
