//! API keys: `lk_` followed by 40 random base62 characters, shown once, stored as a SHA-256
//! hash. The keys are long and random, so a fast hash is enough (a slow password hash would only
//! make every request slower); the first characters are kept in clear to tell keys apart.

use std::fmt;

use rand::Rng;
use sha2::{Digest, Sha256};

pub const KEY_PREFIX: &str = "lk_";
const RANDOM_LENGTH: usize = 40;
const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// How much of a key is stored and shown in clear: `lk_` and four more characters.
const DISPLAY_PREFIX_LENGTH: usize = 7;

/// A freshly minted key, before it is shown once and forgotten.
#[derive(Clone)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn generate() -> Self {
        let mut rng = rand::thread_rng();
        let random: String = (0..RANDOM_LENGTH)
            .map(|_| BASE62[rng.gen_range(0..BASE62.len())] as char)
            .collect();
        Self(format!("{KEY_PREFIX}{random}"))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> String {
        hash_key(&self.0)
    }

    pub fn display_prefix(&self) -> &str {
        &self.0[..DISPLAY_PREFIX_LENGTH]
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKey({}…)", self.display_prefix())
    }
}

/// The hex SHA-256 of a presented key, the form in which keys are stored and looked up.
pub fn hash_key(presented: &str) -> String {
    hex::encode(Sha256::digest(presented.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_recognisable_and_its_hash_is_stable() {
        let key = ApiKey::generate();
        assert!(key.expose().starts_with("lk_"));
        assert_eq!(key.expose().len(), 43);
        assert_eq!(key.hash(), hash_key(key.expose()));
        assert_ne!(key.hash(), ApiKey::generate().hash());
        assert!(!format!("{key:?}").contains(&key.expose()[8..]));
    }
}
