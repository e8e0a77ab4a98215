//! HTTP(S) downloads of the fetcher, bounded in time and size: a connect timeout (TCP and TLS
//! handshake), a stall timeout on every wait for the server (the answer's head and each piece
//! of its body), redirects (at most [`MAX_REDIRECTS`]) and a maximum size checked against
//! `Content-Length` before the body is read and against the bytes received while it is.
//!
//! The connection is owned by the download: when the download ends, fails or is dropped
//! (cancelled), the connection is closed at once.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;

use super::fetch_limits::FetcherLimits;

/// Redirects followed per download.
pub(crate) const MAX_REDIRECTS: usize = 5;

/// Why a download failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DownloadError {
    /// The URL does not parse.
    #[error("invalid URL: {0}")]
    InvalidUrl(#[from] http::uri::InvalidUri),
    /// The URL names no host.
    #[error("URL without a host")]
    NoHost,
    /// The TCP connection failed.
    #[error("cannot connect to {host}:{port}: {source}")]
    Connect {
        /// Host of the URL.
        host: String,
        /// Port connected to.
        port: u16,
        /// The system error.
        source: std::io::Error,
    },
    /// The host name is not usable for TLS.
    #[error("invalid TLS server name: {0}")]
    ServerName(#[from] rustls::pki_types::InvalidDnsNameError),
    /// The TLS handshake failed.
    #[error("TLS handshake with {host}: {source}")]
    Tls {
        /// Host of the URL.
        host: String,
        /// The handshake error.
        source: std::io::Error,
    },
    /// Connecting (TCP, TLS and HTTP handshakes) took longer than the connect timeout.
    #[error("no connection to {host}:{port} within {} (connect timeout)", fmt(*after))]
    ConnectTimeout {
        /// Host of the URL.
        host: String,
        /// Port connected to.
        port: u16,
        /// The connect timeout.
        after: Duration,
    },
    /// The server sent nothing for longer than the stall timeout.
    #[error("the server sent nothing for {} (stall timeout)", fmt(*after))]
    Stalled {
        /// The stall timeout.
        after: Duration,
    },
    /// An HTTP protocol error (request, answer or body).
    #[error("HTTP: {0}")]
    Http(#[from] hyper::Error),
    /// The request could not be built.
    #[error("HTTP request: {0}")]
    Request(#[from] http::Error),
    /// The server answered with a status other than 200 (or a redirect).
    #[error("HTTP {0}")]
    Status(http::StatusCode),
    /// A redirect without a usable `Location`.
    #[error("HTTP {0} without a Location")]
    NoLocation(http::StatusCode),
    /// A redirect to a location that is not a URL.
    #[error("invalid redirect '{location}': {source}")]
    InvalidRedirect {
        /// The `Location` header.
        location: String,
        /// Why it does not parse.
        source: http::uri::InvalidUri,
    },
    /// More than [`MAX_REDIRECTS`] redirects.
    #[error("too many redirects (more than {MAX_REDIRECTS})")]
    TooManyRedirects,
    /// The body is (or announces itself as) larger than the limit.
    #[error("the download exceeds the limit of {limit} bytes (max_download_bytes)")]
    TooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// Writing the downloaded bytes failed.
    #[error("cannot write the download: {0}")]
    Write(#[source] std::io::Error),
}

fn fmt(duration: Duration) -> String {
    mesos_sdk::duration::format_duration(duration)
}

/// Aborts a spawned task (the HTTP connection) when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Downloads `url` into `file`, following redirects, within `limits`; returns the byte count.
pub(crate) async fn download(
    url: &str,
    file: &mut tokio::fs::File,
    tls: &Arc<rustls::ClientConfig>,
    limits: &FetcherLimits,
) -> Result<u64, DownloadError> {
    let mut current: http::Uri = url.parse()?;
    for _ in 0..=MAX_REDIRECTS {
        let (response, connection) = get(&current, tls, limits).await?;
        let status = response.status();
        if status.is_redirection() {
            let location = response
                .headers()
                .get(http::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .ok_or(DownloadError::NoLocation(status))?;
            current = resolve_location(&current, location)?;
            drop(connection);
            continue;
        }
        if status != http::StatusCode::OK {
            return Err(DownloadError::Status(status));
        }
        let announced = response
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if announced.is_some_and(|length| length > limits.max_download_bytes) {
            return Err(DownloadError::TooLarge {
                limit: limits.max_download_bytes,
            });
        }
        let mut body = response.into_body();
        let mut written: u64 = 0;
        loop {
            let frame = tokio::time::timeout(limits.stall_timeout, body.frame())
                .await
                .map_err(|_| DownloadError::Stalled {
                    after: limits.stall_timeout,
                })?;
            let Some(frame) = frame else { break };
            let frame = frame?;
            if let Some(data) = frame.data_ref() {
                written = written.saturating_add(data.len() as u64);
                if written > limits.max_download_bytes {
                    return Err(DownloadError::TooLarge {
                        limit: limits.max_download_bytes,
                    });
                }
                file.write_all(data).await.map_err(DownloadError::Write)?;
            }
        }
        file.flush().await.map_err(DownloadError::Write)?;
        drop(connection);
        return Ok(written);
    }
    Err(DownloadError::TooManyRedirects)
}

/// Resolves a `Location` against the URL that answered it.
pub(crate) fn resolve_location(
    base: &http::Uri,
    location: &str,
) -> Result<http::Uri, DownloadError> {
    let scheme = base.scheme_str().unwrap_or("http");
    let authority = base.authority().map(|a| a.as_str()).unwrap_or_default();
    let absolute = if location.starts_with("//") {
        format!("{scheme}:{location}")
    } else if location.starts_with('/') {
        format!("{scheme}://{authority}{location}")
    } else {
        location.to_string()
    };
    absolute
        .parse()
        .map_err(|source| DownloadError::InvalidRedirect {
            location: location.to_string(),
            source,
        })
}

/// One GET: connects (within the connect timeout), sends the request and waits for the answer's
/// head (within the stall timeout). The returned guard owns the connection.
async fn get(
    uri: &http::Uri,
    tls: &Arc<rustls::ClientConfig>,
    limits: &FetcherLimits,
) -> Result<(http::Response<hyper::body::Incoming>, AbortOnDrop), DownloadError> {
    let host = uri.host().ok_or(DownloadError::NoHost)?.to_string();
    let https = uri.scheme_str() == Some("https");
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let bare_host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let path = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".to_string());
    let request = http::Request::get(path)
        .header(
            http::header::HOST,
            uri.authority().map(|a| a.as_str()).unwrap_or(&host),
        )
        .header(http::header::USER_AGENT, "mesos-local-fetcher")
        .body(Empty::<Bytes>::new())?;
    let connect = async {
        let tcp = tokio::net::TcpStream::connect((bare_host.as_str(), port))
            .await
            .map_err(|source| DownloadError::Connect {
                host: host.clone(),
                port,
                source,
            })?;
        if https {
            let name = rustls::pki_types::ServerName::try_from(bare_host.clone())?;
            let tls = tokio_rustls::TlsConnector::from(Arc::clone(tls))
                .connect(name, tcp)
                .await
                .map_err(|source| DownloadError::Tls {
                    host: host.clone(),
                    source,
                })?;
            handshake(TokioIo::new(tls)).await
        } else {
            handshake(TokioIo::new(tcp)).await
        }
    };
    let (mut sender, connection) = tokio::time::timeout(limits.connect_timeout, connect)
        .await
        .map_err(|_| DownloadError::ConnectTimeout {
            host: host.clone(),
            port,
            after: limits.connect_timeout,
        })??;
    let response = tokio::time::timeout(limits.stall_timeout, sender.send_request(request))
        .await
        .map_err(|_| DownloadError::Stalled {
            after: limits.stall_timeout,
        })??;
    Ok((response, connection))
}

type Sender = hyper::client::conn::http1::SendRequest<Empty<Bytes>>;

async fn handshake<T>(io: T) -> Result<(Sender, AbortOnDrop), DownloadError>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(io).await?;
    let task = tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::debug!(%err, "fetcher connection closed");
        }
    });
    Ok((sender, AbortOnDrop(task)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_resolve_against_the_current_url() {
        let base: http::Uri = "http://a:1/x/y".parse().unwrap();
        assert_eq!(
            resolve_location(&base, "/z").unwrap().to_string(),
            "http://a:1/z"
        );
        assert_eq!(
            resolve_location(&base, "//b:2/z").unwrap().to_string(),
            "http://b:2/z"
        );
        assert_eq!(
            resolve_location(&base, "https://c/z").unwrap().to_string(),
            "https://c/z"
        );
    }
}
