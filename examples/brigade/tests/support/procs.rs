//! Test support: finding the `brigade-executor` processes of one processor among this test
//! process's descendants (to kill -9 one of them).
#![allow(dead_code)]

/// The pids of `brigade-executor` processes descending from this test process whose working
/// directory is the sandbox of an executor `brigade-<processor>-...` (per-message executors and
/// warm workers alike).
pub fn executors_of(processor: &str) -> Vec<u32> {
    let sandbox_of = format!("/executors/brigade-{processor}-");
    let me = std::process::id();
    let parent_of = |pid: u32| -> Option<u32> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let after = stat.rsplit_once(')')?.1;
        after.split_whitespace().nth(1)?.parse().ok()
    };
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let first = cmdline.split(|b| *b == 0).next().unwrap_or_default();
        if !String::from_utf8_lossy(first).ends_with("brigade-executor") {
            continue;
        }
        let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap_or_default();
        if !cwd.to_string_lossy().contains(&sandbox_of) {
            continue;
        }
        let mut at = pid;
        for _ in 0..16 {
            match parent_of(at) {
                Some(p) if p == me => {
                    out.push(pid);
                    break;
                }
                Some(p) if p > 1 => at = p,
                _ => break,
            }
        }
    }
    out
}
