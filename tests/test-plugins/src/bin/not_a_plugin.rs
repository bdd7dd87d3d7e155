//! Test guest `not_a_plugin`: a valid component that exports nothing warden knows.
fn main() {
    println!("hello");
}
