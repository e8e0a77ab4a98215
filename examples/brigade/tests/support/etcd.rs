//! Test support: one real etcd (Debian's `etcd-server`, `$ETCD_BIN` or `etcd` on the PATH) on
//! free loopback ports with a temporary data directory, killed when its handle drops.
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use mesos_sdk::storage::{EtcdStore, Store};

use super::tansu::free_port;

/// One etcd process.
#[derive(Debug)]
pub struct Etcd {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Etcd {
    /// Starts etcd and waits until it answers; `Err` with the reason when it cannot start.
    pub async fn start() -> Result<Self, String> {
        let binary = std::env::var("ETCD_BIN").unwrap_or_else(|_| "etcd".into());
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let port = free_port();
        let peer = free_port();
        let client = format!("http://127.0.0.1:{port}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let log = std::fs::File::create(dir.path().join("etcd.log")).map_err(|e| e.to_string())?;
        let child = Command::new(&binary)
            .args(["--name", "m0"])
            .args(["--data-dir", &dir.path().join("data").to_string_lossy()])
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &format!("m0={peer_url}")])
            .args(["--log-level", "warn"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {binary}: {e}"))?;
        let etcd = Self {
            child,
            port,
            _dir: dir,
        };
        for _ in 0..300 {
            if let Ok(store) = etcd.try_store().await {
                if store.get("/probe").await.is_ok() {
                    return Ok(etcd);
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err("etcd did not become ready within 30 s".into())
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn try_store(&self) -> Result<EtcdStore, mesos_sdk::storage::Error> {
        EtcdStore::builder([self.endpoint()])
            .connect_timeout(Duration::from_millis(500))
            .request_timeout(Duration::from_secs(2))
            .connect()
            .await
    }

    /// A store on this etcd.
    pub async fn store(&self) -> EtcdStore {
        self.try_store().await.expect("etcd store")
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
