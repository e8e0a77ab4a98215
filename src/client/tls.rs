//! TLS settings for `https` endpoints: a rustls client configuration on the `ring` provider,
//! trusting the webpki roots (by default) and any extra CA certificates given as PEM.

use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

use super::error::{Error, ErrorKind};

/// What the client trusts when it talks TLS.
#[derive(Debug, Clone)]
pub(crate) struct TlsSettings {
    pub(crate) webpki_roots: bool,
    pub(crate) extra_ca_pem: Vec<Vec<u8>>,
    pub(crate) custom: Option<Arc<ClientConfig>>,
}

impl Default for TlsSettings {
    fn default() -> Self {
        Self {
            webpki_roots: true,
            extra_ca_pem: Vec::new(),
            custom: None,
        }
    }
}

impl TlsSettings {
    /// Builds the rustls configuration (ALPN `http/1.1`).
    pub(crate) fn client_config(&self) -> Result<ClientConfig, Error> {
        if let Some(custom) = &self.custom {
            return Ok(custom.as_ref().clone());
        }
        let mut roots = RootCertStore::empty();
        if self.webpki_roots {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        for pem in &self.extra_ca_pem {
            let certs = parse_pem_certificates(pem)?;
            for cert in certs {
                roots.add(cert).map_err(|err| {
                    Error::new(ErrorKind::Config, "CA certificate rejected").with_source(err)
                })?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|err| {
                Error::new(ErrorKind::Config, "TLS protocol versions unavailable").with_source(err)
            })?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }
}

/// A rustls client configuration (ring provider, ALPN `http/1.1`) that trusts the webpki roots and
/// the CA certificates in `extra_ca_pem` (each a PEM document with one or more certificates): the
/// same trust the [`Client`](super::Client) uses, for other HTTPS downloads of a framework or tool.
pub fn tls_client_config(extra_ca_pem: &[Vec<u8>]) -> Result<ClientConfig, Error> {
    TlsSettings {
        webpki_roots: true,
        extra_ca_pem: extra_ca_pem.to_vec(),
        custom: None,
    }
    .client_config()
}

/// Reads every `CERTIFICATE` block of a PEM document; an empty or malformed document is an error.
fn parse_pem_certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, Error> {
    let mut reader = std::io::BufReader::new(pem);
    let certs = rustls_pemfile::certs(&mut reader)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| Error::new(ErrorKind::Config, "invalid PEM CA bundle").with_source(err))?;
    if certs.is_empty() {
        return Err(Error::new(
            ErrorKind::Config,
            "PEM CA bundle holds no CERTIFICATE block",
        ));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_builds() {
        let config = TlsSettings::default().client_config().unwrap();
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }

    #[test]
    fn bad_pem_is_a_config_error() {
        let settings = TlsSettings {
            extra_ca_pem: vec![b"not a certificate".to_vec()],
            ..TlsSettings::default()
        };
        let err = settings.client_config().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
    }
}
