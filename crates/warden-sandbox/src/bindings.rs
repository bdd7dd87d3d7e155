//! Host-side bindings of the `warden:plugin/tool` world, generated once.

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "warden:plugin/tool",
    exports: { default: async },
    imports: { "warden:plugin/arm.call": async },
    with: {
        "wasi:http": wasmtime_wasi_http::p2::bindings::http,
        "wasi:io": wasmtime_wasi::p2::bindings::io,
        "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
    },
});

/// The exported interface this host speaks, as it appears in a component.
pub(crate) const HANDLER_INTERFACE: &str = "warden:plugin/handler@0.1.0";
/// The package prefix every version of the interface shares.
pub(crate) const HANDLER_PREFIX: &str = "warden:plugin/handler@";
