//! Test support: real etcd servers (Debian's `etcd-server`, binary `etcd`) on free loopback
//! ports with temporary data directories, single members and three-member clusters, that the
//! tests kill, stop, continue and restart. Every process is killed when its handle drops.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use mesos_sdk::storage::{EtcdStore, EtcdStoreBuilder};

/// The etcd binary: `$ETCD_BIN` or `etcd` on the PATH.
fn etcd_binary() -> String {
    std::env::var("ETCD_BIN").unwrap_or_else(|_| "etcd".to_owned())
}

/// A free loopback port (bound, read, released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

/// One member's fixed identity, so that it can be restarted on the same ports and data.
#[derive(Debug, Clone)]
struct MemberSpec {
    name: String,
    client_port: u16,
    peer_port: u16,
    data_dir: PathBuf,
    initial_cluster: String,
    token: String,
    /// Server certificate and key files: clients then talk `https://`.
    tls: Option<(PathBuf, PathBuf)>,
}

impl MemberSpec {
    fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }
}

/// One etcd process.
#[derive(Debug)]
pub struct EtcdMember {
    spec: MemberSpec,
    child: Option<Child>,
}

impl EtcdMember {
    fn spawn(spec: MemberSpec, state: &str) -> Self {
        let log =
            std::fs::File::create(spec.data_dir.with_extension("log")).expect("etcd log file");
        let client = format!("{}://127.0.0.1:{}", spec.scheme(), spec.client_port);
        let peer = format!("http://127.0.0.1:{}", spec.peer_port);
        let mut command = Command::new(etcd_binary());
        if let Some((cert, key)) = &spec.tls {
            command
                .arg("--cert-file")
                .arg(cert)
                .arg("--key-file")
                .arg(key);
        }
        let child = command
            .args(["--name", &spec.name])
            .args(["--data-dir", &spec.data_dir.to_string_lossy()])
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &spec.initial_cluster])
            .args(["--initial-cluster-state", state])
            .args(["--initial-cluster-token", &spec.token])
            .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
            .args(["--logger", "zap", "--log-level", "warn"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("etcd log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start `{}` ({e}); install Debian's etcd-server (scripts/test-all.sh does)",
                    etcd_binary()
                )
            });
        Self {
            spec,
            child: Some(child),
        }
    }

    /// `http://127.0.0.1:<client port>` (`https://` with TLS).
    pub fn endpoint(&self) -> String {
        format!(
            "{}://127.0.0.1:{}",
            self.spec.scheme(),
            self.spec.client_port
        )
    }

    /// The process id (while running).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL, and wait for the process.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the killed member again on the same ports and data.
    pub fn restart(&mut self) {
        self.kill();
        *self = Self::spawn(self.spec.clone(), "existing");
    }

    /// Sends a signal (`STOP`, `CONT`, ...) with `kill(1)`.
    pub fn signal(&self, signal: &str) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill")
                .args([format!("-{signal}"), pid.to_string()])
                .status();
        }
    }
}

impl Drop for EtcdMember {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A cluster of one or more members; the data directories go away on drop.
#[derive(Debug)]
pub struct EtcdCluster {
    /// The members (kill or restart them through these).
    pub members: Vec<EtcdMember>,
    /// The CA clients must trust (TLS members only).
    pub ca_pem: Option<String>,
    _dir: tempfile::TempDir,
}

impl EtcdCluster {
    /// Starts `size` members and waits until the cluster serves requests.
    pub async fn start(size: usize) -> Self {
        Self::start_with(size, None).await
    }

    /// One member serving clients over TLS with this server certificate and key (PEM); the
    /// test stores trust `ca_pem`.
    pub async fn single_tls(cert_pem: &str, key_pem: &str, ca_pem: &str) -> Self {
        Self::start_with(
            1,
            Some((cert_pem.to_owned(), key_pem.to_owned(), ca_pem.to_owned())),
        )
        .await
    }

    async fn start_with(size: usize, tls: Option<(String, String, String)>) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let tls_files = tls.as_ref().map(|(cert, key, _)| {
            let (cert_file, key_file) =
                (dir.path().join("server.pem"), dir.path().join("server.key"));
            std::fs::write(&cert_file, cert).expect("write the server certificate");
            std::fs::write(&key_file, key).expect("write the server key");
            (cert_file, key_file)
        });
        let token = format!("t{}", free_port());
        let ports: Vec<(u16, u16)> = (0..size).map(|_| (free_port(), free_port())).collect();
        let initial_cluster = ports
            .iter()
            .enumerate()
            .map(|(i, (_, peer))| format!("m{i}=http://127.0.0.1:{peer}"))
            .collect::<Vec<_>>()
            .join(",");
        let members = ports
            .iter()
            .enumerate()
            .map(|(i, (client, peer))| {
                EtcdMember::spawn(
                    MemberSpec {
                        name: format!("m{i}"),
                        client_port: *client,
                        peer_port: *peer,
                        data_dir: dir.path().join(format!("m{i}")),
                        initial_cluster: initial_cluster.clone(),
                        token: token.clone(),
                        tls: tls_files.clone(),
                    },
                    "new",
                )
            })
            .collect();
        let cluster = Self {
            members,
            ca_pem: tls.map(|(_, _, ca)| ca),
            _dir: dir,
        };
        cluster.wait_ready().await;
        cluster
    }

    /// One member.
    pub async fn single() -> Self {
        Self::start(1).await
    }

    /// Every member's client endpoint.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(EtcdMember::endpoint).collect()
    }

    /// The first member's endpoint.
    pub fn endpoint(&self) -> String {
        self.members[0].endpoint()
    }

    /// Waits until a store on all endpoints can read (panics after 30 s).
    pub async fn wait_ready(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let store = self
                .builder()
                .connect_timeout(Duration::from_millis(500))
                .request_timeout(Duration::from_millis(500))
                .connect()
                .await;
            if let Ok(store) = store {
                use mesos_sdk::storage::Store;
                if store.get("/ready-probe").await.is_ok() {
                    return;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "etcd at {:?} did not become ready",
                self.endpoints()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A store builder on every endpoint (trusting the cluster's CA, if TLS).
    pub fn builder(&self) -> EtcdStoreBuilder {
        let builder = EtcdStore::builder(self.endpoints());
        match &self.ca_pem {
            Some(ca) => builder.tls_ca_pem(ca.as_bytes()),
            None => builder,
        }
    }

    /// A store on every endpoint with short timeouts.
    pub async fn store(&self) -> EtcdStore {
        self.builder()
            .connect_timeout(Duration::from_secs(2))
            .request_timeout(Duration::from_secs(2))
            .connect()
            .await
            .expect("connect to test etcd")
    }
}
