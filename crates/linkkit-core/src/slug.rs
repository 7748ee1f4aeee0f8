//! The path of a short link: `https://lkkt.in/{slug}`.

use std::fmt;

use rand::Rng;
use serde::Serialize;

const MAX_LENGTH: usize = 64;
const GENERATED_LENGTH: usize = 7;
const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a valid slug (1-64 characters: letters, digits, `-` and `_`, starting with a letter or digit)")]
pub struct InvalidSlug(pub String);

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Slug(String);

impl Slug {
    pub fn parse(value: &str) -> Result<Self, InvalidSlug> {
        let valid = !value.is_empty()
            && value.len() <= MAX_LENGTH
            && value.as_bytes()[0].is_ascii_alphanumeric()
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if valid {
            Ok(Self(value.to_owned()))
        } else {
            Err(InvalidSlug(value.to_owned()))
        }
    }

    /// A random 7-character slug from an alphabet without look-alikes (no `0/O`, `1/l/I`).
    pub fn generate() -> Self {
        let mut rng = rand::thread_rng();
        let slug = (0..GENERATED_LENGTH)
            .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
            .collect();
        Self(slug)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn readable_slugs_are_accepted_and_odd_ones_refused() {
        assert!(Slug::parse("summer-sale").is_ok());
        assert!(Slug::parse("Q4_2026").is_ok());
        for bad in [
            "",
            "-lead",
            "has space",
            "a/b",
            "ünï",
            "x?y",
            &"a".repeat(65),
        ] {
            assert!(Slug::parse(bad).is_err(), "{bad} must be refused");
        }
    }

    proptest! {
        #[test]
        fn generated_slugs_always_parse(_seed in 0u8..50) {
            let slug = Slug::generate();
            prop_assert_eq!(Slug::parse(slug.as_str()).unwrap(), slug);
        }

        #[test]
        fn accepted_slugs_are_safe_in_a_url_path(input in ".{0,70}") {
            if let Ok(slug) = Slug::parse(&input) {
                prop_assert!(slug.as_str().bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            }
        }
    }
}
