//! The bounds of the fetcher ([`FetcherLimits`], part of [`super::AgentConfig`]): how long a
//! download may take to connect, stall or run in total, and how large a download and an archive's
//! expansion may be.
//!
//! Defaults follow Mesos where it has a knob (`--fetcher_stall_timeout`, 1 min) and otherwise
//! what an operator would expect of a production agent: a dead server is given up on after 30 s,
//! a whole fetch after 10 min (Mesos bounds the launch, fetch included, by
//! `executor_registration_timeout`; operators raise that for large artifacts, so the fetch here
//! gets its own, larger bound), a download may be 4 GiB and an archive may expand to 16 GiB in
//! at most 1,000,000 entries.

use std::time::Duration;

/// Bounds of the fetcher of one agent. Exceeding any of them fails the fetch, and with it the
/// task's launch (TASK_FAILED, REASON_CONTAINER_LAUNCH_FAILED, a message naming the limit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetcherLimits {
    /// Longest wait for a TCP connection (and TLS handshake) to a URI's server (default 30 s).
    pub connect_timeout: Duration,
    /// Longest silence of a server while its answer is awaited or its body read (Mesos'
    /// `--fetcher_stall_timeout`, default 1 min).
    pub stall_timeout: Duration,
    /// Longest time the fetch of all URIs of one launch may take (default 10 min).
    pub deadline: Duration,
    /// Largest download, in bytes (default 4 GiB); a larger `Content-Length` is refused before
    /// the body is read.
    pub max_download_bytes: u64,
    /// Largest total size of the files an archive (or a `.gz` file) expands to, in bytes
    /// (default 16 GiB).
    pub max_extracted_bytes: u64,
    /// Largest number of entries an archive may have (default 1,000,000).
    pub max_archive_entries: u64,
}

impl Default for FetcherLimits {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(30),
            stall_timeout: Duration::from_secs(60),
            deadline: Duration::from_secs(10 * 60),
            max_download_bytes: 4 << 30,
            max_extracted_bytes: 16 << 30,
            max_archive_entries: 1_000_000,
        }
    }
}
