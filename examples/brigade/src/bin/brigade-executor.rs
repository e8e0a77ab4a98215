//! `brigade-executor` (placeholder: filled in by the Brigade work).

fn main() {
    eprintln!("brigade-executor: not built yet");
    std::process::exit(2);
}
