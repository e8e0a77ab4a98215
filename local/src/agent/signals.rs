//! Signals to process groups and liveness checks of processes (through `/proc`), so that a
//! recycled pid is never signalled.

/// Kills a process group, ignoring groups that are already gone.
pub(crate) fn signal_group(pgid: i32, signal: nix::sys::signal::Signal) {
    if pgid <= 0 {
        return;
    }
    if let Err(err) = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), signal) {
        if err != nix::errno::Errno::ESRCH {
            tracing::warn!(pgid, ?signal, %err, "could not signal process group");
        }
    }
}

/// Whether `pid` is a live process started for `executor_id` (its environment names it), so
/// that a recycled pid is never signalled.
pub(super) fn runs_executor(pid: i32, executor_id: &str) -> bool {
    if !process_alive(pid) {
        return false;
    }
    let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
        return false;
    };
    let wanted = format!("MESOS_EXECUTOR_ID={executor_id}");
    environ
        .split(|b| *b == 0)
        .any(|entry| entry == wanted.as_bytes())
}

/// Whether a process exists and is not a zombie.
pub(crate) fn process_alive(pid: i32) -> bool {
    if pid <= 0 || nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_err() {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .map(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X'))
            .unwrap_or(true),
        Err(_) => true,
    }
}
