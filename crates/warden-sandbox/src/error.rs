use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong loading or calling a plugin.
///
/// Each limit violation is its own variant, so callers can tell a guest that
/// ran too long from one that ran out of memory; after any of them the
/// sandbox keeps serving other calls.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxError {
    /// Reading a plugin file failed (the message names the path).
    #[error("{error}")]
    Io {
        /// File involved.
        path: PathBuf,
        /// Underlying error, from fs-err, so its message names the path.
        error: std::io::Error,
    },
    /// The bytes are not WebAssembly at all, or are truncated or corrupt.
    #[error("{origin}: not a valid WebAssembly file: {message}")]
    InvalidWasm {
        /// File or name the bytes came from.
        origin: String,
        /// What the parser said.
        message: String,
    },
    /// The bytes are a core WebAssembly module, not a component.
    #[error(
        "{origin}: is a core WebAssembly module, not a component; build the plugin for wasm32-wasip2 (or wrap it with `wasm-tools component new`)"
    )]
    NotAComponent {
        /// File or name the bytes came from.
        origin: String,
    },
    /// The component does not export the warden plugin interface.
    #[error("{origin}: is not a warden plugin: {reason}")]
    NotAPlugin {
        /// File or name the bytes came from.
        origin: String,
        /// What is missing.
        reason: String,
    },
    /// The component targets an ABI version this host does not speak.
    #[error("{origin}: built for plugin ABI {found}, but this host speaks {expected}")]
    IncompatibleAbi {
        /// File or name the bytes came from.
        origin: String,
        /// The interface name the component exports.
        found: String,
        /// The interface name this host expects.
        expected: String,
    },
    /// The component imports something the host does not provide.
    #[error("{origin}: cannot be linked: {message}")]
    Link {
        /// File or name the bytes came from.
        origin: String,
        /// What wasmtime said (names the missing import).
        message: String,
    },
    /// The plugin's `describe()` returned something unusable.
    #[error("{origin}: invalid manifest: {message}")]
    InvalidManifest {
        /// File or name the bytes came from.
        origin: String,
        /// What is wrong with it.
        message: String,
    },
    /// The input does not satisfy the plugin's input schema; the guest did not run.
    #[error("{plugin}: input does not match the tool's schema: {}", errors.join("; "))]
    InvalidInput {
        /// Plugin name.
        plugin: String,
        /// One entry per violation, with its JSON pointer.
        errors: Vec<String>,
    },
    /// The call ran past its wall-time deadline and was interrupted.
    #[error("{plugin}: call exceeded its deadline of {limit:?} and was stopped")]
    Timeout {
        /// Plugin name.
        plugin: String,
        /// The deadline.
        limit: Duration,
    },
    /// The guest tried to grow its memory past the cap.
    #[error("{plugin}: call exceeded the memory limit of {limit} bytes")]
    MemoryLimit {
        /// Plugin name.
        plugin: String,
        /// Cap on linear memory, in bytes.
        limit: usize,
    },
    /// The guest returned more output than allowed.
    #[error("{plugin}: output of {size} bytes exceeds the limit of {limit} bytes")]
    OutputTooLarge {
        /// Plugin name.
        plugin: String,
        /// Size the guest returned.
        size: usize,
        /// Cap on output size.
        limit: usize,
    },
    /// The guest trapped (a panic, an abort, an out-of-bounds access).
    #[error("{plugin}: guest trapped: {message}")]
    Trapped {
        /// Plugin name.
        plugin: String,
        /// The trap, with the guest's last stderr lines (a Rust panic message) when present.
        message: String,
    },
    /// The guest returned output that is not JSON.
    #[error("{plugin}: output is not valid JSON: {message}")]
    InvalidOutput {
        /// Plugin name.
        plugin: String,
        /// Parser message.
        message: String,
    },
    /// The tool ran and reported an error of its own.
    #[error("{plugin}: {kind}: {message}")]
    Tool {
        /// Plugin name.
        plugin: String,
        /// `invalid input`, `denied` or `failed`.
        kind: ToolErrorKind,
        /// The tool's message.
        message: String,
    },
    /// No plugin of that name is loaded.
    #[error("no plugin named `{name}` (loaded: {})", if available.is_empty() { "none".to_string() } else { available.join(", ") })]
    UnknownPlugin {
        /// Requested name.
        name: String,
        /// Names that are loaded.
        available: Vec<String>,
    },
    /// Two plugins in one directory have the same tool name.
    #[error("plugin name `{name}` is declared by both {} and {}", first.display(), second.display())]
    DuplicatePlugin {
        /// Tool name.
        name: String,
        /// First file.
        first: PathBuf,
        /// Second file.
        second: PathBuf,
    },
    /// The extra CA bundle for plugins' HTTPS cannot be used.
    #[error("extra CA file {}: {message}", path.display())]
    ExtraCaFile {
        /// The file configured with `SandboxConfig::extra_ca_file`.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A plugin path is not a regular file (after following symlinks): a
    /// FIFO, a device, a directory, a socket.
    #[error("{}: is {kind}, not a regular file; a plugin must be a regular `.wasm` file", path.display())]
    NotAFile {
        /// The path as given (or as found in the plugin directory).
        path: PathBuf,
        /// What it is instead, e.g. `a FIFO (named pipe)`.
        kind: String,
    },
    /// A plugin file is larger than `SandboxConfig::max_plugin_size`; it
    /// was not read.
    #[error("{}: is {size} bytes, more than the plugin size limit of {limit} bytes (SandboxConfig::max_plugin_size)", path.display())]
    FileTooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The configured limit.
        limit: u64,
    },
    /// A plugin needs more memories, tables or table elements per instance
    /// than the configuration allows.
    #[error(
        "{origin}: needs {needed} {what} per instance, more than SandboxConfig::{setting} allows ({limit})"
    )]
    InstanceShape {
        /// File or name the bytes came from.
        origin: String,
        /// `memories`, `tables` or `table elements`.
        what: &'static str,
        /// What the plugin needs.
        needed: u64,
        /// The `SandboxConfig` setter that sets the limit.
        setting: &'static str,
        /// The configured limit.
        limit: u64,
    },
    /// Address space for instances could not be reserved (an address-space
    /// limit such as `ulimit -v`, or a pool configured too large).
    #[error(
        "could not reserve {bytes} bytes of address space for {what}; lower {} or raise the process's address-space limit (ulimit -v): {message}",
        settings.iter().map(|(name, value)| format!("SandboxConfig::{name} (now {value})")).collect::<Vec<_>>().join(" or ")
    )]
    AddressSpace {
        /// What needed it: `the memory pool`, `a plugin instance's memory`.
        what: String,
        /// How much it needed.
        bytes: u64,
        /// The `SandboxConfig` setters that size it, with their values.
        settings: Vec<(&'static str, u64)>,
        /// What wasmtime said.
        message: String,
    },
    /// Every instance slot stayed busy for the call's whole deadline.
    #[error(
        "{plugin}: all {limit} instance slots stayed busy for {waited:?}; raise SandboxConfig::max_instances or make fewer calls at once"
    )]
    Busy {
        /// Plugin name.
        plugin: String,
        /// `SandboxConfig::max_instances`.
        limit: u32,
        /// How long the call waited.
        waited: Duration,
    },
    /// A runtime-only build (no `compile` feature) met a plugin for which no
    /// code precompiled for its engine is installed.
    #[error(
        "{origin}: this build cannot compile plugins and no code precompiled for {engine} is installed{}; precompile them with `warden plugin build --target {target}` and install them with `warden bundle install`",
        cache_dir.as_ref().map(|d| format!(" in {}", d.display())).unwrap_or_else(|| " (no cache directory is configured)".into())
    )]
    NotPrecompiled {
        /// File or name the plugin came from.
        origin: String,
        /// The engine the code must be built for (target, release, settings).
        engine: String,
        /// The target triple to precompile for.
        target: String,
        /// Where precompiled code was looked for.
        cache_dir: Option<PathBuf>,
    },
    /// Precompiled code that does not fit this engine (another wasmtime
    /// release, target, CPU or engine settings) or is not a component.
    #[error("{origin}: precompiled code does not fit this engine, {engine}: {message}")]
    Precompiled {
        /// File or name the code came from.
        origin: String,
        /// This sandbox's engine.
        engine: String,
        /// What wasmtime said.
        message: String,
    },
    /// A plugin's entry in the precompiled-code cache cannot be used: its
    /// sidecar does not verify under this host's cache key, or its code no
    /// longer matches the sidecar (altered, replaced, truncated), or it is
    /// not owned by this user. Reported where the build cannot recompile
    /// (runtime-only), or at the first call of a plugin opened lazily
    /// ([`Sandbox::open_file`](crate::Sandbox::open_file)).
    #[error(
        "{plugin}: its precompiled code in {} cannot be used: {reason}; reinstall the plugins (`warden bundle install`) or rebuild them (`warden plugin build`)",
        path.display()
    )]
    CacheEntry {
        /// The plugin (its name, or the file it came from).
        plugin: String,
        /// The cache entry.
        path: PathBuf,
        /// Which check failed.
        reason: String,
    },
    /// The engine could not be set up with this configuration.
    #[error("sandbox configuration: {message}")]
    Config {
        /// What wasmtime said.
        message: String,
    },
}

/// The kind of error a tool reported itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolErrorKind {
    /// Input made no sense to the tool.
    InvalidInput,
    /// A capability was denied.
    Denied,
    /// The tool failed.
    Failed,
}

impl std::fmt::Display for ToolErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ToolErrorKind::InvalidInput => "invalid input",
            ToolErrorKind::Denied => "denied",
            ToolErrorKind::Failed => "failed",
        })
    }
}
