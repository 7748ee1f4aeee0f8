//! Where a visitor is: the client address (from `X-Forwarded-For` only when the connection
//! comes from a trusted proxy) looked up in a MaxMind-format database when one is configured,
//! else a CDN's country header when proxy headers are trusted, else `"Unknown"`. The address
//! itself is never put in an event.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use axum::http::HeaderMap;
use ipnet::IpNet;
use maxminddb::{path, Reader};

pub const UNKNOWN: &str = "Unknown";
/// Country headers set by CDNs and load balancers, in order of preference.
const COUNTRY_HEADERS: &[&str] = &[
    "cf-ipcountry",
    "cloudfront-viewer-country",
    "x-vercel-ip-country",
    "x-country-code",
];

#[derive(Debug, thiserror::Error)]
#[error("cannot open the GeoIP database {path}: {reason}")]
pub struct GeoError {
    pub path: String,
    pub reason: String,
}

#[derive(Clone, Default)]
pub struct Geo {
    database: Option<Arc<Reader<Vec<u8>>>>,
    trust_proxy_headers: bool,
    trusted_proxies: Vec<IpNet>,
}

impl std::fmt::Debug for Geo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Geo")
            .field("database", &self.database.is_some())
            .field("trust_proxy_headers", &self.trust_proxy_headers)
            .field("trusted_proxies", &self.trusted_proxies)
            .finish()
    }
}

impl Geo {
    /// `database`: a GeoLite2/GeoIP2 Country or City `.mmdb` file.
    pub fn new(
        database: Option<&Path>,
        trust_proxy_headers: bool,
        trusted_proxies: Vec<IpNet>,
    ) -> Result<Self, GeoError> {
        let database = database
            .map(|path| {
                Reader::open_readfile(path)
                    .map(Arc::new)
                    .map_err(|error| GeoError {
                        path: path.display().to_string(),
                        reason: error.to_string(),
                    })
            })
            .transpose()?;
        Ok(Self {
            database,
            trust_proxy_headers,
            trusted_proxies,
        })
    }

    /// The visitor's country name, or `"Unknown"`.
    pub fn country(&self, peer: SocketAddr, headers: &HeaderMap) -> String {
        let from_proxy = self.trust_proxy_headers && self.is_trusted(peer.ip());
        if let Some(database) = &self.database {
            let client = if from_proxy {
                forwarded_client(headers, &self.trusted_proxies)
            } else {
                None
            };
            if let Some(name) = lookup(database, client.unwrap_or(peer.ip())) {
                return name;
            }
        }
        if from_proxy {
            if let Some(name) = COUNTRY_HEADERS
                .iter()
                .find_map(|header| country_from_header(headers, header))
            {
                return name;
            }
        }
        UNKNOWN.to_owned()
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|range| range.contains(&ip))
    }
}

/// The right-most address of `X-Forwarded-For` that is not one of our proxies: the client as
/// the first trusted proxy saw it (addresses further left could be forged by the client).
fn forwarded_client(headers: &HeaderMap, trusted: &[IpNet]) -> Option<IpAddr> {
    let chain = headers.get("x-forwarded-for")?.to_str().ok()?;
    chain
        .split(',')
        .rev()
        .filter_map(|part| part.trim().parse::<IpAddr>().ok())
        .find(|ip| !trusted.iter().any(|range| range.contains(ip)))
}

fn lookup(database: &Reader<Vec<u8>>, ip: IpAddr) -> Option<String> {
    let result = database.lookup(ip).ok()?;
    if let Ok(Some(name)) = result.decode_path::<String>(&path!["country", "names", "en"]) {
        return Some(name);
    }
    let code: String = result.decode_path(&path!["country", "iso_code"]).ok()??;
    country_name(&code)
}

fn country_from_header(headers: &HeaderMap, header: &str) -> Option<String> {
    country_name(headers.get(header)?.to_str().ok()?.trim())
}

/// `IN` → `India`; codes that mean "unknown" or "Tor" (`XX`, `T1`) give `None`.
fn country_name(code: &str) -> Option<String> {
    let country = isocountry::CountryCode::for_alpha2_caseless(code).ok()?;
    Some(country.name().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    fn proxy() -> SocketAddr {
        "10.0.0.5:443".parse().unwrap()
    }

    #[test]
    fn a_cdn_country_header_is_used_only_from_a_trusted_proxy() {
        let trusting = Geo::new(None, true, vec!["10.0.0.0/8".parse().unwrap()]).unwrap();
        let with_header = headers(&[("cf-ipcountry", "IN")]);
        assert_eq!(trusting.country(proxy(), &with_header), "India");
        assert_eq!(
            trusting.country("203.0.113.9:5000".parse().unwrap(), &with_header),
            UNKNOWN
        );
        let careful = Geo::new(None, false, vec!["10.0.0.0/8".parse().unwrap()]).unwrap();
        assert_eq!(careful.country(proxy(), &with_header), UNKNOWN);
        assert_eq!(
            trusting.country(proxy(), &headers(&[("cf-ipcountry", "XX")])),
            UNKNOWN
        );
    }

    #[test]
    fn the_forwarded_client_is_the_rightmost_untrusted_address() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let chain = headers(&[("x-forwarded-for", "1.2.3.4, 81.2.69.160, 10.0.0.7")]);
        assert_eq!(
            forwarded_client(&chain, &trusted),
            Some("81.2.69.160".parse().unwrap())
        );
        assert_eq!(
            forwarded_client(&headers(&[("x-forwarded-for", "10.0.0.9")]), &trusted),
            None
        );
    }
}
