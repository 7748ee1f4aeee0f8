//! Dashboard session tokens: 32 random bytes as hex, handed to the browser once in an
//! `HttpOnly` cookie and stored only as their SHA-256 hash, the way API keys are.
//!
//! A token is as long and random as an API key, so a fast hash is enough; what the database
//! holds cannot be turned back into a cookie that works.

use std::fmt;

use rand::RngCore;
use sha2::{Digest, Sha256};

const RANDOM_BYTES: usize = 32;

/// A freshly minted session token, before it is set in a cookie and forgotten.
#[derive(Clone)]
pub struct SessionToken(String);

impl SessionToken {
    pub fn generate() -> Self {
        let mut bytes = [0u8; RANDOM_BYTES];
        rand::thread_rng().fill_bytes(&mut bytes);
        Self(hex::encode(bytes))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> String {
        hash_session_token(&self.0)
    }
}

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionToken(<redacted>)")
    }
}

/// The hex SHA-256 of a presented token, the form in which sessions are stored and looked up.
pub fn hash_session_token(presented: &str) -> String {
    hex::encode(Sha256::digest(presented.as_bytes()))
}

/// True when `text` has the shape of a token (64 lowercase hex digits), so junk in a cookie
/// never reaches the database.
pub fn looks_like_session_token(text: &str) -> bool {
    text.len() == RANDOM_BYTES * 2 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_well_formed_and_stored_only_as_a_hash() {
        let token = SessionToken::generate();
        assert!(looks_like_session_token(token.expose()));
        assert_ne!(token.expose(), SessionToken::generate().expose());
        assert_eq!(token.hash(), hash_session_token(token.expose()));
        assert_ne!(token.hash(), token.expose());
        assert!(!format!("{token:?}").contains(token.expose()));
    }

    #[test]
    fn junk_does_not_look_like_a_token() {
        assert!(!looks_like_session_token(""));
        assert!(!looks_like_session_token("lk_abc"));
        assert!(!looks_like_session_token(&"A".repeat(64)));
        assert!(!looks_like_session_token(&"a".repeat(65)));
    }
}
