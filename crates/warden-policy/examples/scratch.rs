#![allow(clippy::print_stdout, clippy::unwrap_used)]
fn main() {
    let dir = std::env::args().nth(1).unwrap();
    let r = warden_policy::run_tests(&dir);
    match r { Ok(r) => { for f in r.failures() { println!("{f:?}"); } println!("{}/{}", r.passed(), r.results.len()); } Err(e) => println!("ERR {e}") }
}
