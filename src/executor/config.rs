//! Executor configuration: the `MESOS_*` environment an agent gives the executors it launches,
//! plus the runtime's own tuning knobs.
//!
//! [`ExecutorConfig::from_env`] reads the process environment; [`ExecutorConfig::from_vars`]
//! reads any list of pairs (tests use it). Every missing required variable is reported at once in
//! [`ConfigError::Missing`]; a variable with a bad value gets its own [`ConfigError`] variant.

use std::path::PathBuf;
use std::time::Duration;

use crate::codec::Format;
use crate::duration::{DurationError, parse_duration};
use crate::recordio::DEFAULT_MAX_RECORD_SIZE;
use crate::v1::{AgentId, ExecutorId, FrameworkId};

/// `MESOS_FRAMEWORK_ID`: the framework the executor belongs to (required).
pub const ENV_FRAMEWORK_ID: &str = "MESOS_FRAMEWORK_ID";
/// `MESOS_EXECUTOR_ID`: the executor's own id (required).
pub const ENV_EXECUTOR_ID: &str = "MESOS_EXECUTOR_ID";
/// `MESOS_AGENT_ENDPOINT`: `ip:port` of the agent's HTTP server, no scheme (required).
pub const ENV_AGENT_ENDPOINT: &str = "MESOS_AGENT_ENDPOINT";
/// `MESOS_DIRECTORY`: the sandbox path on the host (required; deprecated by Mesos in favour of
/// `MESOS_SANDBOX`, but always set).
pub const ENV_DIRECTORY: &str = "MESOS_DIRECTORY";
/// `MESOS_SANDBOX`: the sandbox path inside the container (optional).
pub const ENV_SANDBOX: &str = "MESOS_SANDBOX";
/// `MESOS_CHECKPOINT`: `1`/`true` when the framework checkpoints (optional, default off).
pub const ENV_CHECKPOINT: &str = "MESOS_CHECKPOINT";
/// `MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD`: time allowed between SHUTDOWN and exit (default 5 s).
pub const ENV_SHUTDOWN_GRACE_PERIOD: &str = "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD";
/// `MESOS_RECOVERY_TIMEOUT`: how long to keep reconnecting to a recovering agent (default 15 min).
pub const ENV_RECOVERY_TIMEOUT: &str = "MESOS_RECOVERY_TIMEOUT";
/// `MESOS_SUBSCRIPTION_BACKOFF_MAX`: upper bound of each reconnect wait (default 2 s).
pub const ENV_SUBSCRIPTION_BACKOFF_MAX: &str = "MESOS_SUBSCRIPTION_BACKOFF_MAX";
/// `MESOS_EXECUTOR_AUTHENTICATION_TOKEN`: bearer token for the executor API (optional).
pub const ENV_AUTHENTICATION_TOKEN: &str = "MESOS_EXECUTOR_AUTHENTICATION_TOKEN";
/// `MESOS_DOMAIN_SOCKET`: unix socket path of the executor API (optional; recorded, not used).
pub const ENV_DOMAIN_SOCKET: &str = "MESOS_DOMAIN_SOCKET";
/// `MESOS_SLAVE_ID`: the agent's id (optional).
pub const ENV_AGENT_ID: &str = "MESOS_SLAVE_ID";
/// `MESOS_SLAVE_PID`: the agent's libprocess pid, `slave(1)@ip:port` (optional).
pub const ENV_AGENT_PID: &str = "MESOS_SLAVE_PID";
/// `MESOS_HTTP_COMMAND_EXECUTOR`: `1`/`0`, whether Mesos' command executor speaks HTTP (optional).
pub const ENV_HTTP_COMMAND_EXECUTOR: &str = "MESOS_HTTP_COMMAND_EXECUTOR";
/// `LIBPROCESS_SSL_ENABLED`: `1`/`true` when the agent serves HTTPS (optional, default off).
pub const ENV_SSL_ENABLED: &str = "LIBPROCESS_SSL_ENABLED";

/// Default of `MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD` (the agent flag's default).
pub const DEFAULT_SHUTDOWN_GRACE_PERIOD: Duration = Duration::from_secs(5);
/// Default of `MESOS_RECOVERY_TIMEOUT` (`--recovery_timeout`).
pub const DEFAULT_RECOVERY_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// Default of `MESOS_SUBSCRIPTION_BACKOFF_MAX` (`--executor_reregistration_timeout`).
pub const DEFAULT_SUBSCRIPTION_BACKOFF_MAX: Duration = Duration::from_secs(2);
/// Default time allowed for the first subscription (`--executor_registration_timeout`).
pub const DEFAULT_REGISTRATION_TIMEOUT: Duration = Duration::from_secs(60);
/// Default interval between resends of updates the agent did not accept.
pub const DEFAULT_UPDATE_RETRY_INTERVAL: Duration = Duration::from_secs(10);
/// Path of the executor API on an agent.
pub const EXECUTOR_API_PATH: &str = "/api/v1/executor";

/// A configuration that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Required variables are not set (all of them are listed).
    #[error("missing required environment variables: {}", .0.join(", "))]
    Missing(Vec<&'static str>),
    /// A duration variable does not hold a Mesos duration.
    #[error("{variable}={value:?} is not a Mesos duration: {source}")]
    InvalidDuration {
        /// The variable.
        variable: &'static str,
        /// Its value.
        value: String,
        /// Why it does not parse.
        source: DurationError,
    },
    /// A boolean variable holds something other than `1`, `0`, `true` or `false`.
    #[error("{variable}={value:?} is not a boolean (expected 1, 0, true or false)")]
    InvalidBool {
        /// The variable.
        variable: &'static str,
        /// Its value.
        value: String,
    },
    /// `MESOS_AGENT_ENDPOINT` is not `host:port`.
    #[error("{ENV_AGENT_ENDPOINT}={0:?} is not host:port")]
    InvalidEndpoint(String),
    /// An id variable is set but empty.
    #[error("{0} is set but empty")]
    Empty(&'static str),
}

/// Everything the executor runtime needs to reach its agent and behave as Mesos expects.
///
/// The fields read from the environment are documented with their variable. The remaining fields
/// (`registration_timeout`, `update_retry_interval`, `call_timeout`, `max_record_size`,
/// `format`) are the runtime's own knobs with production defaults; tests shorten them.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ExecutorConfig {
    /// `MESOS_FRAMEWORK_ID`.
    pub framework_id: FrameworkId,
    /// `MESOS_EXECUTOR_ID`.
    pub executor_id: ExecutorId,
    /// `MESOS_AGENT_ENDPOINT`: `host:port`, no scheme.
    pub agent_endpoint: String,
    /// Use `https` to reach the agent (`LIBPROCESS_SSL_ENABLED`).
    pub tls: bool,
    /// `MESOS_DIRECTORY`: the sandbox on the host.
    pub directory: PathBuf,
    /// `MESOS_SANDBOX`: the sandbox inside the container, if the containerizer set it.
    pub sandbox: Option<PathBuf>,
    /// `MESOS_CHECKPOINT`: when true a broken stream is retried, otherwise the executor exits.
    pub checkpoint: bool,
    /// `MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD`: time between SHUTDOWN and the agent killing us.
    pub shutdown_grace_period: Duration,
    /// `MESOS_RECOVERY_TIMEOUT`: when checkpointing, give up reconnecting this long after the
    /// first failure.
    pub recovery_timeout: Duration,
    /// `MESOS_SUBSCRIPTION_BACKOFF_MAX`: each reconnect attempt waits a uniformly random time in
    /// `[0, subscription_backoff_max]`.
    pub subscription_backoff_max: Duration,
    /// `MESOS_EXECUTOR_AUTHENTICATION_TOKEN`: sent as `Authorization: Bearer <token>`.
    pub authentication_token: Option<String>,
    /// `MESOS_DOMAIN_SOCKET`: recorded only. The runtime always uses `agent_endpoint` over TCP;
    /// unix domain sockets are not supported.
    pub domain_socket: Option<PathBuf>,
    /// `MESOS_SLAVE_ID`.
    pub agent_id: Option<AgentId>,
    /// `MESOS_SLAVE_PID` (`slave(1)@ip:port`).
    pub agent_pid: Option<String>,
    /// `MESOS_HTTP_COMMAND_EXECUTOR`.
    pub http_command_executor: bool,
    /// Time allowed for the first subscription, including retries (default 60 s); also the limit
    /// for resubscribing after an ERROR event when not checkpointing.
    pub registration_timeout: Duration,
    /// Updates the agent did not accept (a failed UPDATE call) are sent again this often.
    pub update_retry_interval: Duration,
    /// Response timeout of non-streaming calls (the transport's default when `None`).
    pub call_timeout: Option<Duration>,
    /// Cap on one event record (bytes).
    pub max_record_size: usize,
    /// Body format of calls and events.
    pub format: Format,
}

impl ExecutorConfig {
    /// Reads the configuration from the process environment.
    ///
    /// Variables that are not valid UTF-8 are treated as unset.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(
            std::env::vars_os().filter_map(|(key, value)| {
                Some((key.into_string().ok()?, value.into_string().ok()?))
            }),
        )
    }

    /// Reads the configuration from `(name, value)` pairs; later pairs override earlier ones.
    pub fn from_vars<I, K, V>(vars: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: Into<String>,
    {
        let vars: std::collections::HashMap<String, String> = vars
            .into_iter()
            .map(|(key, value)| (key.as_ref().to_owned(), value.into()))
            .collect();
        let get = |name: &str| vars.get(name).map(String::as_str);

        let missing: Vec<&'static str> = [
            ENV_FRAMEWORK_ID,
            ENV_EXECUTOR_ID,
            ENV_AGENT_ENDPOINT,
            ENV_DIRECTORY,
        ]
        .into_iter()
        .filter(|name| get(name).is_none())
        .collect();
        if !missing.is_empty() {
            return Err(ConfigError::Missing(missing));
        }
        let required = |name: &'static str| -> Result<String, ConfigError> {
            match get(name) {
                Some("") => Err(ConfigError::Empty(name)),
                Some(value) => Ok(value.to_owned()),
                None => Err(ConfigError::Missing(vec![name])),
            }
        };
        let framework_id = FrameworkId {
            value: required(ENV_FRAMEWORK_ID)?,
        };
        let executor_id = ExecutorId {
            value: required(ENV_EXECUTOR_ID)?,
        };
        let agent_endpoint = required(ENV_AGENT_ENDPOINT)?;
        validate_endpoint(&agent_endpoint)?;
        let directory = PathBuf::from(required(ENV_DIRECTORY)?);

        let duration = |name: &'static str, default: Duration| match get(name) {
            None => Ok(default),
            Some(value) => parse_duration(value).map_err(|source| ConfigError::InvalidDuration {
                variable: name,
                value: value.to_owned(),
                source,
            }),
        };
        let flag = |name: &'static str| match get(name) {
            None => Ok(false),
            Some(value) => parse_bool(value).ok_or_else(|| ConfigError::InvalidBool {
                variable: name,
                value: value.to_owned(),
            }),
        };
        let optional = |name: &str| get(name).filter(|v| !v.is_empty()).map(str::to_owned);

        Ok(Self {
            framework_id,
            executor_id,
            agent_endpoint,
            tls: flag(ENV_SSL_ENABLED)?,
            directory,
            sandbox: optional(ENV_SANDBOX).map(PathBuf::from),
            checkpoint: flag(ENV_CHECKPOINT)?,
            shutdown_grace_period: duration(
                ENV_SHUTDOWN_GRACE_PERIOD,
                DEFAULT_SHUTDOWN_GRACE_PERIOD,
            )?,
            recovery_timeout: duration(ENV_RECOVERY_TIMEOUT, DEFAULT_RECOVERY_TIMEOUT)?,
            subscription_backoff_max: duration(
                ENV_SUBSCRIPTION_BACKOFF_MAX,
                DEFAULT_SUBSCRIPTION_BACKOFF_MAX,
            )?,
            authentication_token: optional(ENV_AUTHENTICATION_TOKEN),
            domain_socket: optional(ENV_DOMAIN_SOCKET).map(PathBuf::from),
            agent_id: optional(ENV_AGENT_ID).map(|value| AgentId { value }),
            agent_pid: optional(ENV_AGENT_PID),
            http_command_executor: flag(ENV_HTTP_COMMAND_EXECUTOR)?,
            registration_timeout: DEFAULT_REGISTRATION_TIMEOUT,
            update_retry_interval: DEFAULT_UPDATE_RETRY_INTERVAL,
            call_timeout: None,
            max_record_size: DEFAULT_MAX_RECORD_SIZE,
            format: Format::Protobuf,
        })
    }

    /// The agent's base URL: `http://host:port`, or `https://host:port` when `tls` is set.
    pub fn agent_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.agent_endpoint)
    }

    /// The full executor API URL: `http[s]://host:port/api/v1/executor`.
    pub fn executor_api_url(&self) -> String {
        format!("{}{EXECUTOR_API_PATH}", self.agent_url())
    }

    /// The sandbox the executor runs in: `MESOS_SANDBOX` when set, else `MESOS_DIRECTORY`.
    pub fn sandbox_dir(&self) -> &std::path::Path {
        self.sandbox.as_deref().unwrap_or(&self.directory)
    }
}

fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "true" => Some(true),
        "0" | "false" => Some(false),
        _ => None,
    }
}

fn validate_endpoint(endpoint: &str) -> Result<(), ConfigError> {
    let invalid = || ConfigError::InvalidEndpoint(endpoint.to_owned());
    let authority: http::uri::Authority = endpoint.parse().map_err(|_| invalid())?;
    if authority.as_str() != endpoint
        || authority.host().is_empty()
        || authority.port_u16().is_none()
        || endpoint.contains('@')
    {
        return Err(invalid());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Vec<(&'static str, &'static str)> {
        vec![
            (ENV_FRAMEWORK_ID, "fw-1"),
            (ENV_EXECUTOR_ID, "exec-1"),
            (ENV_AGENT_ENDPOINT, "127.0.0.1:5051"),
            (ENV_DIRECTORY, "/tmp/sandbox"),
        ]
    }

    fn with(extra: &[(&'static str, &'static str)]) -> Result<ExecutorConfig, ConfigError> {
        let mut vars = base();
        vars.extend_from_slice(extra);
        ExecutorConfig::from_vars(vars)
    }

    #[test]
    fn minimal_environment_gets_the_documented_defaults() {
        let config = with(&[]).unwrap();
        assert_eq!(config.framework_id.value, "fw-1");
        assert_eq!(config.executor_id.value, "exec-1");
        assert_eq!(
            config.executor_api_url(),
            "http://127.0.0.1:5051/api/v1/executor"
        );
        assert_eq!(config.directory, PathBuf::from("/tmp/sandbox"));
        assert_eq!(config.sandbox_dir(), std::path::Path::new("/tmp/sandbox"));
        assert!(!config.checkpoint);
        assert!(!config.tls);
        assert_eq!(config.shutdown_grace_period, Duration::from_secs(5));
        assert_eq!(config.recovery_timeout, Duration::from_secs(900));
        assert_eq!(config.subscription_backoff_max, Duration::from_secs(2));
        assert_eq!(config.authentication_token, None);
        assert_eq!(config.domain_socket, None);
        assert_eq!(config.agent_id, None);
        assert_eq!(config.agent_pid, None);
        assert!(!config.http_command_executor);
        assert_eq!(config.format, Format::Protobuf);
    }

    #[test]
    fn every_variable_is_read() {
        let config = with(&[
            (ENV_SANDBOX, "/mnt/mesos/sandbox"),
            (ENV_CHECKPOINT, "1"),
            (ENV_SHUTDOWN_GRACE_PERIOD, "1.5secs"),
            (ENV_RECOVERY_TIMEOUT, "15mins"),
            (ENV_SUBSCRIPTION_BACKOFF_MAX, "250ms"),
            (ENV_AUTHENTICATION_TOKEN, "jwt.token.here"),
            (ENV_DOMAIN_SOCKET, "/run/agent.sock"),
            (ENV_AGENT_ID, "agent-7"),
            (ENV_AGENT_PID, "slave(1)@127.0.0.1:5051"),
            (ENV_HTTP_COMMAND_EXECUTOR, "1"),
            (ENV_SSL_ENABLED, "true"),
        ])
        .unwrap();
        assert_eq!(
            config.sandbox_dir(),
            std::path::Path::new("/mnt/mesos/sandbox")
        );
        assert!(config.checkpoint);
        assert_eq!(config.shutdown_grace_period, Duration::from_millis(1500));
        assert_eq!(config.recovery_timeout, Duration::from_secs(900));
        assert_eq!(config.subscription_backoff_max, Duration::from_millis(250));
        assert_eq!(
            config.authentication_token.as_deref(),
            Some("jwt.token.here")
        );
        assert_eq!(config.domain_socket, Some(PathBuf::from("/run/agent.sock")));
        assert_eq!(
            config.agent_id.as_ref().map(|a| a.value.as_str()),
            Some("agent-7")
        );
        assert_eq!(config.agent_pid.as_deref(), Some("slave(1)@127.0.0.1:5051"));
        assert!(config.http_command_executor);
        assert_eq!(
            config.executor_api_url(),
            "https://127.0.0.1:5051/api/v1/executor"
        );
    }

    #[test]
    fn checkpoint_accepts_code_and_doc_spellings() {
        for (value, expected) in [("1", true), ("true", true), ("0", false), ("false", false)] {
            assert_eq!(
                with(&[(ENV_CHECKPOINT, value)]).unwrap().checkpoint,
                expected
            );
        }
        assert_eq!(
            with(&[(ENV_CHECKPOINT, "yes")]),
            Err(ConfigError::InvalidBool {
                variable: ENV_CHECKPOINT,
                value: "yes".into()
            })
        );
    }

    #[test]
    fn all_missing_variables_are_reported_together() {
        let err = ExecutorConfig::from_vars([(ENV_EXECUTOR_ID, "e")]).unwrap_err();
        assert_eq!(
            err,
            ConfigError::Missing(vec![ENV_FRAMEWORK_ID, ENV_AGENT_ENDPOINT, ENV_DIRECTORY])
        );
        let text = err.to_string();
        assert!(text.contains("MESOS_FRAMEWORK_ID") && text.contains("MESOS_DIRECTORY"));
        let none: [(&str, &str); 0] = [];
        assert_eq!(
            ExecutorConfig::from_vars(none),
            Err(ConfigError::Missing(vec![
                ENV_FRAMEWORK_ID,
                ENV_EXECUTOR_ID,
                ENV_AGENT_ENDPOINT,
                ENV_DIRECTORY
            ]))
        );
    }

    #[test]
    fn bad_values_get_typed_errors() {
        assert!(matches!(
            with(&[(ENV_RECOVERY_TIMEOUT, "15 mins")]),
            Err(ConfigError::InvalidDuration {
                variable: ENV_RECOVERY_TIMEOUT,
                ..
            })
        ));
        assert!(matches!(
            with(&[(ENV_SHUTDOWN_GRACE_PERIOD, "5")]),
            Err(ConfigError::InvalidDuration {
                variable: ENV_SHUTDOWN_GRACE_PERIOD,
                source: DurationError::MissingUnit(_),
                ..
            })
        ));
        assert!(matches!(
            with(&[(ENV_SUBSCRIPTION_BACKOFF_MAX, "2s")]),
            Err(ConfigError::InvalidDuration { .. })
        ));
        for endpoint in [
            "http://127.0.0.1:5051",
            "127.0.0.1",
            "127.0.0.1:",
            ":5051",
            "a:b",
            "u@h:1",
        ] {
            assert_eq!(
                with(&[(ENV_AGENT_ENDPOINT, endpoint)]),
                Err(ConfigError::InvalidEndpoint(endpoint.into())),
                "{endpoint}"
            );
        }
        assert_eq!(
            with(&[(ENV_FRAMEWORK_ID, "")]),
            Err(ConfigError::Empty(ENV_FRAMEWORK_ID))
        );
        assert_eq!(
            with(&[(ENV_HTTP_COMMAND_EXECUTOR, "2")]),
            Err(ConfigError::InvalidBool {
                variable: ENV_HTTP_COMMAND_EXECUTOR,
                value: "2".into()
            })
        );
    }

    #[test]
    fn hostnames_and_ipv6_endpoints_are_accepted() {
        for endpoint in ["agent.example:5051", "[::1]:5051"] {
            let config = with(&[(ENV_AGENT_ENDPOINT, endpoint)]).unwrap();
            assert_eq!(config.agent_url(), format!("http://{endpoint}"));
        }
    }
}
