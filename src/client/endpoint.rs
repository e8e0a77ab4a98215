//! Endpoint addresses: parsing configured candidates, resolving 307 `Location`s, joining paths.

use http::Uri;
use http::uri::{Authority, Scheme};

use super::error::{Error, ErrorKind};

/// One master or agent address: scheme, `host:port` and an optional path prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    pub(crate) scheme: Scheme,
    pub(crate) authority: Authority,
    pub(crate) prefix: String,
}

impl Endpoint {
    /// Parses `http://host:port`, `https://host:port[/prefix]` or a bare `host:port` (taken as http).
    pub(crate) fn parse(text: &str) -> Result<Self, Error> {
        let text = text.trim();
        let with_scheme = if text.contains("://") {
            text.to_owned()
        } else {
            format!("http://{text}")
        };
        let uri: Uri = with_scheme.parse().map_err(|err: http::uri::InvalidUri| {
            Error::new(ErrorKind::Config, format!("invalid endpoint '{text}'")).with_source(err)
        })?;
        let scheme = uri.scheme().cloned().unwrap_or(Scheme::HTTP);
        if scheme != Scheme::HTTP && scheme != Scheme::HTTPS {
            return Err(Error::new(
                ErrorKind::Config,
                format!("endpoint '{text}' must use http or https"),
            ));
        }
        let Some(authority) = uri.authority().cloned() else {
            return Err(Error::new(
                ErrorKind::Config,
                format!("endpoint '{text}' has no host"),
            ));
        };
        let prefix = uri.path().trim_end_matches('/').to_owned();
        Ok(Self {
            scheme,
            authority,
            prefix,
        })
    }

    /// Whether the endpoint speaks TLS.
    pub(crate) fn is_https(&self) -> bool {
        self.scheme == Scheme::HTTPS
    }

    /// The base URI (`scheme://authority[prefix]`).
    pub(crate) fn base_uri(&self) -> Uri {
        let text = format!("{}://{}{}", self.scheme, self.authority, self.prefix);
        text.parse().unwrap_or_else(|_| Uri::default())
    }

    /// The full URI for a request `path` (which should start with `/`).
    pub(crate) fn join(&self, path: &str) -> Result<Uri, Error> {
        let slash = if path.starts_with('/') { "" } else { "/" };
        let text = format!(
            "{}://{}{}{}{}",
            self.scheme, self.authority, self.prefix, slash, path
        );
        text.parse().map_err(|err: http::uri::InvalidUri| {
            Error::new(ErrorKind::Config, format!("invalid request path '{path}'")).with_source(err)
        })
    }

    /// Resolves a 307 `Location` against this endpoint.
    ///
    /// Mesos writes `//host:port/path` (scheme-relative); its docs show a bare `host:port`; absolute
    /// URLs are taken as they are. Only the scheme and `host:port` are taken from the answer: the
    /// request path stays the caller's, and the prefix is dropped when the host changes.
    pub(crate) fn redirect(&self, location: &str) -> Option<Endpoint> {
        let location = location.trim();
        let (scheme, rest) = match location.split_once("://") {
            Some((scheme, rest)) => (scheme.parse::<Scheme>().ok()?, rest),
            None => (
                self.scheme.clone(),
                location.strip_prefix("//").unwrap_or(location),
            ),
        };
        let authority_text = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if authority_text.is_empty() {
            return None;
        }
        let authority: Authority = authority_text.parse().ok()?;
        let prefix = if authority == self.authority {
            self.prefix.clone()
        } else {
            String::new()
        };
        Some(Endpoint {
            scheme,
            authority,
            prefix,
        })
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}{}", self.scheme, self.authority, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_candidates() {
        let ep = Endpoint::parse("http://10.0.0.1:5050").unwrap();
        assert_eq!(ep.authority.as_str(), "10.0.0.1:5050");
        assert!(!ep.is_https());
        let bare = Endpoint::parse("10.0.0.2:5051").unwrap();
        assert_eq!(bare.scheme, Scheme::HTTP);
        let tls = Endpoint::parse("https://m:5050/").unwrap();
        assert!(tls.is_https());
        assert_eq!(tls.prefix, "");
        assert_eq!(
            tls.join("/api/v1/scheduler").unwrap().to_string(),
            "https://m:5050/api/v1/scheduler"
        );
        assert!(Endpoint::parse("ftp://m:21").is_err());
        assert!(Endpoint::parse("http://").is_err());
    }

    #[test]
    fn resolves_locations() {
        let ep = Endpoint::parse("https://a:5050").unwrap();
        let scheme_relative = ep.redirect("//b:5051/api/v1/scheduler").unwrap();
        assert_eq!(scheme_relative.to_string(), "https://b:5051");
        let bare = ep.redirect("c:5052").unwrap();
        assert_eq!(bare.to_string(), "https://c:5052");
        let absolute = ep.redirect("http://d:5053/x").unwrap();
        assert_eq!(absolute.to_string(), "http://d:5053");
        assert!(ep.redirect("").is_none());
        assert!(ep.redirect("//").is_none());
        assert!(ep.redirect("/only/a/path").is_none());
    }
}
