//! Write a warden tool plugin in a few lines.
//!
//! A plugin is a type implementing [`Tool`] with a `serde` + `schemars`
//! input and output type, exported with [`export_tool!`]. The PDK generates
//! `describe()` (the manifest, with JSON Schemas derived from your types),
//! parses the input, maps errors, and gives you the host's imports:
//! [`log`], [`kv`], a small blocking [`http`] client over `wasi:http` and
//! Azure Resource Manager through the host's credential ([`arm`]).
//!
//! Build with `cargo build --release --target wasm32-wasip2` (crate type
//! `cdylib`); the `.wasm` is a component the warden host loads directly.
//!
//! ```no_run
//! use warden_pdk::{Context, Tool, ToolError, export_tool};
//! use warden_pdk::schemars::JsonSchema;
//! use warden_pdk::serde::{Deserialize, Serialize};
//!
//! /// Counts the words of a text.
//! struct WordCount;
//!
//! #[derive(Deserialize, JsonSchema)]
//! #[serde(crate = "warden_pdk::serde")]
//! #[schemars(crate = "warden_pdk::schemars")]
//! struct Input {
//!     /// The text to count.
//!     text: String,
//! }
//!
//! #[derive(Serialize, JsonSchema)]
//! #[serde(crate = "warden_pdk::serde")]
//! #[schemars(crate = "warden_pdk::schemars")]
//! struct Output {
//!     words: usize,
//! }
//!
//! impl Tool for WordCount {
//!     type Input = Input;
//!     type Output = Output;
//!     const NAME: &'static str = "word-count";
//!     const VERSION: &'static str = env!("CARGO_PKG_VERSION");
//!     const DESCRIPTION: &'static str = "Count the words of a text.";
//!
//!     fn invoke(_ctx: &Context, input: Input) -> Result<Output, ToolError> {
//!         if input.text.len() > 1 << 20 {
//!             return Err(ToolError::InvalidInput("text is over 1 MiB".into()));
//!         }
//!         Ok(Output { words: input.text.split_whitespace().count() })
//!     }
//! }
//!
//! export_tool!(WordCount);
//! ```
#![deny(missing_docs)]

pub mod arm;
pub mod http;
pub mod kv;
pub mod log;

#[doc(hidden)]
pub mod __bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "warden:plugin/tool",
        generate_all,
        pub_export_macro: true,
        export_macro_name: "__export_world_tool",
        default_bindings_module: "::warden_pdk::__bindings",
    });
}

pub use schemars;
pub use serde;
pub use serde_json;
pub use warden_types::{Capability, Effect};

use __bindings::warden::plugin::types as wit;

/// The context of one call.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// Task the call belongs to.
    pub task_id: String,
    /// Step within the task.
    pub step_id: String,
    /// When true, a mutating tool must only report what it would change.
    pub dry_run: bool,
}

/// Why a call failed; reaches the host as the WIT `tool-error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolError {
    /// The input is well-formed but makes no sense to the tool.
    InvalidInput(String),
    /// A capability the tool needed was denied by the host.
    Denied(String),
    /// The tool ran and failed.
    Failed(String),
}

impl std::fmt::Display for ToolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ToolError::InvalidInput(m) => write!(f, "invalid input: {m}"),
            ToolError::Denied(m) => write!(f, "denied: {m}"),
            ToolError::Failed(m) => write!(f, "failed: {m}"),
        }
    }
}

impl std::error::Error for ToolError {}

/// A warden tool. Implement it and call [`export_tool!`] once.
pub trait Tool {
    /// Input document; its JSON Schema is published and enforced by the host.
    type Input: serde::de::DeserializeOwned + schemars::JsonSchema;
    /// Output document; its JSON Schema is published.
    type Output: serde::Serialize + schemars::JsonSchema;
    /// Tool name: lowercase letters, digits and `-`.
    const NAME: &'static str;
    /// Version; usually `env!("CARGO_PKG_VERSION")`.
    const VERSION: &'static str;
    /// One or two sentences for humans and planners.
    const DESCRIPTION: &'static str;
    /// What a call can do to the world. Default: read-only.
    const EFFECT: Effect = Effect::ReadOnly;
    /// Whether the tool honours [`Context::dry_run`]. Default: false.
    const SUPPORTS_DRY_RUN: bool = false;

    /// Capabilities the tool asks for. Default: none.
    fn capabilities() -> Vec<Capability> {
        Vec::new()
    }

    /// Run the tool once.
    fn invoke(ctx: &Context, input: Self::Input) -> Result<Self::Output, ToolError>;
}

#[doc(hidden)]
pub fn __describe<T: Tool>() -> wit::Manifest {
    let schema_text =
        |s: schemars::Schema| serde_json::to_string(&s).unwrap_or_else(|_| "{}".to_string());
    wit::Manifest {
        name: T::NAME.to_string(),
        version: T::VERSION.to_string(),
        description: T::DESCRIPTION.to_string(),
        input_schema: schema_text(schemars::schema_for!(T::Input)),
        output_schema: schema_text(schemars::schema_for!(T::Output)),
        effect: match T::EFFECT {
            Effect::ReadOnly => wit::Effect::ReadOnly,
            Effect::Mutating => wit::Effect::Mutating,
            Effect::Destructive => wit::Effect::Destructive,
        },
        supports_dry_run: T::SUPPORTS_DRY_RUN,
        capabilities: T::capabilities()
            .into_iter()
            .map(|c| match c {
                Capability::Http { hosts } => wit::Capability::Http(hosts),
                Capability::Kv => wit::Capability::Kv,
            })
            .collect(),
    }
}

#[doc(hidden)]
pub fn __invoke<T: Tool>(ctx: wit::CallContext, input: String) -> Result<String, wit::ToolError> {
    let input: T::Input = serde_json::from_str(&input)
        .map_err(|e| wit::ToolError::InvalidInput(format!("input: {e}")))?;
    let ctx = Context {
        task_id: ctx.task_id,
        step_id: ctx.step_id,
        dry_run: ctx.dry_run,
    };
    let output = T::invoke(&ctx, input).map_err(|e| match e {
        ToolError::InvalidInput(m) => wit::ToolError::InvalidInput(m),
        ToolError::Denied(m) => wit::ToolError::Denied(m),
        ToolError::Failed(m) => wit::ToolError::Failed(m),
    })?;
    serde_json::to_string(&output).map_err(|e| wit::ToolError::Failed(format!("output: {e}")))
}

/// Export a [`Tool`] as the plugin's entry points. Use once per plugin crate.
#[macro_export]
macro_rules! export_tool {
    ($tool:ty) => {
        // Exports only exist in the component; a native build (the plugin's
        // unit tests) links without them.
        #[cfg(target_arch = "wasm32")]
        #[doc(hidden)]
        struct __WardenExport;

        #[cfg(target_arch = "wasm32")]
        impl $crate::__bindings::exports::warden::plugin::handler::Guest for __WardenExport {
            fn describe() -> $crate::__bindings::warden::plugin::types::Manifest {
                $crate::__describe::<$tool>()
            }

            fn invoke(
                ctx: $crate::__bindings::warden::plugin::types::CallContext,
                input: ::std::string::String,
            ) -> ::std::result::Result<
                ::std::string::String,
                $crate::__bindings::warden::plugin::types::ToolError,
            > {
                $crate::__invoke::<$tool>(ctx, input)
            }
        }

        #[cfg(target_arch = "wasm32")]
        $crate::__bindings::__export_world_tool!(__WardenExport with_types_in $crate::__bindings);
    };
}
