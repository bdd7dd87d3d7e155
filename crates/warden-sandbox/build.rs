//! Records the target triple this crate is built for, so a sandbox can name
//! the target its precompiled plugins must have been built for.

fn main() {
    let target = std::env::var("TARGET").unwrap_or_default();
    println!("cargo:rustc-env=WARDEN_SANDBOX_TARGET={target}");
    println!("cargo:rerun-if-changed=build.rs");
}
