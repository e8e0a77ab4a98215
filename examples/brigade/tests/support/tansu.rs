//! Test support: a real Kafka-protocol broker, `tansu` (memory storage engine), on a free
//! loopback port, started by the test and killed when its handle drops. The binary is found
//! through `$TANSU_BIN`, `<workspace>/target/tools/bin/tansu`, /work/cache/tansu/bin/tansu, then
//! the PATH; when none exists the caller skips with the printed reason
//! (`examples/brigade/scripts/install-tansu.sh` installs it).
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free loopback port (bound, read, released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

/// Where the tansu binary is, or why there is none.
pub fn tansu_binary() -> Result<PathBuf, String> {
    if let Ok(path) = std::env::var("TANSU_BIN") {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!("TANSU_BIN={} does not exist", path.display()))
        };
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let candidates = [
        workspace.join("target/tools/bin/tansu"),
        PathBuf::from("/work/cache/tansu/bin/tansu"),
    ];
    for candidate in candidates {
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let candidate = dir.join("tansu");
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    Err("no tansu binary (set TANSU_BIN or run examples/brigade/scripts/install-tansu.sh)".into())
}

/// One tansu broker process.
#[derive(Debug)]
pub struct Tansu {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Tansu {
    /// Starts a broker and waits until it accepts connections; `Err` with the reason to skip
    /// when there is no binary.
    pub fn start() -> Result<Self, String> {
        let binary = tansu_binary()?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("tansu.log")).map_err(|e| e.to_string())?;
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(&binary)
            .arg("broker")
            .args(["--listener-url", &url])
            .args(["--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://tansu/"])
            .env("RUST_LOG", "warn")
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let mut broker = Self {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(broker);
            }
            if let Ok(Some(status)) = broker.child.try_wait() {
                panic!("tansu exited early ({status}):\n{}", broker.log());
            }
            if Instant::now() > deadline {
                panic!("tansu did not listen within 20 s:\n{}", broker.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `127.0.0.1:<port>` for `bootstrap.servers`.
    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The broker's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("tansu.log")).unwrap_or_default()
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts tansu or prints why the test is skipped and returns `None`.
pub fn tansu_or_skip(test: &str) -> Option<Tansu> {
    match Tansu::start() {
        Ok(t) => Some(t),
        Err(reason) => {
            eprintln!("SKIPPED {test}: {reason}");
            None
        }
    }
}
