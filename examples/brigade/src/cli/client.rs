//! The REST API client of `brigade processor ...` (reqwest), with errors that map to the
//! documented exit codes.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A local problem (unreadable file).
    #[error("{0}")]
    Local(String),
    /// The API did not answer.
    #[error("the API at {url} is unreachable: {reason}")]
    Unreachable {
        /// The API's URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The API answered with an error.
    #[error("{message}")]
    Api {
        /// The HTTP status.
        status: u16,
        /// The error, with every field's problem.
        message: String,
        /// The answer's JSON body.
        body: Option<Value>,
    },
}

impl CliError {
    /// The exit code (see the module documentation of [`crate::cli`]).
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Local(_) => 1,
            CliError::Unreachable { .. } => 3,
            CliError::Api { status: 404, .. } => 4,
            CliError::Api { status: 400, .. } => 5,
            CliError::Api { status: 409, .. } => 6,
            CliError::Api { .. } => 7,
        }
    }

    /// The API's JSON answer, if any.
    pub fn body(&self) -> Option<String> {
        match self {
            CliError::Api {
                body: Some(body), ..
            } => serde_json::to_string_pretty(body).ok(),
            _ => None,
        }
    }
}

/// A client of the REST API at one base URL.
#[derive(Debug, Clone)]
pub struct ApiClient {
    base: String,
    http: reqwest::Client,
}

impl ApiClient {
    /// A client of the API at `base` (e.g. `http://127.0.0.1:7000`).
    pub fn new(base: &str) -> Result<Self, CliError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| CliError::Local(format!("HTTP client: {e}")))?;
        Ok(Self {
            base: base.trim_end_matches('/').to_string(),
            http,
        })
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&str>,
    ) -> Result<Value, CliError> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method, &url);
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.map_err(|e| CliError::Unreachable {
            url: self.base.clone(),
            reason: e.to_string(),
        })?;
        let status = response.status();
        let text = response.text().await.map_err(|e| CliError::Unreachable {
            url: self.base.clone(),
            reason: e.to_string(),
        })?;
        let value: Option<Value> = serde_json::from_str(&text).ok();
        if status.is_success() {
            return Ok(value.unwrap_or(Value::Null));
        }
        Err(error_of(status, value, &text))
    }

    /// Every processor's status.
    pub async fn list(&self) -> Result<Value, CliError> {
        self.call(Method::GET, "/api/processors", None).await
    }

    /// One processor's status.
    pub async fn status(&self, name: &str) -> Result<Value, CliError> {
        self.call(Method::GET, &format!("/api/processors/{name}/status"), None)
            .await
    }

    /// Adds the processor of `json`.
    pub async fn add(&self, json: &str) -> Result<Value, CliError> {
        self.call(Method::POST, "/api/processors", Some(json)).await
    }

    /// Replaces the processor `name` with `json`.
    pub async fn update(&self, name: &str, json: &str) -> Result<Value, CliError> {
        self.call(Method::PUT, &format!("/api/processors/{name}"), Some(json))
            .await
    }

    /// Removes the processor `name`.
    pub async fn remove(&self, name: &str) -> Result<(), CliError> {
        self.call(Method::DELETE, &format!("/api/processors/{name}"), None)
            .await
            .map(|_| ())
    }

    /// Starts the processor `name`.
    pub async fn start(&self, name: &str) -> Result<Value, CliError> {
        self.call(Method::POST, &format!("/api/processors/{name}/start"), None)
            .await
    }

    /// Stops the processor `name`.
    pub async fn stop(&self, name: &str) -> Result<Value, CliError> {
        self.call(Method::POST, &format!("/api/processors/{name}/stop"), None)
            .await
    }
}

fn error_of(status: StatusCode, value: Option<Value>, text: &str) -> CliError {
    let mut message = value
        .as_ref()
        .and_then(|v| v.get("error"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| format!("{status}: {}", text.trim()));
    if let Some(errors) = value
        .as_ref()
        .and_then(|v| v.get("errors"))
        .and_then(Value::as_array)
    {
        for e in errors {
            let field = e.get("field").and_then(Value::as_str).unwrap_or("");
            let what = e.get("message").and_then(Value::as_str).unwrap_or("");
            message.push_str(&format!(
                "\n  {}: {what}",
                if field.is_empty() {
                    "(document)"
                } else {
                    field
                }
            ));
        }
    }
    CliError::Api {
        status: status.as_u16(),
        message,
        body: value,
    }
}
