//! The fetcher: puts a command's `CommandInfo.uris` into a sandbox before launch.
//!
//! Sources are `http://` and `https://` URLs (redirects followed, certificates checked against
//! the webpki roots and any extra CA of `AgentConfig::fetcher_ca_pem`), `file://` URLs and plain local paths. Each file lands in the sandbox under
//! its `output_file` name (or the last path segment of the URI). Then it is made executable
//! (`executable`), or unpacked into the sandbox when `extract` (true by default) is set and the
//! name ends in `.tar`, `.tar.gz`, `.tgz`, `.zip` or `.gz`. With `cache` set, the download is
//! kept in the agent's cache directory, keyed by URI, and later fetches of the same URI copy it
//! from there.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;

use mesos_sdk::v1::command_info::Uri;

/// Redirects followed per download.
const MAX_REDIRECTS: usize = 5;

/// A fetch that failed; the text is the message of the TASK_FAILED update.
#[derive(Debug, thiserror::Error)]
#[error("Failed to fetch '{uri}': {reason}")]
pub(crate) struct FetchError {
    uri: String,
    reason: String,
}

fn fetch_error(uri: &str, reason: impl std::fmt::Display) -> FetchError {
    FetchError {
        uri: uri.to_string(),
        reason: reason.to_string(),
    }
}

/// An agent's fetcher: its download cache and the TLS configuration of its `https` downloads
/// (built once, when the agent starts).
#[derive(Debug, Clone)]
pub(crate) struct Fetcher {
    cache_dir: PathBuf,
    tls: Arc<rustls::ClientConfig>,
}

impl Fetcher {
    /// A fetcher caching under `cache_dir` and trusting `tls`'s roots for `https`.
    pub(crate) fn new(cache_dir: PathBuf, tls: Arc<rustls::ClientConfig>) -> Self {
        Self { cache_dir, tls }
    }

    /// Fetches every URI into `sandbox`, in order.
    pub(crate) async fn fetch_all(&self, uris: &[Uri], sandbox: &Path) -> Result<(), FetchError> {
        for uri in uris {
            self.fetch_one(uri, sandbox).await?;
        }
        Ok(())
    }

    async fn fetch_one(&self, uri: &Uri, sandbox: &Path) -> Result<(), FetchError> {
        let cache_dir = &self.cache_dir;
        let tls = &self.tls;
        let value = uri.value.as_str();
        let name = target_name(uri).map_err(|e| fetch_error(value, e))?;
        let destination = sandbox.join(&name);
        if let Some(parent) = destination.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| fetch_error(value, e))?;
        }
        if uri.cache() {
            let cached = cache_dir.join(cache_key(value, &name));
            if !tokio::fs::try_exists(&cached).await.unwrap_or(false) {
                tokio::fs::create_dir_all(cache_dir)
                    .await
                    .map_err(|e| fetch_error(value, e))?;
                let partial = cache_dir.join(format!(".partial-{}", uuid::Uuid::new_v4()));
                if let Err(err) = download(value, &partial, tls).await {
                    let _ = tokio::fs::remove_file(&partial).await;
                    return Err(fetch_error(value, err));
                }
                tokio::fs::rename(&partial, &cached)
                    .await
                    .map_err(|e| fetch_error(value, e))?;
            } else {
                tracing::debug!(uri = value, "fetcher cache hit");
            }
            tokio::fs::copy(&cached, &destination)
                .await
                .map_err(|e| fetch_error(value, e))?;
        } else {
            download(value, &destination, tls)
                .await
                .map_err(|e| fetch_error(value, e))?;
        }
        if uri.executable() {
            use std::os::unix::fs::PermissionsExt;
            tokio::fs::set_permissions(&destination, std::fs::Permissions::from_mode(0o755))
                .await
                .map_err(|e| fetch_error(value, e))?;
        } else if uri.extract() {
            let archive = destination.clone();
            let into = sandbox.to_path_buf();
            tokio::task::spawn_blocking(move || extract(&archive, &into))
                .await
                .map_err(|e| fetch_error(value, e))?
                .map_err(|e| fetch_error(value, e))?;
        }
        Ok(())
    }
}

/// The file name a URI is stored under: `output_file`, else its last path segment.
fn target_name(uri: &Uri) -> Result<PathBuf, String> {
    if let Some(name) = uri.output_file.as_deref().filter(|n| !n.is_empty()) {
        let path = PathBuf::from(name);
        if path.is_absolute()
            || path
                .components()
                .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            return Err(format!(
                "output_file '{name}' must be a relative path inside the sandbox"
            ));
        }
        return Ok(path);
    }
    let without_query = uri.value.split(['?', '#']).next().unwrap_or_default();
    // The path of a URL (what follows its authority), or the whole local path.
    let path = match without_query.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("", |slash| &rest[slash..]),
        None => without_query,
    };
    let name = path
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default();
    if name.is_empty() || name == ".." || name == "." {
        return Err("cannot derive a file name from the URI".to_string());
    }
    Ok(PathBuf::from(name))
}

/// Cache file name of a URI.
fn cache_key(uri: &str, name: &Path) -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    uri.hash(&mut hasher);
    let base = name
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("{:016x}-{base}", hasher.finish())
}

/// Copies or downloads `uri` to `destination`.
async fn download(
    uri: &str,
    destination: &Path,
    tls: &Arc<rustls::ClientConfig>,
) -> Result<(), String> {
    if uri.starts_with("http://") || uri.starts_with("https://") {
        return http_download(uri, destination, tls).await;
    }
    let path = match uri.strip_prefix("file://") {
        Some(path) => path,
        None if uri.contains("://") => {
            return Err(format!(
                "unsupported URI scheme '{}'",
                uri.split("://").next().unwrap_or_default()
            ));
        }
        None => uri,
    };
    tokio::fs::copy(path, destination)
        .await
        .map(|_| ())
        .map_err(|e| format!("cannot copy '{path}': {e}"))
}

/// Unpacks `archive` into `into` if its name is an archive's.
fn extract(archive: &Path, into: &Path) -> Result<(), String> {
    let name = archive
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let open = || std::fs::File::open(archive).map_err(|e| format!("cannot open archive: {e}"));
    if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
        tar::Archive::new(flate2::read::GzDecoder::new(open()?))
            .unpack(into)
            .map_err(|e| format!("cannot extract tar.gz archive: {e}"))
    } else if name.ends_with(".tar") {
        tar::Archive::new(open()?)
            .unpack(into)
            .map_err(|e| format!("cannot extract tar archive: {e}"))
    } else if name.ends_with(".zip") {
        zip::ZipArchive::new(open()?)
            .and_then(|mut zip| zip.extract(into))
            .map_err(|e| format!("cannot extract zip archive: {e}"))
    } else if let Some(stem) = name.strip_suffix(".gz") {
        let target = into.join(stem);
        let mut output =
            std::fs::File::create(&target).map_err(|e| format!("cannot create '{stem}': {e}"))?;
        std::io::copy(&mut flate2::read::GzDecoder::new(open()?), &mut output)
            .map(|_| ())
            .map_err(|e| format!("cannot decompress gzip file: {e}"))
    } else {
        Ok(())
    }
}

/// Downloads an http(s) URL to `destination`, following redirects.
async fn http_download(
    url: &str,
    destination: &Path,
    tls: &Arc<rustls::ClientConfig>,
) -> Result<(), String> {
    let mut current: http::Uri = url.parse().map_err(|e| format!("invalid URL: {e}"))?;
    for _ in 0..=MAX_REDIRECTS {
        let response = http_get(&current, tls).await?;
        let status = response.status();
        if status.is_redirection() {
            let location = response
                .headers()
                .get(http::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .ok_or_else(|| format!("HTTP {status} without a Location"))?;
            current = resolve_location(&current, location)?;
            continue;
        }
        if status != http::StatusCode::OK {
            return Err(format!("HTTP {status}"));
        }
        let mut file = tokio::fs::File::create(destination)
            .await
            .map_err(|e| format!("cannot create '{}': {e}", destination.display()))?;
        let mut body = response.into_body();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| format!("download interrupted: {e}"))?;
            if let Some(data) = frame.data_ref() {
                file.write_all(data)
                    .await
                    .map_err(|e| format!("cannot write '{}': {e}", destination.display()))?;
            }
        }
        file.flush().await.map_err(|e| e.to_string())?;
        return Ok(());
    }
    Err("too many redirects".to_string())
}

fn resolve_location(base: &http::Uri, location: &str) -> Result<http::Uri, String> {
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
        .map_err(|e| format!("invalid redirect '{location}': {e}"))
}

async fn http_get(
    uri: &http::Uri,
    tls: &Arc<rustls::ClientConfig>,
) -> Result<http::Response<hyper::body::Incoming>, String> {
    let host = uri.host().ok_or("URL without a host")?.to_string();
    let https = uri.scheme_str() == Some("https");
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let host_for_connect = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let tcp = tokio::net::TcpStream::connect((host_for_connect.as_str(), port))
        .await
        .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
    let path = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".to_string());
    let request = http::Request::get(path)
        .header(
            http::header::HOST,
            uri.authority().map(|a| a.as_str()).unwrap_or(&host),
        )
        .header(http::header::USER_AGENT, "mesos-sdk-fetcher")
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    if https {
        let name = rustls::pki_types::ServerName::try_from(host_for_connect.clone())
            .map_err(|e| format!("invalid TLS server name: {e}"))?;
        let tls = tokio_rustls::TlsConnector::from(Arc::clone(tls))
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS handshake with {host}: {e}"))?;
        send(TokioIo::new(tls), request).await
    } else {
        send(TokioIo::new(tcp), request).await
    }
}

async fn send<T>(
    io: T,
    request: http::Request<Empty<Bytes>>,
) -> Result<http::Response<hyper::body::Incoming>, String>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| format!("HTTP handshake: {e}"))?;
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::debug!(%err, "fetcher connection closed");
        }
    });
    sender
        .send_request(request)
        .await
        .map_err(|e| format!("HTTP request: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(value: &str, output_file: Option<&str>) -> Uri {
        Uri {
            value: value.into(),
            output_file: output_file.map(str::to_string),
            ..Default::default()
        }
    }

    #[test]
    fn target_names_come_from_output_file_or_the_last_segment() {
        assert_eq!(
            target_name(&uri("http://h/a/b/tool.tgz?x=1#f", None)).unwrap(),
            PathBuf::from("tool.tgz")
        );
        assert_eq!(
            target_name(&uri("/srv/file.txt", Some("sub/out.txt"))).unwrap(),
            PathBuf::from("sub/out.txt")
        );
        assert!(target_name(&uri("/x", Some("../escape"))).is_err());
        assert!(target_name(&uri("/x", Some("/abs"))).is_err());
        assert!(target_name(&uri("http://h/", None)).is_err());
    }

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

    #[test]
    fn unknown_schemes_are_refused() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let tls = Arc::new(mesos_sdk::client::tls_client_config(&[]).unwrap());
        let err = runtime
            .block_on(download(
                "ftp://h/file",
                Path::new("/nonexistent/out"),
                &tls,
            ))
            .unwrap_err();
        assert_eq!(err, "unsupported URI scheme 'ftp'");
    }
}
