//! The `brigade` command line (placeholder: filled in by the Brigade work).

fn main() {
    eprintln!("brigade: not built yet");
    std::process::exit(2);
}
