//! Validating `storageLocation.endpoint` before any request is made.

use super::StorageError;

/// A validated S3 endpoint: `scheme://host[:port]`, nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// `http://127.0.0.1:9000`, no trailing slash.
    pub url: String,
    /// Lower-case host name or address (an IPv6 address in brackets), without the port.
    pub host: String,
    /// Plain HTTP was asked for with `http://`.
    pub allow_http: bool,
    /// No scheme was written and `https://` was assumed (used to hint at `http://` when TLS fails).
    pub scheme_implied: bool,
}

/// `http://` → plain HTTP, `https://` → TLS, no scheme → `https://`. Anything else (another
/// scheme, a path, query, user info, an empty host, a bad port) is refused with a reason.
pub(crate) fn parse_endpoint(raw: &str) -> Result<Endpoint, StorageError> {
    let trimmed = raw.trim();
    let invalid = |reason: String| StorageError::InvalidEndpoint {
        endpoint: redact_userinfo(trimmed),
        reason,
    };
    if trimmed.is_empty() {
        return Err(invalid("endpoint is empty".to_string()));
    }
    let (scheme, rest, scheme_implied) = match trimmed.split_once("://") {
        Some((scheme, rest)) => {
            let scheme = scheme.to_ascii_lowercase();
            if scheme != "http" && scheme != "https" {
                return Err(invalid(format!(
                    "unsupported scheme {scheme:?}: use http:// (plain HTTP) or https:// (TLS)"
                )));
            }
            (scheme, rest, false)
        }
        None => ("https".to_string(), trimmed, true),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, remainder) = rest.split_at(end);
    if remainder.starts_with(['?', '#']) {
        return Err(invalid(
            "endpoint must not contain a query or fragment".to_string(),
        ));
    }
    if !remainder.is_empty() && remainder != "/" {
        return Err(invalid(format!(
            "endpoint must be scheme://host[:port] without a path (found {remainder:?}); put the bucket name in `bucket` and key prefixes in `prefix`"
        )));
    }
    if authority.contains('@') {
        return Err(invalid(
            "endpoint must not contain user info; put the keys in a Secret and set credentialsSecret"
                .to_string(),
        ));
    }
    let (host, port) = split_host_port(authority).map_err(invalid)?;
    if host.is_empty() {
        return Err(invalid("endpoint has no host".to_string()));
    }
    let url = match port {
        Some(port) => format!("{scheme}://{}:{port}", host.to_ascii_lowercase()),
        None => format!("{scheme}://{}", host.to_ascii_lowercase()),
    };
    Ok(Endpoint {
        allow_http: scheme == "http",
        url,
        host: host.to_ascii_lowercase(),
        scheme_implied,
    })
}

impl Endpoint {
    /// Whether the host is this machine (`localhost`, `127.0.0.0/8`, `::1`): plain HTTP to it
    /// never crosses a network.
    pub fn is_loopback(&self) -> bool {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        host == "localhost"
            || host.ends_with(".localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

fn split_host_port(authority: &str) -> Result<(&str, Option<u16>), String> {
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let close = v6.find(']').ok_or("unterminated IPv6 address")?;
        let host = &authority[..close + 2];
        let after = &v6[close + 1..];
        if !v6[..close]
            .chars()
            .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        {
            return Err(format!("invalid IPv6 address {host:?}"));
        }
        match after.strip_prefix(':') {
            Some(port) => (host, Some(port)),
            None if after.is_empty() => (host, None),
            None => return Err(format!("unexpected {after:?} after the IPv6 address")),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if !host.starts_with('[')
        && let Some(bad) = host
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')))
    {
        return Err(format!("invalid character {bad:?} in host {host:?}"));
    }
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && p.chars().all(|c| c.is_ascii_digit()) => Some(n),
            _ => return Err(format!("invalid port {p:?} (expected 1-65535)")),
        },
    };
    Ok((host, port))
}

/// Never echo `user:password@` back in a message.
fn redact_userinfo(raw: &str) -> String {
    let (scheme, rest) = match raw.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), raw),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{scheme}***@{}", &rest[at + 1..]),
        None => raw.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(raw: &str) -> Endpoint {
        parse_endpoint(raw).unwrap_or_else(|e| panic!("{raw}: {e}"))
    }

    fn reason(raw: &str) -> String {
        parse_endpoint(raw).unwrap_err().to_string()
    }

    #[test]
    fn schemes() {
        let http = ok("http://127.0.0.1:9000");
        assert_eq!(http.url, "http://127.0.0.1:9000");
        assert!(http.allow_http);
        assert!(!http.scheme_implied);

        let https = ok("HTTPS://S3.Example.com/");
        assert_eq!(https.url, "https://s3.example.com");
        assert!(!https.allow_http);

        let implied = ok(" minio.minio.svc:9000 ");
        assert_eq!(implied.url, "https://minio.minio.svc:9000");
        assert!(!implied.allow_http);
        assert!(implied.scheme_implied);

        assert_eq!(ok("http://[::1]:9000").url, "http://[::1]:9000");
        assert_eq!(ok("https://[fd00::1]").url, "https://[fd00::1]");
    }

    #[test]
    fn refusals() {
        assert!(reason("ftp://host").contains("unsupported scheme \"ftp\""));
        assert!(reason("s3://bucket").contains("unsupported scheme"));
        assert!(reason("http://host:9000/bucket").contains("without a path"));
        assert!(reason("http://host/a/b").contains("without a path"));
        assert!(reason("http://host?x=1").contains("query"));
        assert!(reason("http://").contains("no host"));
        assert!(reason("http://:9000").contains("no host"));
        assert!(reason("").contains("empty"));
        assert!(reason("http://host:0").contains("invalid port"));
        assert!(reason("http://host:99999").contains("invalid port"));
        assert!(reason("http://host:abc").contains("invalid port"));
        assert!(reason("http://ho st").contains("invalid character"));
        assert!(reason("http://[::1").contains("IPv6"));
    }

    #[test]
    fn userinfo_is_refused_and_redacted() {
        let msg = reason("http://AKID:topsecret@host:9000");
        assert!(msg.contains("user info"), "{msg}");
        assert!(!msg.contains("topsecret"), "{msg}");
        assert!(msg.contains("http://***@host:9000"), "{msg}");
    }
}
