//! Client-side encryption of what a location stores (`storageLocation.encryption`): objects,
//! manifests and index documents are sealed whole, and each object of a pack is sealed on its
//! own (so one object is still one ranged GET). XChaCha20-Poly1305 (RustCrypto) with a random
//! 192-bit nonce per sealed item. The header and the item's place (its key relative to the
//! location's prefix, or its pack and offset) are authenticated too, so a sealed item moved or
//! copied elsewhere in the bucket does not open.
//!
//! ```text
//! "CBOE" | version (1) | key id length (1 byte) | key id | nonce (24 bytes) | ciphertext | tag (16 bytes)
//! ```
//!
//! The key id names the key of the location's key Secret that sealed the item, so keys rotate:
//! new items use the Secret's `active` key, items sealed with an older key open as long as the
//! Secret still holds it. Keys never appear in messages, `Debug` output or the bucket. Our
//! copies of key bytes are wiped after use and the ciphers wipe theirs when dropped (`zeroize`);
//! the API server's response buffers are not ours to wipe.

use std::collections::BTreeMap;
use std::fmt;

use chacha20poly1305::aead::{Aead, Generate, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

/// First bytes of every sealed item.
pub const MAGIC: &[u8; 4] = b"CBOE";
const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// Longest key id (a Secret data key is at most 253 characters; ids stay short).
pub const MAX_KEY_ID: usize = 64;
/// Most bytes sealing adds to an item.
pub const MAX_OVERHEAD: u64 = (MAGIC.len() + 2 + MAX_KEY_ID + NONCE_LEN + TAG_LEN) as u64;
/// The Secret data key naming the key new items are sealed with.
pub const ACTIVE_KEY: &str = "active";
/// Secret data keys holding keys end with this; the rest is the key id.
pub const KEY_SUFFIX: &str = ".key";
const KEY_LEN: usize = 32;

/// Why a sealed item cannot be read (or an item cannot be sealed). The item's key is added by
/// the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error(
        "is encrypted with key {key_id:?}, but the storage location has no encryption: set encryption.keySecret to a Secret holding that key"
    )]
    NoKeyring { key_id: String },
    #[error(
        "is encrypted with key {key_id:?}, which {source_name} does not hold (it holds {held})"
    )]
    UnknownKey {
        key_id: String,
        source_name: String,
        held: String,
    },
    #[error(
        "cannot be decrypted with key {key_id:?} of {source_name}: that key is not the one it was encrypted with, or the object was altered or moved"
    )]
    Rejected { key_id: String, source_name: String },
    #[error(
        "is not encrypted, but the storage location encrypts everything (encryption.keySecret): it was not written through an encrypting location, or it was replaced (a backup written with encryption.scope Secrets is read through a location with that scope)"
    )]
    NotEncrypted,
    #[error(
        "is a Secret that is not encrypted, but the storage location encrypts Secrets (encryption.keySecret): it was not written through an encrypting location, or it was replaced"
    )]
    SecretNotEncrypted,
    #[error("has a damaged encryption header: {0}")]
    Header(&'static str),
    #[error("cannot be encrypted: {0}")]
    Seal(String),
}

/// The keys of one location: the one new items are sealed with, and every key that may open
/// older ones.
pub struct Keyring {
    active: String,
    keys: BTreeMap<String, XChaCha20Poly1305>,
    /// Where the keys came from, for messages (`Secret "team-a/backup-keys"`).
    source_name: String,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("active", &self.active)
            .field("keys", &self.keys.keys().collect::<Vec<_>>())
            .field("source", &self.source_name)
            .finish()
    }
}

/// Whether `bytes` is a sealed item.
pub fn is_sealed(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC)
}

/// A key id: letters, digits, `.`, `_` and `-`, at most [`MAX_KEY_ID`] characters.
pub fn is_key_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_KEY_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

impl Keyring {
    /// The keys of a key Secret's `data`: entries `<id>.key` hold 32 bytes each (raw, or as 64
    /// hex digits), and `active` names the key new items use (it may be left out when there is
    /// only one key). Other entries are ignored. `source_name` names the Secret in messages.
    pub fn from_secret_data(
        source_name: &str,
        data: &BTreeMap<String, Vec<u8>>,
    ) -> Result<Keyring, String> {
        let mut keys = BTreeMap::new();
        for (name, value) in data {
            let Some(id) = name.strip_suffix(KEY_SUFFIX) else {
                continue;
            };
            if !is_key_id(id) {
                return Err(format!(
                    "{name:?}: a key id has letters, digits, '.', '_' and '-' only, at most {MAX_KEY_ID} characters"
                ));
            }
            let material = key_material(value).ok_or_else(|| {
                format!(
                    "{name:?} does not hold a key: expected {KEY_LEN} bytes, raw or as {} hex digits (e.g. `openssl rand -hex 32`)",
                    KEY_LEN * 2
                )
            })?;
            let cipher = XChaCha20Poly1305::new_from_slice(&material)
                .map_err(|_| format!("{name:?}: not a {KEY_LEN}-byte key"))?;
            keys.insert(id.to_string(), cipher);
        }
        let active = match data.get(ACTIVE_KEY) {
            Some(value) => String::from_utf8_lossy(value).trim().to_string(),
            None if keys.len() == 1 => keys.keys().next().cloned().unwrap_or_default(),
            None if keys.is_empty() => String::new(),
            None => {
                return Err(format!(
                    "it holds {} keys: set {ACTIVE_KEY:?} to the id of the one new backups use",
                    keys.len()
                ));
            }
        };
        if keys.is_empty() {
            return Err(format!(
                "it holds no key: add one as \"<id>{KEY_SUFFIX}\" ({KEY_LEN} bytes, e.g. `openssl rand -hex 32`)"
            ));
        }
        // Never echo a value that is no key id: it could be a key pasted in the wrong place.
        if !is_key_id(&active) {
            return Err(format!(
                "{ACTIVE_KEY:?} is not a key id (letters, digits, '.', '_' and '-', at most {MAX_KEY_ID} characters)"
            ));
        }
        if !keys.contains_key(&active) {
            // The value is not repeated: it may be a key pasted in the wrong place.
            let held: Vec<String> = keys.keys().map(|id| format!("{id:?}")).collect();
            return Err(format!(
                "{ACTIVE_KEY:?} names no key of this Secret (it holds {})",
                held.join(", ")
            ));
        }
        Ok(Keyring {
            active,
            keys,
            source_name: source_name.to_string(),
        })
    }

    /// The id of the key new items are sealed with.
    pub fn active(&self) -> &str {
        &self.active
    }

    /// Seals `plain`, placed at `context` (its key, or its pack and offset).
    pub fn seal(&self, context: &[u8], plain: &[u8]) -> Result<Vec<u8>, SealError> {
        let cipher = self
            .keys
            .get(&self.active)
            .ok_or_else(|| SealError::Seal("the active key is missing".to_string()))?;
        let nonce =
            XNonce::try_generate().map_err(|e| SealError::Seal(format!("no random nonce: {e}")))?;
        let mut out = header(&self.active);
        out.extend_from_slice(&nonce);
        let aad = [out.as_slice(), context].concat();
        let sealed = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plain,
                    aad: &aad,
                },
            )
            .map_err(|_| SealError::Seal("the item is too large".to_string()))?;
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens an item [`Keyring::seal`] sealed at `context`.
    pub fn open(&self, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        let parsed = parse(sealed)?;
        let cipher = self
            .keys
            .get(parsed.key_id)
            .ok_or_else(|| SealError::UnknownKey {
                key_id: parsed.key_id.to_string(),
                source_name: self.source_name.clone(),
                held: self
                    .keys
                    .keys()
                    .map(|k| format!("{k:?}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        let aad = [&sealed[..parsed.header_len], context].concat();
        cipher
            .decrypt(
                &parsed.nonce,
                Payload {
                    msg: parsed.ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| SealError::Rejected {
                key_id: parsed.key_id.to_string(),
                source_name: self.source_name.clone(),
            })
    }
}

/// The id of the key that sealed `bytes` (an error for bytes that are not a sealed item).
pub fn key_id_of(bytes: &[u8]) -> Result<String, SealError> {
    parse(bytes).map(|p| p.key_id.to_string())
}

/// `MAGIC | VERSION | id length | id`.
fn header(key_id: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(MAGIC.len() + 2 + key_id.len() + NONCE_LEN);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    // Key ids are checked to be at most MAX_KEY_ID (64) bytes.
    out.push(u8::try_from(key_id.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(key_id.as_bytes());
    out
}

struct Parsed<'a> {
    key_id: &'a str,
    nonce: XNonce,
    /// Bytes up to and including the nonce (authenticated).
    header_len: usize,
    ciphertext: &'a [u8],
}

fn parse(sealed: &[u8]) -> Result<Parsed<'_>, SealError> {
    let rest = sealed
        .strip_prefix(MAGIC.as_slice())
        .ok_or(SealError::NotEncrypted)?;
    let (&version, rest) = rest.split_first().ok_or(SealError::Header("truncated"))?;
    if version != VERSION {
        return Err(SealError::Header("unknown version"));
    }
    let (&id_len, rest) = rest.split_first().ok_or(SealError::Header("truncated"))?;
    let id_len = usize::from(id_len);
    if rest.len() < id_len + NONCE_LEN + TAG_LEN {
        return Err(SealError::Header("truncated"));
    }
    let (id, rest) = rest.split_at(id_len);
    let key_id = std::str::from_utf8(id)
        .ok()
        .filter(|id| is_key_id(id))
        .ok_or(SealError::Header("invalid key id"))?;
    let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
    let nonce = XNonce::try_from(nonce).map_err(|_| SealError::Header("invalid nonce"))?;
    Ok(Parsed {
        key_id,
        nonce,
        header_len: MAGIC.len() + 2 + id_len + NONCE_LEN,
        ciphertext,
    })
}

/// 32 raw bytes, or 64 hex digits (surrounding whitespace ignored). 32 bytes that are all
/// printable are text (`openssl rand -hex 16` or `-base64 24`: 128 or 192 bits), not a key.
fn key_material(value: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    if value.len() == KEY_LEN && !value.iter().all(|b| b.is_ascii_graphic()) {
        return Some(Zeroizing::new(value.to_vec()));
    }
    let text = std::str::from_utf8(value).ok()?.trim();
    let mut out = Zeroizing::new(vec![0u8; KEY_LEN]);
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(entries: &[(&str, &[u8])]) -> BTreeMap<String, Vec<u8>> {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_vec()))
            .collect()
    }

    const K1: &[u8] = &[7u8; 32];
    const K2_HEX: &[u8] = b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n";

    fn ring(active: &str) -> Keyring {
        Keyring::from_secret_data(
            "Secret \"t/keys\"",
            &data(&[
                ("k1.key", K1),
                ("k2.key", K2_HEX),
                (ACTIVE_KEY, active.as_bytes()),
            ]),
        )
        .unwrap()
    }

    #[test]
    fn sealed_items_open_only_with_their_key_and_place() {
        let one = ring("k1");
        let sealed = one.seal(b"a/b.json", b"{\"secret\":\"hunter2\"}").unwrap();
        assert!(is_sealed(&sealed));
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(key_id_of(&sealed).unwrap(), "k1");
        assert_eq!(
            one.open(b"a/b.json", &sealed).unwrap(),
            b"{\"secret\":\"hunter2\"}"
        );
        // Rotation: a keyring whose active key is k2 still opens k1's items.
        let two = ring("k2");
        assert_eq!(
            two.open(b"a/b.json", &sealed).unwrap(),
            b"{\"secret\":\"hunter2\"}"
        );
        assert_eq!(key_id_of(&two.seal(b"x", b"y").unwrap()).unwrap(), "k2");
        // Moved elsewhere: refused.
        assert!(matches!(
            one.open(b"a/c.json", &sealed),
            Err(SealError::Rejected { .. })
        ));
        // One flipped bit anywhere: refused (a flipped key id names another key or none).
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert!(one.open(b"a/b.json", &bad).is_err(), "byte {i}");
        }
        // A key of the same id but other bytes: refused, naming the key.
        let other =
            Keyring::from_secret_data("Secret \"t/other\"", &data(&[("k1.key", &[8u8; 32])]))
                .unwrap();
        let err = other.open(b"a/b.json", &sealed).unwrap_err();
        assert!(err.to_string().contains("\"k1\""), "{err}");
        // A key it does not hold: named, with the ones it holds.
        let err = Keyring::from_secret_data("Secret \"t/k3\"", &data(&[("k3.key", &[9u8; 32])]))
            .unwrap()
            .open(b"a/b.json", &sealed)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "is encrypted with key \"k1\", which Secret \"t/k3\" does not hold (it holds \"k3\")"
        );
        // Plain bytes where sealed ones are expected, and damaged headers.
        assert_eq!(one.open(b"x", b"{}"), Err(SealError::NotEncrypted));
        assert!(matches!(
            one.open(b"x", &sealed[..10]),
            Err(SealError::Header(_))
        ));
        assert!(key_id_of(b"{}").is_err());
    }

    #[test]
    fn key_secrets_are_read_strictly() {
        let only = Keyring::from_secret_data("s", &data(&[("only.key", K1)])).unwrap();
        assert_eq!(only.active(), "only");
        assert!(!format!("{only:?}").contains("7, 7"));
        for (entries, needle) in [
            (data(&[]), "holds no key"),
            (data(&[("a.key", K1), ("b.key", K1)]), "set \"active\""),
            (
                data(&[("a.key", K1), (ACTIVE_KEY, b"b")]),
                "names no key of this Secret (it holds \"a\")",
            ),
            (data(&[("a.key", b"short")]), "does not hold a key"),
            (data(&[("bad id!.key", K1)]), "a key id has"),
            // Text of 32 characters is not 32 random bytes.
            (
                data(&[("a.key", b"0123456789abcdef0123456789abcdef")]),
                "does not hold a key",
            ),
            // A key pasted into `active` is refused without being repeated.
            (
                data(&[("a.key", K1), (ACTIVE_KEY, K2_HEX)]),
                "names no key of this Secret",
            ),
        ] {
            let err = Keyring::from_secret_data("s", &entries).unwrap_err();
            assert!(err.contains(needle), "{needle}: {err}");
            assert!(!err.contains("0123456789abcdef"), "a key in {err}");
        }
    }
}
