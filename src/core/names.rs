//! Kubernetes' name rules (RFC 1123), in one place: namespaces, object names, label-key
//! prefixes and the names read from a bucket are all checked with these.

/// Longest DNS-1123 label (a namespace name).
pub const MAX_LABEL_LEN: usize = 63;
/// Longest DNS-1123 subdomain (most object names, label-key prefixes).
pub const MAX_SUBDOMAIN_LEN: usize = 253;

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters: what a namespace may be called.
pub fn is_dns1123_label(name: &str) -> bool {
    name.len() <= MAX_LABEL_LEN && is_label_shape(name)
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?` joined by dots, at most 253 characters: what most objects
/// may be called. As in Kubernetes' `IsDNS1123Subdomain`, the parts have no length limit of
/// their own.
pub fn is_dns1123_subdomain(name: &str) -> bool {
    name.len() <= MAX_SUBDOMAIN_LEN && name.split('.').all(is_label_shape)
}

fn is_label_shape(part: &str) -> bool {
    let b = part.as_bytes();
    let edge = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            edge(first) && edge(last) && b.iter().all(|c| edge(c) || *c == b'-')
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        for ok in ["a", "team-a", "0", "a1-b2", &"x".repeat(63)] {
            assert!(is_dns1123_label(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "A", "a.b", "a_b", "é", &"x".repeat(64)] {
            assert!(!is_dns1123_label(bad), "{bad}");
        }
    }

    #[test]
    fn subdomains() {
        let long_part = "p".repeat(100);
        for ok in [
            "a",
            "a.b",
            "widgets.example.com",
            "kube-root-ca.crt",
            &long_part,
        ] {
            assert!(is_dns1123_subdomain(ok), "{ok}");
        }
        let long = format!(
            "{}.{}.{}.{}",
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(62)
        );
        assert_eq!(long.len(), 254);
        for bad in ["", ".", "a..b", "a.", ".a", "A.b", "a/b", long.as_str()] {
            assert!(!is_dns1123_subdomain(bad), "{bad}");
        }
    }
}
