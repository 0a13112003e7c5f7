//! API keys: `ontab_<key id>_<secret>`, a public id to find the key by and a
//! 256-bit secret of which only the SHA-256 is stored.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use uuid::Uuid;

const PREFIX: &str = "ontab_";

/// A key as presented by a client or just issued.
pub struct ApiKey {
    pub id: Uuid,
    secret: [u8; 32],
}

impl ApiKey {
    /// A new key from the operating system's random source.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret)?;
        Ok(Self {
            id: Uuid::now_v7(),
            secret,
        })
    }

    /// Parses a presented token; `None` for anything not shaped like a key.
    pub fn parse(token: &str) -> Option<Self> {
        let rest = token.strip_prefix(PREFIX)?;
        let (id, secret) = rest.split_once('_')?;
        let id = Uuid::try_parse(id).ok()?;
        let bytes = URL_SAFE_NO_PAD.decode(secret).ok()?;
        let secret: [u8; 32] = bytes.try_into().ok()?;
        Some(Self { id, secret })
    }

    pub fn secret_sha256(&self) -> [u8; 32] {
        Sha256::digest(self.secret).into()
    }

    /// The plain key, shown to its owner once.
    pub fn reveal(&self) -> String {
        format!(
            "{PREFIX}{}_{}",
            self.id.simple(),
            URL_SAFE_NO_PAD.encode(self.secret)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revealed_key_parses_back_to_the_same_hash() {
        let key = ApiKey::generate().expect("random source available");
        let parsed = ApiKey::parse(&key.reveal()).expect("own format parses");
        assert_eq!(parsed.id, key.id);
        assert_eq!(parsed.secret_sha256(), key.secret_sha256());
    }

    #[test]
    fn malformed_tokens_are_not_keys() {
        let key = ApiKey::generate()
            .expect("random source available")
            .reveal();
        assert!(ApiKey::parse(&key[..key.len() - 1]).is_none());
        assert!(ApiKey::parse("ontab_nope_nope").is_none());
        assert!(ApiKey::parse("").is_none());
        assert!(ApiKey::parse(&key.replacen("ontab_", "other_", 1)).is_none());
    }
}
