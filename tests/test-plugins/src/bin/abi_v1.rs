//! Test guest `abi_v1`: exports a future major version of the plugin ABI.
wit_bindgen::generate!({
    inline: r#"
        package warden:plugin@1.0.0;
        interface handler {
            describe: func() -> string;
        }
        world tool {
            export handler;
        }
    "#,
});

struct Guest;

impl exports::warden::plugin::handler::Guest for Guest {
    fn describe() -> String {
        "v1".into()
    }
}

export!(Guest);

fn main() {}
