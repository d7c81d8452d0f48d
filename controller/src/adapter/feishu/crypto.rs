//! Feishu/Lark callback crypto: the encrypted event body, the request signature, and the
//! custom bot's sign. Written from Feishu's documents and checked against its SDKs (read,
//! not copied):
//!
//! - 将事件发送至开发者服务器 · 步骤三：接收事件 (open.feishu.cn/document/ukTMukTMukTM/
//!   uYDNxYjL2QTM24iN0EjN/event-subscription-configure-/encrypt-key-encryption-configuration-case):
//!   with an Encrypt Key set, a body is `{"encrypt": base64(iv ‖ AES-256-CBC(event))}`, the
//!   AES key is SHA-256 of the Encrypt Key, and each event push (not the URL check) carries
//!   `X-Lark-Signature` = hex(SHA-256(timestamp ‖ nonce ‖ encrypt_key ‖ raw body)), where
//!   timestamp and nonce are the `X-Lark-Request-Timestamp`/`-Nonce` headers.
//! - larksuite/oapi-sdk-go `event/event.go` (`EventDecrypt`: IV = the decoded blob's first
//!   16 bytes; `Signature`: plain SHA-256 over the concatenation, lower-case hex) and
//!   larksuite/oapi-sdk-python `lark_oapi/core/utils/decryptor.py` (the same, with PKCS#7
//!   removed after decrypting).
//! - 自定义机器人使用指南 (open.feishu.cn/document/ukTMukTMukTM/ucTM5YjL3ETO24yNxkjN): the
//!   custom bot's `sign` = base64(HMAC-SHA256(key = timestamp + "\n" + secret, message =
//!   empty)), timestamp in seconds.
//!
//! Order on network input: the signature over the raw body first, then base64, AES and
//! padding. Every length is checked before it is used, so hostile input is an error,
//! never a panic.

use aes::Aes256;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use cbc::cipher::block_padding::NoPadding;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const BLOCK: usize = 16;

type Decryptor = cbc::Decryptor<Aes256>;
type Encryptor = cbc::Encryptor<Aes256>;

/// Why a body could not be decrypted or a signature not checked. Messages never show the
/// key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("encrypt is not valid base64: {0}")]
    BadBase64(String),
    #[error("encrypt is too short or not whole AES blocks ({0} bytes after base64)")]
    BadLength(usize),
    /// A wrong Encrypt Key nearly always ends here: its garbage has no valid padding.
    #[error("encrypt decrypted to bad PKCS#7 padding: wrong encrypt_key?")]
    BadPadding,
    #[error("encrypt decrypted to text that is not UTF-8: wrong encrypt_key?")]
    NotUtf8,
    #[error("no random bytes for the IV: {0}")]
    Random(String),
}

/// The AES key of an app's Encrypt Key, and the key itself for signatures.
#[derive(Clone)]
pub struct EventCrypto {
    encrypt_key: String,
    aes_key: [u8; 32],
}

impl std::fmt::Debug for EventCrypto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventCrypto { .. }")
    }
}

impl EventCrypto {
    pub fn new(encrypt_key: &str) -> EventCrypto {
        EventCrypto {
            encrypt_key: encrypt_key.to_string(),
            aes_key: Sha256::digest(encrypt_key.as_bytes()).into(),
        }
    }

    /// The event JSON inside an `encrypt` value.
    pub fn decrypt(&self, encrypt: &str) -> Result<String, CryptoError> {
        let blob = STANDARD
            .decode(encrypt.trim())
            .map_err(|e| CryptoError::BadBase64(e.to_string()))?;
        // At least the IV and one block: PKCS#7 always adds a block's worth at most, so
        // even an empty plaintext is one block.
        if blob.len() < 2 * BLOCK || blob.len() % BLOCK != 0 {
            return Err(CryptoError::BadLength(blob.len()));
        }
        let (iv, cipher) = blob.split_at(BLOCK);
        let mut buf = cipher.to_vec();
        let decryptor = Decryptor::new_from_slices(&self.aes_key, iv)
            .map_err(|_| CryptoError::BadLength(blob.len()))?;
        let plain = decryptor
            .decrypt_padded_mut::<NoPadding>(&mut buf)
            .map_err(|_| CryptoError::BadLength(blob.len()))?;
        let unpadded = unpad(plain)?;
        String::from_utf8(unpadded.to_vec()).map_err(|_| CryptoError::NotUtf8)
    }

    /// `plain` encrypted as Feishu does, under a fresh random IV.
    pub fn encrypt(&self, plain: &str) -> Result<String, CryptoError> {
        let mut iv = [0u8; BLOCK];
        getrandom::fill(&mut iv).map_err(|e| CryptoError::Random(e.to_string()))?;
        Ok(self.encrypt_with_iv(plain, &iv))
    }

    /// `plain` encrypted under `iv`: base64(iv ‖ AES-256-CBC(PKCS#7(plain))).
    pub fn encrypt_with_iv(&self, plain: &str, iv: &[u8; BLOCK]) -> String {
        let pad = BLOCK - plain.len() % BLOCK;
        let mut buf = plain.as_bytes().to_vec();
        buf.extend(std::iter::repeat_n(pad as u8, pad));
        let length = buf.len();
        let encryptor = Encryptor::new(&self.aes_key.into(), iv.into());
        // The buffer is whole blocks, so this cannot fail; an error would leave it as it is.
        let _ = encryptor.encrypt_padded_mut::<NoPadding>(&mut buf, length);
        let mut blob = iv.to_vec();
        blob.extend_from_slice(&buf);
        STANDARD.encode(blob)
    }

    /// `X-Lark-Signature` for a request: lower-case hex SHA-256 of timestamp ‖ nonce ‖
    /// encrypt_key ‖ body.
    pub fn signature(&self, timestamp: &str, nonce: &str, body: &[u8]) -> String {
        let mut hasher = Sha256::new();
        hasher.update(timestamp.as_bytes());
        hasher.update(nonce.as_bytes());
        hasher.update(self.encrypt_key.as_bytes());
        hasher.update(body);
        hex::encode(hasher.finalize())
    }

    /// Whether `signature` is this request's, compared in constant time (hex in either
    /// case).
    pub fn verify(&self, timestamp: &str, nonce: &str, body: &[u8], signature: &str) -> bool {
        let expected = self.signature(timestamp, nonce, body);
        let given = signature.trim().to_ascii_lowercase();
        expected.as_bytes().ct_eq(given.as_bytes()).into()
    }
}

/// PKCS#7 removed, every padding byte checked (not only the last), so a wrong key is
/// told apart from a right one almost always.
fn unpad(plain: &[u8]) -> Result<&[u8], CryptoError> {
    let pad = *plain.last().ok_or(CryptoError::BadPadding)? as usize;
    if pad == 0 || pad > BLOCK || pad > plain.len() {
        return Err(CryptoError::BadPadding);
    }
    let (text, padding) = plain.split_at(plain.len() - pad);
    if padding.iter().any(|&b| b as usize != pad) {
        return Err(CryptoError::BadPadding);
    }
    Ok(text)
}

/// A custom bot's `sign` for `timestamp` (seconds): base64(HMAC-SHA256(key = timestamp +
/// "\n" + secret, message = empty)).
pub fn webhook_sign(timestamp: u64, secret: &str) -> String {
    let key = format!("{timestamp}\n{secret}");
    // HMAC takes a key of any length; the error branch exists only for fixed-size MACs.
    let mac = <Hmac<Sha256> as Mac>::new_from_slice(key.as_bytes())
        .map(|mac| mac.finalize().into_bytes().to_vec())
        .unwrap_or_default();
    STANDARD.encode(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 步骤三：接收事件's own example (also in Feishu's Java and Python samples).
    const DOC_KEY: &str = "test key";
    const DOC_ENCRYPT: &str = "P37w+VZImNgPEO1RBhJ6RtKl7n6zymIbEG1pReEzghk=";

    /// oapi-sdk-go `event/dispatcher/dispatcher_test.go` `TestDecryptEvent`.
    const SDK_KEY: &str = "1212121212";
    const SDK_ENCRYPT: &str = "bZ3L7yh6m3Fkuffl4g+3uGjIHnhOm5fVZbKVuyT8t7tcd5ABMYm8l28/X900ZL3knZ7n+sCREu/H2WnIzft0amC7+xWqNH8o25IU63N4BnZWfHh+4hyG76QPd19vkw2bPJCx9aqxK8Nz+xqFNbk0RdgyWhmgd30jSxHtcQXAllkI7FMpGpOCteJad3bLXPDBQIV/xkCtKICCS7Z63gakpxZCLaRZ3qCXP1fapHh+LBIupxenrU6ysc7I3nHmjmKie41IiWwS5puG4zQHhVbq6KWLcgWm/3NBZOPQy53ucMu75SXA55I7jarVLZXWUcqBGrcgE3vouWbtwgZuzmoTQl0GSh5VYSVvpW992BuGxUWj0XjPYdICJm6Cr7xouNXwMcdb7N8caVdkdSZeEnswG19qSyDoQhklwzNGW0yiaayulBqJNjfge/G5V3401c2XaIuAeEIo+QQ4RSNpRGfnHkbu/j55FGQAGWjpuBNaIwZbaUoVP3NkGP+vM5rpEDe3sL2GN+Xsd+g9yBs7FqdMV8mXTGgLjCqjrPrke5/km76Q3Pe6KPs2YexMRG4MkSx3xUTzZnNn7zIzShPcjeSwBd2pxk6ht5N+fzueZdxl6Oo=";
    /// The request body of the same file's `mockEventReq`, signed there with timestamp
    /// "timestamp", nonce "nonce" and key "1212121212".
    const SDK_BODY: &str = r#"{"schema":"2.0","header":{"event_id":"f7984f25108f8137722bb63cee927e66","event_type":"contact.user.created_v3","app_id":"cli_xxxxxxxx","tenant_key":"xxxxxxx","create_time":"1603977298000000","token":"v"},"event":{"object":{"open_id":"ou_7dab8a3d3cdcc9da365777c7ad535d62","union_id":"on_576833b917gda3d939b9a3c2d53e72c8","user_id":"e33ggbyz","name":"张三","employee_no":"employee_no"}},"challenge":"1212","type":"url_verification"}"#;
    /// That body's signature, computed apart from this code with Python's `hashlib`.
    const SDK_SIGNATURE: &str = "4dca085198cb3216defc5b65b0668c1328b038a22dbadf2bc6c4fdc3d32bbc45";

    #[test]
    fn the_documented_and_the_sdks_ciphertexts_decrypt() {
        assert_eq!(
            EventCrypto::new(DOC_KEY).decrypt(DOC_ENCRYPT),
            Ok("hello world".to_string())
        );
        // The SDK's plaintext is the body its signature test uses.
        assert_eq!(
            EventCrypto::new(SDK_KEY).decrypt(SDK_ENCRYPT).as_deref(),
            Ok(SDK_BODY)
        );
    }

    #[test]
    fn wrong_keys_and_broken_input_are_errors_not_panics() {
        assert_eq!(
            EventCrypto::new("other key").decrypt(DOC_ENCRYPT),
            Err(CryptoError::BadPadding)
        );
        let crypto = EventCrypto::new(DOC_KEY);
        assert!(matches!(
            crypto.decrypt("not base64!"),
            Err(CryptoError::BadBase64(_))
        ));
        assert_eq!(crypto.decrypt("AAAA"), Err(CryptoError::BadLength(3)));
        // An IV alone, and an IV with a partial block.
        assert_eq!(
            crypto.decrypt(&STANDARD.encode([0u8; 16])),
            Err(CryptoError::BadLength(16))
        );
        assert_eq!(
            crypto.decrypt(&STANDARD.encode([0u8; 40])),
            Err(CryptoError::BadLength(40))
        );
        assert_eq!(crypto.decrypt(""), Err(CryptoError::BadLength(0)));
        // Padding is checked byte by byte: a last byte of 2 after a byte that is not 2.
        let iv = [7u8; 16];
        let mut buf = b"fourteen bytes\x01\x02".to_vec();
        let len = buf.len();
        let _ = Encryptor::new(&crypto.aes_key.into(), &iv.into())
            .encrypt_padded_mut::<NoPadding>(&mut buf, len);
        let mut blob = iv.to_vec();
        blob.extend_from_slice(&buf);
        assert_eq!(
            crypto.decrypt(&STANDARD.encode(&blob)),
            Err(CryptoError::BadPadding)
        );
    }

    #[test]
    fn encrypting_round_trips_and_reproduces_the_documented_blob() {
        let crypto = EventCrypto::new(DOC_KEY);
        // The documented blob's own IV gives back the documented blob.
        let blob = STANDARD.decode(DOC_ENCRYPT).expect("base64");
        let iv: [u8; 16] = blob[..16].try_into().expect("iv");
        assert_eq!(crypto.encrypt_with_iv("hello world", &iv), DOC_ENCRYPT);
        for plain in ["", "x", "exactly sixteen!", "你好，飞书 🚀", SDK_BODY] {
            let sealed = crypto.encrypt(plain).expect("encrypt");
            assert_eq!(crypto.decrypt(&sealed).as_deref(), Ok(plain));
        }
        // Two encryptions of one text differ: the IV is fresh each time.
        assert_ne!(
            crypto.encrypt("same").expect("encrypt"),
            crypto.encrypt("same").expect("encrypt")
        );
    }

    #[test]
    fn signatures_match_the_sdks_request_and_nothing_else() {
        let crypto = EventCrypto::new(SDK_KEY);
        let body = SDK_BODY.as_bytes();
        assert_eq!(crypto.signature("timestamp", "nonce", body), SDK_SIGNATURE);
        assert!(crypto.verify("timestamp", "nonce", body, SDK_SIGNATURE));
        assert!(crypto.verify(
            "timestamp",
            "nonce",
            body,
            &SDK_SIGNATURE.to_ascii_uppercase()
        ));
        // Any part changed: refused.
        assert!(!crypto.verify("timestamp2", "nonce", body, SDK_SIGNATURE));
        assert!(!crypto.verify("timestamp", "nonce2", body, SDK_SIGNATURE));
        assert!(!crypto.verify("timestamp", "nonce", b"{}", SDK_SIGNATURE));
        assert!(!EventCrypto::new("other").verify("timestamp", "nonce", body, SDK_SIGNATURE));
        assert!(!crypto.verify("timestamp", "nonce", body, ""));
        assert!(!crypto.verify("timestamp", "nonce", body, &SDK_SIGNATURE[..63]));
        assert!(!format!("{crypto:?}").contains(SDK_KEY));
    }

    #[test]
    fn webhook_signs_match_values_computed_apart() {
        // Computed with Python's hmac/hashlib/base64 as the custom-bot guide's Python
        // sample does.
        assert_eq!(
            webhook_sign(1599360473, "demo-secret"),
            "3/MaVZ8JLIy4TUG+7KSFJqvUkTKd+HWY8g+56DZWq8s="
        );
        assert_eq!(
            webhook_sign(1700000000, "你的密钥"),
            "s+XJ35B3XcAQtTedTAIHMjwzvWG+tguVJlNJPN+Cz8E="
        );
        assert_ne!(
            webhook_sign(1700000001, "你的密钥"),
            webhook_sign(1700000000, "你的密钥")
        );
    }

    /// No input panics: any body is decrypted or refused, any signature checked; what is
    /// encrypted decrypts to itself and what is signed verifies.
    mod props {
        use proptest::collection::vec;
        use proptest::prelude::*;

        use super::*;
        use crate::adapter::testing::props::config;

        proptest! {
            #![proptest_config(config())]

            #[test]
            fn any_ciphertext_is_refused_or_read(
                text in any::<String>(),
                bytes in vec(any::<u8>(), 0..300),
                key in any::<String>(),
            ) {
                let crypto = EventCrypto::new(&key);
                let _ = crypto.decrypt(&text);
                let _ = crypto.decrypt(&STANDARD.encode(&bytes));
            }

            #[test]
            fn what_is_encrypted_decrypts_to_itself(plain in any::<String>(), key in any::<String>()) {
                let crypto = EventCrypto::new(&key);
                let sealed = crypto.encrypt(&plain).unwrap();
                prop_assert_eq!(crypto.decrypt(&sealed), Ok(plain));
            }

            #[test]
            fn any_signature_is_checked_and_a_real_one_verifies(
                timestamp in any::<String>(),
                nonce in any::<String>(),
                body in vec(any::<u8>(), 0..200),
                signature in any::<String>(),
                secret in any::<String>(),
                seconds in any::<u64>(),
            ) {
                let crypto = EventCrypto::new(&secret);
                let _ = crypto.verify(&timestamp, &nonce, &body, &signature);
                let real = crypto.signature(&timestamp, &nonce, &body);
                prop_assert!(crypto.verify(&timestamp, &nonce, &body, &real));
                let _ = webhook_sign(seconds, &secret);
            }
        }
    }
}
