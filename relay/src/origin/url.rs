//! Origin URLs: `http://host[:port]/path` and `https://...`.

use super::OriginError;

/// A parsed origin URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OriginUrl {
    /// Whether the origin speaks TLS.
    pub https: bool,
    /// Host name or address (no brackets for IPv6).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// The request target (path and query), starting with `/`.
    pub target: String,
    /// The `Host` header value.
    pub authority: String,
}

impl OriginUrl {
    /// Parses an `http` or `https` URL.
    pub fn parse(url: &str) -> Result<Self, OriginError> {
        let bad = |why: &'static str| OriginError::BadUrl { url: url.to_string(), why };
        let (https, rest) = if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else {
            return Err(bad("scheme must be http or https"));
        };
        let (authority, target) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() || authority.contains('@') {
            return Err(bad("missing host (or userinfo, which is not supported)"));
        }
        let default_port = if https { 443 } else { 80 };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or(bad("unclosed IPv6 bracket"))?;
            match after.strip_prefix(':') {
                Some(p) => (h, p.parse().map_err(|_| bad("bad port"))?),
                None if after.is_empty() => (h, default_port),
                None => return Err(bad("junk after IPv6 address")),
            }
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, p.parse().map_err(|_| bad("bad port"))?),
                None => (authority, default_port),
            }
        };
        if host.is_empty() || target.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(bad("empty host or invalid characters in the path"));
        }
        let target = target.split('#').next().unwrap_or("/").to_string();
        Ok(OriginUrl { https, host: host.to_string(), port, target, authority: authority.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let u = OriginUrl::parse("http://127.0.0.1:8000/a/b?x=1").unwrap();
        assert_eq!(
            (u.https, u.host.as_str(), u.port, u.target.as_str()),
            (false, "127.0.0.1", 8000, "/a/b?x=1")
        );
        let u = OriginUrl::parse("https://example.com").unwrap();
        assert_eq!((u.https, u.port, u.target.as_str()), (true, 443, "/"));
        let u = OriginUrl::parse("http://[::1]:9/f").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.authority.as_str()), ("::1", 9, "[::1]:9"));
        for bad in ["ftp://x/", "http://", "http://h:notaport/", "http://u@h/", "http://h/a b"] {
            assert!(OriginUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
