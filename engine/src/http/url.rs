//! The project's one URL parser for `http://` and `https://` URLs (origins, relays, web seeds,
//! trackers), and [`redact`], which every place that shows or logs a URL uses.
//!
//! Rules: the scheme is `http` or `https` (any case); the host is a name or an address literal
//! (IPv6 in brackets); the port is 1–65535 (80 or 443 when absent); the target is the path and
//! query, starting with `/`; a fragment is dropped. User info (`user:pass@`) is kept apart from
//! the host, never in [`HttpUrl::authority`], so it is sent only as an `Authorization` header.
//! Spaces and control characters anywhere are refused.

/// Why a URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad URL {url}: {why}")]
pub struct UrlError {
    /// The URL given, with credentials and query removed ([`redact`]).
    pub url: String,
    /// What is wrong.
    pub why: &'static str,
}

/// A parsed `http`/`https` URL.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// Whether the server speaks TLS.
    pub https: bool,
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// The request target (path and query), starting with `/`.
    pub target: String,
    /// The `Host` header value (host, plus the port when it is not the scheme's default).
    pub authority: String,
    /// `user[:password]` from the URL, percent-encoded as given; `None` when absent.
    pub userinfo: Option<String>,
}

impl std::fmt::Debug for HttpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HttpUrl({})", self)
    }
}

/// Shows the URL without credentials or query: safe to log.
impl std::fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        let path = self.target.split('?').next().unwrap_or("/");
        write!(f, "{scheme}://{}{path}", self.authority)?;
        if self.target.contains('?') {
            f.write_str("?…")?;
        }
        Ok(())
    }
}

impl HttpUrl {
    /// Parses an `http` or `https` URL.
    pub fn parse(url: &str) -> Result<Self, UrlError> {
        let bad = |why: &'static str| UrlError { url: redact(url), why };
        if url.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(bad("spaces or control characters"));
        }
        let (scheme, rest) = url.split_once("://").ok_or(bad("no scheme"))?;
        let https = if scheme.eq_ignore_ascii_case("https") {
            true
        } else if scheme.eq_ignore_ascii_case("http") {
            false
        } else {
            return Err(bad("scheme must be http or https"));
        };
        let rest = rest.split('#').next().unwrap_or_default();
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, target) = rest.split_at(split);
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u.to_string()), h),
            None => (None, authority),
        };
        let default_port = if https { 443 } else { 80 };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or(bad("unclosed IPv6 literal"))?;
            match after {
                "" => (host, None),
                p => (host, Some(p.strip_prefix(':').ok_or(bad("junk after IPv6 literal"))?)),
            }
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        if host.is_empty() || host.contains(['[', ']', '@']) {
            return Err(bad("missing or bad host"));
        }
        let port = match port {
            None => default_port,
            Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0).ok_or(bad("bad port"))?,
        };
        let target = if target.starts_with('/') { target.to_string() } else { format!("/{target}") };
        let bracketed = if host.contains(':') { format!("[{host}]") } else { host.to_string() };
        let authority = if port == default_port { bracketed } else { format!("{bracketed}:{port}") };
        Ok(HttpUrl { https, host: host.to_string(), port, target, authority, userinfo })
    }

    /// The `Authorization: Basic …` value for the URL's user info, if it has any.
    pub fn basic_auth(&self) -> Option<String> {
        let info = self.userinfo.as_deref()?;
        let decoded = crate::percent::percent_decode(info).unwrap_or_else(|| info.as_bytes().to_vec());
        Some(format!("Basic {}", data_encoding::BASE64.encode(&decoded)))
    }

    /// The same server with another target (e.g. a tracker's `/announce` beside a data URL).
    pub fn with_target(&self, target: &str) -> HttpUrl {
        HttpUrl { target: target.to_string(), ..self.clone() }
    }
}

/// A URL safe to show or log: user info and query string removed (`https://host/path?…`).
/// Works on any string, parseable or not.
pub fn redact(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (Some(s), r),
        None => (None, url),
    };
    let rest = rest.split('#').next().unwrap_or_default();
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(split);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let path = tail.split('?').next().unwrap_or_default();
    let mut out = String::with_capacity(url.len());
    if let Some(s) = scheme {
        out.push_str(s);
        out.push_str("://");
    }
    out.push_str(host);
    out.push_str(path);
    if tail.contains('?') {
        out.push_str("?…");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let u = HttpUrl::parse("http://127.0.0.1:8000/a/b?x=1#frag").unwrap();
        assert_eq!(
            (u.https, u.host.as_str(), u.port, u.target.as_str(), u.authority.as_str()),
            (false, "127.0.0.1", 8000, "/a/b?x=1", "127.0.0.1:8000")
        );
        let u = HttpUrl::parse("HTTPS://example.com").unwrap();
        assert_eq!(
            (u.https, u.port, u.target.as_str(), u.authority.as_str()),
            (true, 443, "/", "example.com")
        );
        let u = HttpUrl::parse("http://[::1]:9/f").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.authority.as_str()), ("::1", 9, "[::1]:9"));
        let u = HttpUrl::parse("http://h?x").unwrap();
        assert_eq!(u.target, "/?x");
        for bad in [
            "ftp://x/",
            "udp://t:80",
            "t/announce",
            "http://",
            "http://:80/",
            "http://h:0/",
            "http://h:notaport/",
            "http://[::1/",
            "http://h/a b",
            "http://h/\x01",
        ] {
            assert!(HttpUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn credentials_never_show() {
        let u = HttpUrl::parse("https://user:p%40ss@origin.example/f?X-Amz-Signature=abc").unwrap();
        assert_eq!(u.authority, "origin.example");
        assert_eq!(u.basic_auth().as_deref(), Some("Basic dXNlcjpwQHNz"));
        assert_eq!(u.to_string(), "https://origin.example/f?…");
        assert!(!format!("{u:?}").contains("ss@"));
        assert_eq!(redact("http://a:b@h:1/p?q=1#x"), "http://h:1/p?…");
        assert_eq!(redact("not a url"), "not a url");
        let e = HttpUrl::parse("http://u:secret@h:x/?sig=1").unwrap_err().to_string();
        assert!(!e.contains("secret") && !e.contains("sig"), "{e}");
    }

    proptest::proptest! {
        #[test]
        fn any_input_parses_or_errs_and_redaction_drops_userinfo(s in ".{0,80}") {
            let _ = HttpUrl::parse(&s);
            let r = redact(&format!("http://user:pw@{s}"));
            proptest::prop_assert!(!r.contains("user:pw@"));
        }
    }
}
