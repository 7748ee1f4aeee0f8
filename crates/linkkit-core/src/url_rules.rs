//! What makes a link destination or a webhook endpoint URL acceptable.
//!
//! Both must be absolute `http`/`https` URLs with a host and no credentials. An endpoint URL is
//! also refused, at creation, when its host is plainly not public (an IP literal in a private
//! range, `localhost`, `*.internal`…); the sender checks the resolved address again at delivery
//! time, since a public name may resolve to a private address later.

use std::net::IpAddr;

use url::{Host, Url};

use crate::net::TargetPolicy;

const MAX_URL_LENGTH: usize = 2048;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidUrl {
    #[error("`{0}` is not a valid absolute URL")]
    Malformed(String),
    #[error("only http and https URLs are allowed, not `{0}`")]
    Scheme(String),
    #[error("the URL has no host")]
    NoHost,
    #[error("the URL may not carry a user name or password")]
    Credentials,
    #[error("the URL is longer than {MAX_URL_LENGTH} characters")]
    TooLong,
    #[error("`{0}` is not a public address; webhooks are only sent to public hosts")]
    PrivateHost(String),
}

fn parse_http_url(input: &str) -> Result<Url, InvalidUrl> {
    if input.chars().count() > MAX_URL_LENGTH {
        return Err(InvalidUrl::TooLong);
    }
    let url = Url::parse(input.trim()).map_err(|_| InvalidUrl::Malformed(input.to_owned()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(InvalidUrl::Scheme(url.scheme().to_owned()));
    }
    if url.host().is_none() {
        return Err(InvalidUrl::NoHost);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(InvalidUrl::Credentials);
    }
    Ok(url)
}

/// True when `input` is written the way the API documents a URL (and its OpenAPI pattern
/// says): `http://` or `https://` (any case), a host that is a dotted IPv4 address or a name of
/// letter-digit-hyphen labels whose last label starts with a letter, an optional port up to
/// 65535, then nothing or a path, query or fragment (anything after `/`, `?` or `#`). Nothing
/// may come before the scheme.
///
/// The URL parser accepts much more (spaces around, tabs inside, `0x7f.1`, IPv6, a host with
/// `*`): this is the narrower form the API promises, so what it accepts and what its document
/// says are the same set.
pub fn is_canonical_http_url(input: &str) -> bool {
    let lower = input.get(..8).unwrap_or(input).to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        &input[8..]
    } else if lower.starts_with("http://") {
        &input[7..]
    } else {
        return false;
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let (host, port) = match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    (is_dotted_ipv4(host) || is_host_name(host)) && port.is_none_or(is_port)
}

/// `a.b.c.d`, each part 0–255 without leading zeros.
fn is_dotted_ipv4(host: &str) -> bool {
    let parts: Vec<&str> = host.split('.').collect();
    parts.len() == 4
        && parts.iter().all(|part| {
            !part.is_empty()
                && part.len() <= 3
                && part.bytes().all(|b| b.is_ascii_digit())
                && (part.len() == 1 || !part.starts_with('0'))
                && part.parse::<u16>().is_ok_and(|n| n <= 255)
        })
}

/// Labels of ASCII letters and digits joined by hyphens (none at either end), separated by
/// single dots; the last label starts with a letter, so the name is never read as a number.
fn is_host_name(host: &str) -> bool {
    let labels: Vec<&str> = host.split('.').collect();
    let last = labels.last().copied().unwrap_or("");
    last.starts_with(|c: char| c.is_ascii_alphabetic())
        && labels.iter().all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// 1–4 digits, or 5 digits up to 65535 without a leading zero.
fn is_port(port: &str) -> bool {
    let digits = port.bytes().all(|b| b.is_ascii_digit());
    match port.len() {
        1..=4 => digits,
        5 => digits && !port.starts_with('0') && port.parse::<u32>().is_ok_and(|n| n <= 65_535),
        _ => false,
    }
}

/// Where a short link sends its visitors, as it will be stored and sent in `Location`: the
/// text as given when it is plain printable ASCII (so users get back what they wrote), otherwise
/// the parser's percent-encoded form.
pub fn parse_destination(input: &str) -> Result<String, InvalidUrl> {
    let url = parse_http_url(input)?;
    let given = input.trim();
    if given.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(given.to_owned())
    } else {
        Ok(url.to_string())
    }
}

/// Where webhooks go, under the operator's target policy: private hosts pass only when private
/// targets are allowed (local testing), or an IP literal in an allow-listed range.
pub fn parse_endpoint_url(input: &str, policy: &TargetPolicy) -> Result<Url, InvalidUrl> {
    let url = parse_http_url(input)?;
    if !policy.allow_private {
        if let Some(host) = url.host() {
            if !host_may_be_public(&host, policy) {
                return Err(InvalidUrl::PrivateHost(host.to_string()));
            }
        }
    }
    Ok(url)
}

/// False for hosts that can never be public: IP literals the policy does not permit, and
/// reserved names. The URL parser has already normalised odd IPv4 spellings (`0x7f.1`,
/// `2130706433`) into addresses.
pub fn host_may_be_public(host: &Host<&str>, policy: &TargetPolicy) -> bool {
    match host {
        Host::Ipv4(v4) => policy.permits(IpAddr::V4(*v4)),
        Host::Ipv6(v6) => policy.permits(IpAddr::V6(*v6)),
        Host::Domain(name) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            let reserved_suffix = [
                ".localhost",
                ".local",
                ".internal",
                ".localdomain",
                ".home.arpa",
            ]
            .iter()
            .any(|suffix| name.ends_with(suffix));
            name != "localhost" && !reserved_suffix && name.contains('.')
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn an_accepted_destination_is_always_http_or_https_with_a_host(input in "\\PC{0,80}") {
            if let Ok(accepted) = parse_destination(&input) {
                let url = Url::parse(&accepted).unwrap();
                prop_assert!(matches!(url.scheme(), "http" | "https"));
                prop_assert!(url.host().is_some());
                prop_assert!(accepted.len() <= 2048 * 3);
            }
        }

        #[test]
        fn no_spelling_of_a_loopback_address_passes_as_an_endpoint(
            a in 0u32..=0xff_ffff,
            style in 0usize..4,
        ) {
            let address = 0x7f00_0000u32 | a; // 127.0.0.0/8
            let host = match style {
                0 => std::net::Ipv4Addr::from(address).to_string(),
                1 => address.to_string(),
                2 => format!("0x{address:x}"),
                _ => format!("[::ffff:{}]", std::net::Ipv4Addr::from(address)),
            };
            let url = format!("http://{host}/hook");
            prop_assert!(parse_endpoint_url(&url, &TargetPolicy::default()).is_err(), "{url}");
        }
    }

    #[test]
    fn the_documented_form_of_a_url_is_recognised_exactly() {
        for url in [
            "https://example.com",
            "HTTP://Example.COM:8080/a b?q=ü#x",
            "http://127.0.0.1:65535/webhooks",
            "http://0.0.0.0",
            "https://xn--bcher-kva.de/",
            "https://a-b--c.d1.example?x",
            "http://localhost:3000/hook",
            "http://1a.b",
        ] {
            assert!(is_canonical_http_url(url), "{url} is canonical");
            assert!(parse_destination(url).is_ok(), "{url} parses");
        }
        for url in [
            " https://example.com",
            "https://example.com ",
            "ht\ttp://example.com",
            "https://exa*mple.com/",
            "https://example.com./",
            "https://-a.com/",
            "https://a-.com/",
            "https://a..com/",
            "http://0x7f.1/",
            "http://2130706433/",
            "http://01.2.3.4/",
            "http://256.1.1.1/",
            "http://1.2.3.4.5/",
            "http://a.1/",
            "http://[::1]/",
            "http://example.com:/",
            "http://example.com:65536/",
            "http://example.com:08080/",
            "http://user@example.com/",
            "http://example.com\\path",
            "ftp://example.com/",
            "https:/example.com",
        ] {
            assert!(!is_canonical_http_url(url), "{url} is not canonical");
        }
    }

    #[test]
    fn the_length_limit_counts_characters() {
        let url = format!("https://example.com/{}", "é".repeat(2048 - 20));
        assert_eq!(url.chars().count(), 2048);
        assert!(parse_destination(&url).is_ok());
        assert_eq!(
            parse_destination(&format!("{url}é")),
            Err(InvalidUrl::TooLong)
        );
    }

    #[test]
    fn destinations_must_be_http_or_https_with_a_host() {
        assert_eq!(
            parse_destination(" https://example.com/product?x=1").unwrap(),
            "https://example.com/product?x=1"
        );
        assert_eq!(
            parse_destination("https://example.com/a b").unwrap(),
            "https://example.com/a%20b"
        );
        assert_eq!(
            parse_destination("ftp://example.com"),
            Err(InvalidUrl::Scheme("ftp".into()))
        );
        assert_eq!(
            parse_destination("javascript:alert(1)"),
            Err(InvalidUrl::Scheme("javascript".into()))
        );
        assert!(matches!(
            parse_destination("not a url"),
            Err(InvalidUrl::Malformed(_))
        ));
        assert_eq!(
            parse_destination("https://user:pw@example.com"),
            Err(InvalidUrl::Credentials)
        );
    }

    #[test]
    fn endpoint_urls_on_private_hosts_are_refused_in_every_spelling() {
        let local_testing = TargetPolicy {
            allow_private: true,
            ..TargetPolicy::default()
        };
        for url in [
            "http://127.0.0.1/hook",
            "http://0x7f.1/hook",
            "http://2130706433/hook",
            "http://[::ffff:127.0.0.1]/hook",
            "http://localhost:3000/hook",
            "http://169.254.169.254/latest/meta-data",
            "http://10.0.0.1/",
            "http://metadata.internal/",
            "http://[::1]/",
        ] {
            assert!(
                matches!(
                    parse_endpoint_url(url, &TargetPolicy::default()),
                    Err(InvalidUrl::PrivateHost(_))
                ),
                "{url} must be refused"
            );
            assert!(
                parse_endpoint_url(url, &local_testing).is_ok(),
                "{url} is allowed when private targets are"
            );
        }
        assert!(parse_endpoint_url(
            "https://hooks.example.com/linkkit",
            &TargetPolicy::default()
        )
        .is_ok());
    }
}
