//! Where a peer's HTTP server is: `http://host:port/path`, or HTTP over a
//! Unix socket as `http+unix://<socket path, %2F-encoded>/path` (the form
//! of requests-unixsocket and of uvicorn's `--uds`).

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

/// A transport address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// TCP.
    Tcp(SocketAddr),
    /// A Unix stream socket.
    Unix(PathBuf),
}

/// An HTTP URL resolved once at start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpUrl {
    /// Where to connect.
    pub endpoint: Endpoint,
    /// The `Host` header.
    pub host: String,
    /// Path and query.
    pub path: String,
}

/// Why a URL is not accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UrlError(pub String);

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UrlError {}

impl HttpUrl {
    /// Parses and resolves `text`.
    pub fn parse(text: &str) -> Result<Self, UrlError> {
        let bad = |why: &str| UrlError(format!("invalid URL {text:?}: {why}"));
        if let Some(rest) = text.strip_prefix("http+unix://") {
            let (socket, path) = split_path(rest);
            let socket = percent_decode(socket).ok_or_else(|| bad("bad %-escape"))?;
            if !socket.starts_with('/') {
                return Err(bad(
                    "the socket path must be absolute, written with %2F for '/'",
                ));
            }
            return Ok(HttpUrl {
                endpoint: Endpoint::Unix(PathBuf::from(socket)),
                host: "localhost".into(),
                path: path.into(),
            });
        }
        let rest = text
            .strip_prefix("http://")
            .ok_or_else(|| bad("use http://HOST:PORT/PATH or http+unix://%2Fpath%2Fto.sock/PATH (https is not supported)"))?;
        let (authority, path) = split_path(rest);
        if authority.is_empty() {
            return Err(bad("no host"));
        }
        // An IPv6 address goes in brackets: `[::1]:8000`.
        if authority.starts_with('[') != authority.contains(']')
            || authority.starts_with('[')
                && !authority
                    .split_once(']')
                    .is_some_and(|(_, port)| port.is_empty() || port.starts_with(':'))
        {
            return Err(bad(
                "an IPv6 host goes in brackets, e.g. http://[::1]:8000/PATH",
            ));
        }
        let with_port = if authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
            && !authority.ends_with(']')
        {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        let endpoint = with_port
            .to_socket_addrs()
            .map_err(|e| bad(&format!("cannot resolve host: {e}")))?
            .next()
            .ok_or_else(|| bad("host resolves to no address"))?;
        Ok(HttpUrl {
            endpoint: Endpoint::Tcp(endpoint),
            host: authority.into(),
            path: path.into(),
        })
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.endpoint {
            Endpoint::Tcp(addr) => write!(f, "http://{addr}{}", self.path),
            Endpoint::Unix(path) => write!(f, "http+unix://{}{}", path.display(), self.path),
        }
    }
}

fn split_path(rest: &str) -> (&str, &str) {
    match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    }
}

pub(crate) fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tcp_and_unix_forms() {
        let url = HttpUrl::parse("http://127.0.0.1:8000/deploy/api/io/polled-values").unwrap();
        assert_eq!(
            url.endpoint,
            Endpoint::Tcp("127.0.0.1:8000".parse().unwrap())
        );
        assert_eq!(url.host, "127.0.0.1:8000");
        assert_eq!(url.path, "/deploy/api/io/polled-values");
        let url =
            HttpUrl::parse("http+unix://%2Frun%2Fpoll.sock/deploy/api/io/polled-values").unwrap();
        assert_eq!(url.endpoint, Endpoint::Unix("/run/poll.sock".into()));
        assert_eq!(url.path, "/deploy/api/io/polled-values");
        assert_eq!(HttpUrl::parse("http://127.0.0.1").unwrap().path, "/");
        assert!(HttpUrl::parse("https://x/").is_err());
        assert!(HttpUrl::parse("http+unix://relative.sock/x").is_err());
        assert!(HttpUrl::parse("http://127.0.0.1:99999/").is_err());
    }
}
