//! `mesos-local`: runs an embedded Mesos-compatible master and agents in one process until
//! Ctrl-C or SIGTERM. Flags are named like Mesos' own where one exists.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use mesos_local::agent::{DockerConfig, FetcherCacheConfig};
use mesos_local::cluster::{DEFAULT_RESOURCES, LocalCluster};
use mesos_local::server::HttpLimits;

/// Runs a local Mesos-compatible cluster (one master, N agents) on this machine.
#[derive(Debug, Parser)]
#[command(name = "mesos-local", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    ip: IpAddr,
    /// Master port (0: any free port).
    #[arg(long, default_value_t = 5050)]
    port: u16,
    /// Hostname the master and agents report. Without it the master reports `localhost` and
    /// each agent its own address (on 127.0.0.1, agent N listens on 127.0.0.N+1).
    #[arg(long)]
    hostname: Option<String>,
    /// Work directory; agent N keeps its checkpoints in WORK_DIR/agents/N.
    #[arg(long = "work_dir", visible_alias = "work-dir")]
    work_dir: Option<PathBuf>,
    /// Number of agents.
    #[arg(long, default_value_t = 1)]
    agents: usize,
    /// Resources of each agent, Mesos syntax.
    #[arg(long, default_value = DEFAULT_RESOURCES)]
    resources: String,
    /// Attributes of each agent, Mesos syntax (`rack:r1;zone:2`).
    #[arg(long, default_value = "")]
    attributes: String,
    /// Scheduler heartbeat interval (Mesos duration such as `15secs`, or plain seconds).
    #[arg(long = "heartbeat_interval", default_value = "15secs", value_parser = parse_duration)]
    heartbeat_interval: Duration,
    /// Offer timeout (Mesos duration); no timeout when absent.
    #[arg(long = "offer_timeout", value_parser = parse_duration)]
    offer_timeout: Option<Duration>,
    /// Require HTTP Basic authentication of frameworks (needs --credentials).
    #[arg(long = "authenticate_http_frameworks")]
    authenticate_http_frameworks: bool,
    /// Credentials file: Mesos JSON (`{"credentials": [{"principal": .., "secret": ..}]}`) or
    /// one `principal secret` pair per line.
    #[arg(long)]
    credentials: Option<PathBuf>,
    /// Allocation interval (Mesos duration).
    #[arg(long = "allocation_interval", default_value = "1secs", value_parser = parse_duration)]
    allocation_interval: Duration,
    /// How often the master pings each agent (Mesos duration; Mesos' `--agent_ping_timeout`).
    #[arg(long = "agent_ping_timeout", default_value = "15secs", value_parser = parse_duration)]
    agent_ping_timeout: Duration,
    /// How many pings an agent may leave unanswered (or how many ping intervals its link may
    /// stay closed) before it is marked unreachable (Mesos' `--max_agent_ping_timeouts`).
    #[arg(long = "max_agent_ping_timeouts", default_value_t = 5)]
    max_agent_ping_timeouts: u32,
    /// Serve the fault-injection endpoints under `/__local/` (partitions, crashed agents,
    /// killed executors, lost acknowledgements, rescinded offers); no part of Mesos.
    #[arg(long = "fault-injection")]
    fault_injection: bool,
    /// A custom executor that has not subscribed within this time is killed (Mesos duration).
    #[arg(long = "executor_registration_timeout", default_value = "1mins", value_parser = parse_duration)]
    executor_registration_timeout: Duration,
    /// How long a restarted agent waits for checkpointing executors to resubscribe; also their
    /// MESOS_SUBSCRIPTION_BACKOFF_MAX (Mesos duration).
    #[arg(long = "executor_reregistration_timeout", default_value = "2secs", value_parser = parse_duration)]
    executor_reregistration_timeout: Duration,
    /// Default grace period between SIGTERM and SIGKILL of executors (Mesos duration).
    #[arg(long = "executor_shutdown_grace_period", default_value = "5secs", value_parser = parse_duration)]
    executor_shutdown_grace_period: Duration,
    /// MESOS_RECOVERY_TIMEOUT given to checkpointing executors (Mesos duration).
    #[arg(long = "recovery_timeout", default_value = "15mins", value_parser = parse_duration)]
    recovery_timeout: Duration,
    /// Time a client has to send a request's headers, also the idle timeout of kept-alive
    /// connections, on the master and agents (Mesos duration).
    #[arg(long = "http_header_read_timeout", default_value = "60secs", value_parser = parse_duration)]
    http_header_read_timeout: Duration,
    /// Time a client has to send a call's body (Mesos duration).
    #[arg(long = "http_body_read_timeout", default_value = "60secs", value_parser = parse_duration)]
    http_body_read_timeout: Duration,
    /// Largest scheduler, operator or executor call body, in bytes (larger ones get 413).
    #[arg(long = "max_call_body", default_value_t = HttpLimits::default().max_call_body)]
    max_call_body: usize,
    /// Connections each server serves before it closes idle ones to make room.
    #[arg(long = "max_connections", default_value_t = HttpLimits::default().max_connections)]
    max_connections: usize,
    /// The `docker` command line program the agents run DOCKER containers with (a name looked
    /// up in PATH, or a path).
    #[arg(long, default_value = "docker")]
    docker: PathBuf,
    /// The Docker Engine's endpoint, given to the CLI as `-H` (e.g.
    /// `unix:///var/run/docker.sock`); without it the CLI's default (DOCKER_HOST, then the
    /// default socket).
    #[arg(long = "docker-host", visible_alias = "docker_host")]
    docker_host: Option<String>,
    /// Pull images missing on the engine (as Mesos does); off by default, a missing image then
    /// fails the launch at once.
    #[arg(long = "docker-pull", visible_alias = "docker_pull")]
    docker_pull: bool,
    /// Directory of the agents' fetcher caches (agent N uses FETCHER_CACHE_DIR/N); default:
    /// each agent's work directory.
    #[arg(long = "fetcher-cache-dir", visible_alias = "fetcher_cache_dir")]
    fetcher_cache_dir: Option<PathBuf>,
    /// Largest size of each agent's fetcher cache (bytes, or Mesos syntax such as `2GB`,
    /// `512MB`); least recently used entries not in use are evicted beyond it.
    #[arg(long = "fetcher-cache-size", visible_alias = "fetcher_cache_size",
          default_value = "2GB", value_parser = parse_bytes)]
    fetcher_cache_size: u64,
}

/// Parses a byte size: a plain number of bytes, or a number with a Mesos unit (`B`, `KB`, `MB`,
/// `GB`, `TB`; powers of 1024).
fn parse_bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let shift = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "KB" => 10,
        "MB" => 20,
        "GB" => 30,
        "TB" => 40,
        other => return Err(format!("unknown size unit '{other}' in '{text}'")),
    };
    let number: f64 = number
        .parse()
        .map_err(|_| format!("invalid size '{text}'"))?;
    let bytes = number * f64::from(1u32 << 10).powi(shift / 10);
    if !bytes.is_finite() || bytes < 0.0 || bytes >= u64::MAX as f64 {
        return Err(format!("size '{text}' out of range"));
    }
    Ok(bytes as u64)
}

/// Parses a Mesos duration (`15secs`, `250ms`, `1.5mins`) or a plain number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(seconds)
            .map_err(|e| format!("invalid duration '{text}': {e}"));
    }
    mesos_sdk::duration::parse_duration(text).map_err(|e| e.to_string())
}

/// Reads a Mesos credentials file (JSON or `principal secret` lines).
fn read_credentials(path: &std::path::Path) -> Result<Vec<(String, String)>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read credentials {}: {e}", path.display()))?;
    if text.trim_start().starts_with('{') {
        let json: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| format!("invalid credentials JSON {}: {e}", path.display()))?;
        let list = json["credentials"]
            .as_array()
            .ok_or_else(|| format!("{}: expecting a 'credentials' array", path.display()))?;
        return list
            .iter()
            .map(|c| match (c["principal"].as_str(), c["secret"].as_str()) {
                (Some(p), Some(s)) => Ok((p.to_string(), s.to_string())),
                _ => Err(format!(
                    "{}: each credential needs 'principal' and 'secret'",
                    path.display()
                )),
            })
            .collect();
    }
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|line| {
            let mut parts = line.split_whitespace();
            match (parts.next(), parts.next()) {
                (Some(p), Some(s)) => Ok((p.to_string(), s.to_string())),
                _ => Err(format!("{}: bad line '{line}'", path.display())),
            }
        })
        .collect()
}

/// Ctrl-C or SIGTERM. The handlers are installed when this is called (before the URL is
/// printed), so a signal sent right after start-up is not lost.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = int.recv() => {}
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // No colour codes when stderr is a file or a pipe (CI logs, `2> log`).
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let mut builder = LocalCluster::builder()
        .ip(args.ip)
        .port(args.port)
        .hostname(
            args.hostname
                .clone()
                .unwrap_or_else(|| "localhost".to_string()),
        )
        .agents(args.agents)
        .resources(args.resources)
        .attributes(args.attributes)
        .heartbeat_interval(args.heartbeat_interval)
        .allocation_interval(args.allocation_interval)
        .agent_ping_interval(args.agent_ping_timeout)
        .agent_removal_timeout(args.agent_ping_timeout * args.max_agent_ping_timeouts.max(1))
        .fault_injection(args.fault_injection)
        .executor_registration_timeout(args.executor_registration_timeout)
        .executor_reregistration_timeout(args.executor_reregistration_timeout)
        .executor_shutdown_grace_period(args.executor_shutdown_grace_period)
        .recovery_timeout(args.recovery_timeout)
        .http_limits(HttpLimits {
            header_read_timeout: args.http_header_read_timeout,
            body_read_timeout: args.http_body_read_timeout,
            max_call_body: args.max_call_body,
            max_connections: args.max_connections,
            ..HttpLimits::default()
        });
    if args.authenticate_http_frameworks {
        let Some(path) = args.credentials.as_deref() else {
            eprintln!("mesos-local: --authenticate_http_frameworks needs --credentials");
            return ExitCode::FAILURE;
        };
        match read_credentials(path) {
            Ok(credentials) => builder = builder.credentials(credentials),
            Err(error) => {
                eprintln!("mesos-local: {error}");
                return ExitCode::FAILURE;
            }
        }
    }
    if let Some(hostname) = args.hostname {
        builder = builder.agent_hostname(hostname);
    }
    if let Some(timeout) = args.offer_timeout {
        builder = builder.offer_timeout(timeout);
    }
    if let Some(dir) = args.work_dir {
        builder = builder.work_dir(dir);
    }
    builder = builder
        .docker(DockerConfig {
            binary: args.docker,
            host: args.docker_host,
            pull_missing_images: args.docker_pull,
            ..DockerConfig::default()
        })
        .fetcher_cache(FetcherCacheConfig {
            dir: args.fetcher_cache_dir,
            max_bytes: args.fetcher_cache_size,
        });
    let signal = shutdown_signal();
    let cluster = match builder.start().await {
        Ok(cluster) => cluster,
        Err(error) => {
            eprintln!("mesos-local: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", cluster.master_url());
    for agent in cluster.agents() {
        tracing::info!(id = %agent.id().value, url = %agent.url(), "agent running");
    }
    signal.await;
    tracing::info!("shutting down");
    cluster.shutdown().await;
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn credentials_files() {
        let dir = std::env::temp_dir().join(format!("mesos-local-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let json = dir.join("c.json");
        std::fs::write(
            &json,
            r#"{"credentials": [{"principal": "a", "secret": "b"}]}"#,
        )
        .unwrap();
        assert_eq!(
            super::read_credentials(&json),
            Ok(vec![("a".to_string(), "b".to_string())])
        );
        let lines = dir.join("c.txt");
        std::fs::write(&lines, "a b\n\nc d\n").unwrap();
        assert_eq!(super::read_credentials(&lines).unwrap().len(), 2);
        std::fs::write(&lines, "lonely\n").unwrap();
        assert!(super::read_credentials(&lines).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn byte_sizes() {
        use super::parse_bytes;
        assert_eq!(parse_bytes("123"), Ok(123));
        assert_eq!(parse_bytes("2GB"), Ok(2 << 30));
        assert_eq!(parse_bytes("512MB"), Ok(512 << 20));
        assert_eq!(parse_bytes("1.5KB"), Ok(1536));
        assert_eq!(parse_bytes("10B"), Ok(10));
        assert!(parse_bytes("2XB").is_err());
        assert!(parse_bytes("GB").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15secs"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5secs"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2mins"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("3 secs").is_err());
        assert!(parse_duration("abc").is_err());
    }
}
