//! QQ's webhook signatures: one Ed25519 key pair derived from the bot secret signs both
//! ways. QQ signs every callback with it, and the bot signs its answer to the callback
//! URL's validation (op 13) with it.
//!
//! Sources: bot-docs `docs/develop/api-v2/dev-prepare/interface-framework/sign.md` (seed =
//! the secret repeated to at least 32 bytes and cut to 32; the signed message is
//! `X-Signature-Timestamp` followed by the raw body; `X-Signature-Ed25519` is the hex of a
//! 64-byte signature whose last byte has its top three bits clear) and `event-emit.md`
//! (op 13 answers `{"plain_token", "signature": hex(sign(event_ts + plain_token))}`);
//! botgo `interaction/signature/interaction.go` does the same.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

/// The header carrying QQ's signature (sign.md).
pub const SIGNATURE_HEADER: &str = "X-Signature-Ed25519";
/// The header carrying the timestamp the signature covers (sign.md).
pub const TIMESTAMP_HEADER: &str = "X-Signature-Timestamp";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error("the bot secret is empty")]
    EmptySecret,
    #[error("no {SIGNATURE_HEADER} header")]
    NoSignature,
    #[error("no {TIMESTAMP_HEADER} header")]
    NoTimestamp,
    #[error("{SIGNATURE_HEADER} is not 64 bytes of hex")]
    Malformed,
    #[error("{SIGNATURE_HEADER} does not match the body and timestamp")]
    Mismatch,
}

/// The bot's key pair, from its secret.
#[derive(Clone)]
pub struct BotKey {
    signing: SigningKey,
    verifying: VerifyingKey,
}

impl std::fmt::Debug for BotKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The public half only: the private one is the secret.
        f.debug_struct("BotKey")
            .field("public", &hex::encode(self.verifying.as_bytes()))
            .finish_non_exhaustive()
    }
}

impl BotKey {
    /// sign.md: the secret's bytes repeated until there are at least 32, the first 32
    /// taken as the Ed25519 seed (Go's `ed25519.GenerateKey` reads exactly the seed from
    /// the reader it is given).
    pub fn from_secret(secret: &str) -> Result<BotKey, SignError> {
        if secret.is_empty() {
            return Err(SignError::EmptySecret);
        }
        let mut seed = [0u8; 32];
        for (slot, byte) in seed.iter_mut().zip(secret.bytes().cycle()) {
            *slot = byte;
        }
        let signing = SigningKey::from_bytes(&seed);
        let verifying = signing.verifying_key();
        Ok(BotKey { signing, verifying })
    }

    pub fn public_key(&self) -> [u8; 32] {
        self.verifying.to_bytes()
    }

    /// event-emit.md, 回调地址验证: the hex signature of `event_ts` followed by
    /// `plain_token`.
    pub fn sign_validation(&self, event_ts: &str, plain_token: &str) -> String {
        let mut message = Vec::with_capacity(event_ts.len() + plain_token.len());
        message.extend_from_slice(event_ts.as_bytes());
        message.extend_from_slice(plain_token.as_bytes());
        hex::encode(self.signing.sign(&message).to_bytes())
    }

    /// What QQ would put in `X-Signature-Ed25519` for `body` sent at `timestamp`: for
    /// tests and stand-ins.
    pub fn sign_request(&self, timestamp: &str, body: &[u8]) -> String {
        hex::encode(
            self.signing
                .sign(&signed_message(timestamp, body))
                .to_bytes(),
        )
    }

    /// sign.md, 验证签名: the signature must be 64 bytes of hex over `timestamp` + `body`.
    /// Strict verification refuses a non-canonical signature (sign.md's own check that
    /// the last byte's top three bits are clear is part of that) and weak keys.
    pub fn verify(
        &self,
        timestamp: Option<&str>,
        body: &[u8],
        signature: Option<&str>,
    ) -> Result<(), SignError> {
        let signature = signature
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or(SignError::NoSignature)?;
        let timestamp = timestamp
            .filter(|t| !t.is_empty())
            .ok_or(SignError::NoTimestamp)?;
        let bytes: [u8; 64] = hex::decode(signature)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(SignError::Malformed)?;
        if bytes[63] & 0xe0 != 0 {
            return Err(SignError::Malformed);
        }
        let signature = Signature::from_bytes(&bytes);
        self.verifying
            .verify_strict(&signed_message(timestamp, body), &signature)
            .map_err(|_| SignError::Mismatch)
    }
}

fn signed_message(timestamp: &str, body: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(timestamp.len() + body.len());
    message.extend_from_slice(timestamp.as_bytes());
    message.extend_from_slice(body);
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    /// sign.md's DEMO: the secret, and the public key its 32-byte seed gives.
    const DEMO_SECRET: &str = "naOC0ocQE3shWLAfffVLB1rhYPG7";
    const DEMO_PUBLIC: [u8; 32] = [
        215, 195, 98, 254, 120, 174, 248, 31, 242, 50, 135, 180, 147, 98, 139, 93, 176, 42, 60, 79,
        227, 11, 33, 94, 77, 25, 96, 155, 93, 118, 103, 58,
    ];
    /// sign.md's DEMO request: body, timestamp and QQ's signature over them. The page
    /// prints the body on one line (`{ "op": 0,"d": {}, "t": "GATEWAY_EVENT_NAME"}`), but
    /// the signature is over it indented by two spaces, a line per field: the bytes of the
    /// body as sent are what count, never a reformatted copy.
    const DEMO_BODY: &str = "{\n  \"op\": 0,\n  \"d\": {},\n  \"t\": \"GATEWAY_EVENT_NAME\"\n}";
    const DEMO_TS: &str = "1725442341";
    const DEMO_SIG: &str = "865ad13a61752ca65e26bde6676459cd36cf1be609375b37bd62af366e1dc25a8dc789ba7f14e017ada3d554c671a911bfdf075ba54835b23391d509579ed002";

    /// botgo `interaction/signature/interaction_test.go`: a C2C message's body as QQ
    /// signed it.
    const BOTGO_SECRET: &str = "123456abcdef";
    const BOTGO_TS: &str = "1728981195";
    const BOTGO_BODY: &str = r#"{"id":"ROBOT1.0_veoihSEXDc8Q.g-6eLpNIa11bH8MisOjn-m-LKxCPntMk6exUXgcWCGpVO7L2QKTNZzjZzFFDSbiOFcqAPWyVA!!","content":"哦一下","timestamp":"2024-10-15T16:33:15+08:00","author":{"id":"675860273","user_openid":"675860273"}}"#;
    const BOTGO_SIG: &str = "e949b5b94ef4103df903fb031d1d16e358db3db83e79e117edd404c8508be3ce8a76d7bad1bed353194c126a1a5915b4ad8b5288c1191cc53a12acffccd82004";

    #[test]
    fn the_seed_is_the_secret_repeated_to_32_bytes() {
        let key = BotKey::from_secret(DEMO_SECRET).expect("key");
        assert_eq!(key.public_key(), DEMO_PUBLIC);
        // sign.md prints the seed: the secret and its first four bytes again.
        let seeded = BotKey::from_secret("naOC0ocQE3shWLAfffVLB1rhYPG7naOC").expect("key");
        assert_eq!(seeded.public_key(), DEMO_PUBLIC);
        // A secret longer than 32 bytes is cut.
        let long = BotKey::from_secret("naOC0ocQE3shWLAfffVLB1rhYPG7naOCxyz").expect("key");
        assert_eq!(long.public_key(), DEMO_PUBLIC);
        assert_eq!(
            BotKey::from_secret("").map(|_| ()),
            Err(SignError::EmptySecret)
        );
        assert!(!format!("{:?}", key).contains(DEMO_SECRET));
    }

    #[test]
    fn op_13_is_answered_with_event_emits_documented_signature() {
        // event-emit.md: appid 11111111, secret DG5g3B4j9X2KOErG, and the answer QQ expects.
        let key = BotKey::from_secret("DG5g3B4j9X2KOErG").expect("key");
        assert_eq!(
            key.sign_validation("1725442341", "Arq0D5A61EgUu4OxUvOp"),
            "87befc99c42c651b3aac0278e71ada338433ae26fcb24307bdc5ad38c1adc2d01bcfcadc0842edac85e85205028a1132afe09280305f13aa6909ffc2d652c706"
        );
    }

    #[test]
    fn qqs_published_signatures_verify() {
        let demo = BotKey::from_secret(DEMO_SECRET).expect("key");
        assert_eq!(
            demo.verify(Some(DEMO_TS), DEMO_BODY.as_bytes(), Some(DEMO_SIG)),
            Ok(())
        );
        assert_eq!(demo.sign_request(DEMO_TS, DEMO_BODY.as_bytes()), DEMO_SIG);
        // The same JSON on one line, as the page prints it, is another body.
        assert_eq!(
            demo.verify(
                Some(DEMO_TS),
                br#"{ "op": 0,"d": {}, "t": "GATEWAY_EVENT_NAME"}"#,
                Some(DEMO_SIG)
            ),
            Err(SignError::Mismatch)
        );
        let botgo = BotKey::from_secret(BOTGO_SECRET).expect("key");
        assert_eq!(
            botgo.verify(Some(BOTGO_TS), BOTGO_BODY.as_bytes(), Some(BOTGO_SIG)),
            Ok(())
        );
        // Upper-case hex is still hex.
        assert_eq!(
            botgo.verify(
                Some(BOTGO_TS),
                BOTGO_BODY.as_bytes(),
                Some(&BOTGO_SIG.to_uppercase())
            ),
            Ok(())
        );
    }

    #[test]
    fn tampering_another_key_or_a_malformed_header_is_refused() {
        let key = BotKey::from_secret(BOTGO_SECRET).expect("key");
        let body = BOTGO_BODY.as_bytes();
        let tampered = BOTGO_BODY.replace("哦一下", "哦两下");
        assert_eq!(
            key.verify(Some(BOTGO_TS), tampered.as_bytes(), Some(BOTGO_SIG)),
            Err(SignError::Mismatch)
        );
        assert_eq!(
            key.verify(Some("1728981196"), body, Some(BOTGO_SIG)),
            Err(SignError::Mismatch)
        );
        let other = BotKey::from_secret(DEMO_SECRET).expect("key");
        assert_eq!(
            other.verify(Some(BOTGO_TS), body, Some(BOTGO_SIG)),
            Err(SignError::Mismatch)
        );
        // One bit flipped in R.
        let mut flipped = hex::decode(BOTGO_SIG).expect("hex");
        flipped[0] ^= 1;
        assert_eq!(
            key.verify(Some(BOTGO_TS), body, Some(&hex::encode(&flipped))),
            Err(SignError::Mismatch)
        );
        // S with its top bits set is not canonical.
        let mut high = hex::decode(BOTGO_SIG).expect("hex");
        high[63] |= 0xe0;
        assert_eq!(
            key.verify(Some(BOTGO_TS), body, Some(&hex::encode(&high))),
            Err(SignError::Malformed)
        );
        assert_eq!(
            key.verify(Some(BOTGO_TS), body, Some(&BOTGO_SIG[..126])),
            Err(SignError::Malformed)
        );
        assert_eq!(
            key.verify(Some(BOTGO_TS), body, Some(&BOTGO_SIG.replace('e', "g"))),
            Err(SignError::Malformed)
        );
        assert_eq!(
            key.verify(Some(BOTGO_TS), body, None),
            Err(SignError::NoSignature)
        );
        assert_eq!(
            key.verify(Some(BOTGO_TS), body, Some(" ")),
            Err(SignError::NoSignature)
        );
        assert_eq!(
            key.verify(None, body, Some(BOTGO_SIG)),
            Err(SignError::NoTimestamp)
        );
        assert_eq!(
            key.verify(Some(""), body, Some(BOTGO_SIG)),
            Err(SignError::NoTimestamp)
        );
    }

    /// No input panics: any headers and body are checked or refused (also a signature of
    /// the right length whose bytes are anything); what the key signs, it verifies.
    mod props {
        use proptest::collection::vec;
        use proptest::prelude::*;

        use super::*;
        use crate::adapter::testing::props::config;

        proptest! {
            #![proptest_config(config())]

            #[test]
            fn any_request_is_refused_or_taken(
                secret in any::<String>(),
                timestamp in proptest::option::of(any::<String>()),
                body in vec(any::<u8>(), 0..300),
                signature in proptest::option::of(any::<String>()),
                raw in vec(any::<u8>(), 64..65),
            ) {
                let Ok(key) = BotKey::from_secret(&secret) else {
                    prop_assert!(secret.is_empty());
                    return Ok(());
                };
                let _ = key.verify(timestamp.as_deref(), &body, signature.as_deref());
                let _ = key.verify(timestamp.as_deref(), &body, Some(&hex::encode(&raw)));
                let _ = key.sign_validation(timestamp.as_deref().unwrap_or_default(), &secret);
            }

            #[test]
            fn what_the_key_signs_it_verifies(
                secret in any::<String>().prop_filter("a secret", |s| !s.is_empty()),
                timestamp in any::<String>().prop_filter("a timestamp", |t| !t.is_empty()),
                body in vec(any::<u8>(), 0..300),
            ) {
                let key = BotKey::from_secret(&secret).unwrap();
                let signature = key.sign_request(&timestamp, &body);
                prop_assert_eq!(key.verify(Some(&timestamp), &body, Some(&signature)), Ok(()));
                let mut tampered = body.clone();
                tampered.push(b' ');
                prop_assert!(key.verify(Some(&timestamp), &tampered, Some(&signature)).is_err());
            }
        }
    }
}
