//! WeCom's callback encryption ("WXBizMsgCrypt"): what a self-built app's XML callbacks
//! and an AI bot's (智能机器人) JSON callbacks carry, and what passive replies to them
//! must carry. Written from WeCom's documents, checked against its official SDK samples:
//!
//! - 加解密方案说明 (<https://developer.work.weixin.qq.com/document/path/91144>, same text
//!   as path/90968): the key, the signature, the plaintext layout, PKCS#7 to 32 bytes.
//! - 智能机器人 · 回调和回复的加解密方案 (path/101033): the AI bot uses the same scheme
//!   with `receiveid` = "" and a JSON envelope instead of XML.
//! - The official callback SDKs (github.com/sbzhu/weworkapi_golang `wxbizmsgcrypt.go`,
//!   github.com/sbzhu/weworkapi_python `callback_python3/WXBizMsgCrypt.py` and
//!   `callback_json_python3/WXBizJsonMsgCrypt.py`), read, not copied.
//!
//! Order of checks on input from the network: the signature first (over the ciphertext
//! as received), and only then base64, AES, padding and the plaintext's fields. Every
//! length is checked before it is used to slice, so hostile input is an error, never a
//! panic.
//!
//! Query parameters (`msg_signature`, `timestamp`, `nonce`, `echostr`) must be
//! URL-decoded by the caller before they come here (documents say so: "需要做Urldecode
//! 处理"); an `echostr` whose `+` became a space fails the signature check.

use std::borrow::Cow;

use aes::Aes256;
use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use cbc::cipher::block_padding::NoPadding;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use quick_xml::events::Event;
use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

/// Characters of an EncodingAESKey (91144: "长度固定为43个字符").
pub const ENCODING_AES_KEY_LEN: usize = 43;
/// Bytes of the AES key it decodes to (91144: "AESKey … 长度为32字节").
const AES_KEY_LEN: usize = 32;
/// The IV is the key's first 16 bytes (91144: "IV初始向量大小为16字节，取AESKey前16字节").
const IV_LEN: usize = 16;
/// WeCom pads to a multiple of 32, not AES's 16 (91144: "PKCS#7填充至32字节的倍数"; the
/// SDKs' `PKCS7Encoder.block_size = 32`).
const PAD_BLOCK: usize = 32;
/// Plaintext = random(16B) ‖ msg_len(4B, network order) ‖ msg ‖ receiveid (91144).
const RANDOM_LEN: usize = 16;
const LEN_FIELD: usize = 4;
const HEADER_LEN: usize = RANDOM_LEN + LEN_FIELD;

/// Standard base64 as the SDKs read it: `=` padding required (Go's `StdEncoding`), but
/// non-zero bits after the last byte tolerated. The documented example key itself
/// (`…B2C`) ends in such bits, and neither Go's `StdEncoding` nor Python's `b64decode`
/// rejects them; a strict decoder would refuse keys WeCom hands out.
const B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);

type Decryptor = cbc::Decryptor<Aes256>;
type Encryptor = cbc::Encryptor<Aes256>;

/// Why a callback could not be verified or decrypted, or a reply not encrypted. Each
/// message says which value was wrong and how.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("EncodingAESKey: {0}")]
    BadKey(String),
    /// The request is not from WeCom, or the configured token differs from WeCom's.
    #[error(
        "msg_signature does not match sha1 of the sorted token, timestamp, nonce and {0}: not from WeCom, or the token is wrong"
    )]
    BadSignature(&'static str),
    #[error("{0} is not valid base64: {1}")]
    BadBase64(&'static str, String),
    #[error("{0} decrypted to bad PKCS#7 padding (WeCom pads to 32 bytes): {1}")]
    BadPadding(&'static str, String),
    #[error("{0} is too short: {1}")]
    TooShort(&'static str, String),
    /// The plaintext names another corp (app callbacks) than the one configured: the
    /// callback was meant for someone else, or `receive_id` is misconfigured.
    #[error("decrypted receive id is {got:?}, expected {expected:?}")]
    WrongReceiver { expected: String, got: String },
    #[error("the message decrypted from {0} is not UTF-8")]
    NotUtf8(&'static str),
    #[error("envelope: {0}")]
    BadEnvelope(String),
    #[error("no random bytes from the operating system: {0}")]
    Random(String),
}

/// One app's or AI bot's callback secrets, as set in WeCom's admin console.
#[derive(Clone)]
pub struct WeComCrypto {
    token: String,
    key: [u8; AES_KEY_LEN],
    receive_id: String,
}

impl std::fmt::Debug for WeComCrypto {
    /// The token and key stay out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WeComCrypto")
            .field("receive_id", &self.receive_id)
            .finish_non_exhaustive()
    }
}

/// A reply sealed for WeCom: the ciphertext, its signature, and the timestamp and nonce
/// the signature covers (kept together so an envelope cannot mix them up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encrypted {
    pub encrypt: String,
    pub signature: String,
    pub timestamp: String,
    pub nonce: String,
}

/// What the plaintext holds once padding is gone (91144 "密文解密得到msg的过程").
struct Opened<'a> {
    #[cfg_attr(not(test), allow(dead_code))]
    random: &'a [u8],
    msg: &'a [u8],
    receive_id: &'a [u8],
}

impl WeComCrypto {
    /// `receive_id` is the corp id for an app's callbacks; "" for an AI bot, whose
    /// plaintext's receive id is then not checked (101033: "receiveid直接传空字符串即可";
    /// the Go SDK skips the comparison when its receiver id is empty).
    pub fn new(
        token: impl Into<String>,
        encoding_aes_key: &str,
        receive_id: impl Into<String>,
    ) -> Result<Self, CryptoError> {
        let chars = encoding_aes_key.chars().count();
        if chars != ENCODING_AES_KEY_LEN {
            return Err(CryptoError::BadKey(format!(
                "must be {ENCODING_AES_KEY_LEN} characters, got {chars}"
            )));
        }
        // 91144: AESKey = Base64_Decode(EncodingAESKey + "=").
        let decoded = B64
            .decode(format!("{encoding_aes_key}="))
            .map_err(|e| CryptoError::BadKey(format!("not base64: {e}")))?;
        let key: [u8; AES_KEY_LEN] = decoded.as_slice().try_into().map_err(|_| {
            CryptoError::BadKey(format!(
                "decodes to {} bytes, AES-256 needs {AES_KEY_LEN}",
                decoded.len()
            ))
        })?;
        Ok(WeComCrypto {
            token: token.into(),
            key,
            receive_id: receive_id.into(),
        })
    }

    /// URL verification (the GET with `echostr`): checks the signature over `echostr`,
    /// then returns the decrypted plaintext, which is what the response body must be.
    pub fn verify_url(
        &self,
        msg_signature: &str,
        timestamp: &str,
        nonce: &str,
        echostr: &str,
    ) -> Result<String, CryptoError> {
        self.verify_and_decrypt("echostr", msg_signature, timestamp, nonce, echostr)
    }

    /// A callback (the POST): checks the signature over `encrypt` (the `<Encrypt>` of an
    /// XML body, the `encrypt` of a JSON one; see [`extract_xml_encrypt`] and
    /// [`extract_json_encrypt`]), then returns the decrypted message.
    pub fn decrypt(
        &self,
        msg_signature: &str,
        timestamp: &str,
        nonce: &str,
        encrypt: &str,
    ) -> Result<String, CryptoError> {
        self.verify_and_decrypt("encrypt", msg_signature, timestamp, nonce, encrypt)
    }

    /// Seals a passive reply: fresh random prefix, the configured receive id, signed with
    /// `timestamp` and `nonce` (which may be the callback's own, as the SDK samples do).
    pub fn encrypt(
        &self,
        reply: &str,
        timestamp: &str,
        nonce: &str,
    ) -> Result<Encrypted, CryptoError> {
        let mut random = [0u8; RANDOM_LEN];
        getrandom::fill(&mut random).map_err(|e| CryptoError::Random(e.to_string()))?;
        self.encrypt_with(random, reply, timestamp, nonce)
    }

    /// [`encrypt`](Self::encrypt) with the random prefix given, so tests can reproduce
    /// WeCom's own ciphertexts byte for byte.
    fn encrypt_with(
        &self,
        random: [u8; RANDOM_LEN],
        reply: &str,
        timestamp: &str,
        nonce: &str,
    ) -> Result<Encrypted, CryptoError> {
        check_envelope_value("timestamp", timestamp)?;
        check_envelope_value("nonce", nonce)?;
        let msg_len = u32::try_from(reply.len()).map_err(|_| {
            CryptoError::BadEnvelope(format!(
                "reply is {} bytes; its length must fit the 4-byte msg_len",
                reply.len()
            ))
        })?;
        let unpadded = HEADER_LEN + reply.len() + self.receive_id.len();
        // PKCS#7 to 32: a full block of 32s when the length is already a multiple.
        let pad = PAD_BLOCK - unpadded % PAD_BLOCK;
        let mut plain = Vec::with_capacity(unpadded + pad);
        plain.extend_from_slice(&random);
        plain.extend_from_slice(&msg_len.to_be_bytes());
        plain.extend_from_slice(reply.as_bytes());
        plain.extend_from_slice(self.receive_id.as_bytes());
        // `pad` is 1..=32, so the cast is exact.
        plain.resize(unpadded + pad, pad as u8);
        let len = plain.len();
        let (key, iv) = self.key_iv();
        let sealed = Encryptor::new(&key.into(), &iv.into())
            .encrypt_padded_mut::<NoPadding>(&mut plain, len)
            .map_err(|_| CryptoError::BadPadding("reply", "not whole AES blocks".into()))?;
        let encrypt = B64.encode(sealed);
        let signature = self.signature(timestamp, nonce, &encrypt);
        Ok(Encrypted {
            encrypt,
            signature,
            timestamp: timestamp.to_string(),
            nonce: nonce.to_string(),
        })
    }

    /// 91144 "消息体签名校验": sha1 over token, timestamp, nonce and the ciphertext,
    /// sorted as byte strings and joined with nothing between, in lowercase hex.
    pub fn signature(&self, timestamp: &str, nonce: &str, encrypt: &str) -> String {
        let mut parts = [self.token.as_str(), timestamp, nonce, encrypt];
        // str's Ord is bytewise, as are Go's sort.Strings and Python's sort on ASCII.
        parts.sort_unstable();
        let mut sha = Sha1::new();
        for part in parts {
            sha.update(part.as_bytes());
        }
        hex::encode(sha.finalize())
    }

    /// Checks `msg_signature` over `ciphertext` (named `what`: `encrypt` or `echostr`)
    /// and nothing else, so a route can check the timestamp and replays before it
    /// decrypts anything; [`decrypt`](Self::decrypt) and [`verify_url`](Self::verify_url)
    /// check it again themselves.
    pub fn verify(
        &self,
        what: &'static str,
        msg_signature: &str,
        timestamp: &str,
        nonce: &str,
        ciphertext: &str,
    ) -> Result<(), CryptoError> {
        let expected = self.signature(timestamp, nonce, ciphertext);
        // Constant time, so timing does not tell a forger how much of a guess was right.
        if !bool::from(expected.as_bytes().ct_eq(msg_signature.as_bytes())) {
            return Err(CryptoError::BadSignature(what));
        }
        Ok(())
    }

    fn verify_and_decrypt(
        &self,
        what: &'static str,
        msg_signature: &str,
        timestamp: &str,
        nonce: &str,
        ciphertext: &str,
    ) -> Result<String, CryptoError> {
        self.verify(what, msg_signature, timestamp, nonce, ciphertext)?;
        let mut plain = self.decrypt_blocks(what, ciphertext)?;
        let opened = open(what, &mut plain)?;
        // An empty configured id is the AI bot's (101033), whose plaintext is not
        // checked; otherwise the trailing id must be ours (91144 "验证解密后的receiveid").
        if !self.receive_id.is_empty() && opened.receive_id != self.receive_id.as_bytes() {
            return Err(CryptoError::WrongReceiver {
                expected: self.receive_id.clone(),
                got: String::from_utf8_lossy(opened.receive_id).into_owned(),
            });
        }
        String::from_utf8(opened.msg.to_vec()).map_err(|_| CryptoError::NotUtf8(what))
    }

    /// base64 then AES-256-CBC without padding removal (ours is the 32-byte kind).
    fn decrypt_blocks(&self, what: &'static str, ciphertext: &str) -> Result<Vec<u8>, CryptoError> {
        let mut data = B64
            .decode(ciphertext)
            .map_err(|e| CryptoError::BadBase64(what, e.to_string()))?;
        if data.is_empty() {
            return Err(CryptoError::TooShort(what, "no ciphertext".into()));
        }
        // Padding to 32 makes every genuine ciphertext whole 32-byte units.
        if data.len() % PAD_BLOCK != 0 {
            return Err(CryptoError::BadPadding(
                what,
                format!(
                    "ciphertext is {} bytes, not a multiple of {PAD_BLOCK}",
                    data.len()
                ),
            ));
        }
        let (key, iv) = self.key_iv();
        let len = Decryptor::new(&key.into(), &iv.into())
            .decrypt_padded_mut::<NoPadding>(&mut data)
            .map_err(|_| CryptoError::BadPadding(what, "not whole AES blocks".into()))?
            .len();
        data.truncate(len);
        Ok(data)
    }

    fn key_iv(&self) -> ([u8; AES_KEY_LEN], [u8; IV_LEN]) {
        let mut iv = [0u8; IV_LEN];
        iv.copy_from_slice(&self.key[..IV_LEN]);
        (self.key, iv)
    }
}

/// Strips the 32-byte PKCS#7 padding and splits random ‖ msg_len ‖ msg ‖ receive id.
/// Stricter than the SDKs (Python ignores a pad byte outside 1..=32, Go checks none):
/// anything but exact PKCS#7 is refused, since a genuine WeCom message never has it.
fn open<'a>(what: &'static str, plain: &'a mut Vec<u8>) -> Result<Opened<'a>, CryptoError> {
    let Some(&pad) = plain.last() else {
        return Err(CryptoError::TooShort(what, "nothing decrypted".into()));
    };
    let pad_len = usize::from(pad);
    if pad_len == 0 || pad_len > PAD_BLOCK || pad_len > plain.len() {
        return Err(CryptoError::BadPadding(
            what,
            format!("last byte is {pad}, must be 1..={PAD_BLOCK}"),
        ));
    }
    let body_len = plain.len() - pad_len;
    if plain[body_len..].iter().any(|&b| b != pad) {
        return Err(CryptoError::BadPadding(
            what,
            format!("the last {pad_len} bytes are not all {pad}"),
        ));
    }
    plain.truncate(body_len);
    let plain: &'a [u8] = plain;
    if plain.len() < HEADER_LEN {
        return Err(CryptoError::TooShort(
            what,
            format!(
                "{} bytes after padding, the header alone is {HEADER_LEN} (16 random + 4 length)",
                plain.len()
            ),
        ));
    }
    let (random, rest) = plain.split_at(RANDOM_LEN);
    let (len_field, rest) = rest.split_at(LEN_FIELD);
    let mut be = [0u8; LEN_FIELD];
    be.copy_from_slice(len_field);
    let msg_len = u32::from_be_bytes(be);
    let msg_len = usize::try_from(msg_len)
        .ok()
        .filter(|&n| n <= rest.len())
        .ok_or_else(|| {
            CryptoError::TooShort(
                what,
                format!("msg_len says {msg_len} bytes, only {} follow", rest.len()),
            )
        })?;
    let (msg, receive_id) = rest.split_at(msg_len);
    Ok(Opened {
        random,
        msg,
        receive_id,
    })
}

/// A timestamp or nonce goes into the signature and, verbatim, into the reply envelope:
/// refuse what would break the XML (a CDATA end, markup in the bare `<TimeStamp>`).
fn check_envelope_value(name: &str, value: &str) -> Result<(), CryptoError> {
    if value.is_empty() {
        return Err(CryptoError::BadEnvelope(format!("{name} is empty")));
    }
    if name == "timestamp" && !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CryptoError::BadEnvelope(format!(
            "timestamp {value:?} is not decimal digits"
        )));
    }
    if value.contains("]]>") || value.chars().any(char::is_control) {
        return Err(CryptoError::BadEnvelope(format!(
            "{name} {value:?} cannot go in a CDATA section"
        )));
    }
    Ok(())
}

impl Encrypted {
    /// The XML a self-built app's passive reply is: the element order and CDATA of the
    /// Go SDK's `WXBizMsg4Send` as `xml.Marshal` writes it, on one line. (The Python
    /// SDK's template puts a newline after each element; WeCom takes either.)
    pub fn xml_envelope(&self) -> String {
        format!(
            "<xml><Encrypt><![CDATA[{}]]></Encrypt><MsgSignature><![CDATA[{}]]></MsgSignature><TimeStamp>{}</TimeStamp><Nonce><![CDATA[{}]]></Nonce></xml>",
            self.encrypt, self.signature, self.timestamp, self.nonce
        )
    }

    /// The JSON an AI bot's passive reply is (101033 "加密与被动回复"; the JSON SDK's
    /// `AES_TEXT_RESPONSE_TEMPLATE`): `encrypt`, `msgsignature`, `timestamp`, `nonce`,
    /// all strings (the template quotes the timestamp too), compact.
    pub fn json_envelope(&self) -> String {
        serde_json::json!({
            "encrypt": self.encrypt,
            "msgsignature": self.signature,
            "timestamp": self.timestamp,
            "nonce": self.nonce,
        })
        .to_string()
    }
}

/// The `<Encrypt>` of a callback's XML body (`<xml><ToUserName>…</ToUserName><Encrypt>
/// <![CDATA[…]]></Encrypt><AgentID>…</AgentID></xml>`, 91144 / the SDKs' `extract`):
/// only that child of the root is read; nothing else is trusted before the signature.
pub fn extract_xml_encrypt(body: &str) -> Result<String, CryptoError> {
    let mut reader = quick_xml::Reader::from_str(body);
    let mut depth = 0usize;
    let mut inside = false;
    let mut found: Option<String> = None;
    let bad = |e: &dyn std::fmt::Display| CryptoError::BadEnvelope(format!("XML body: {e}"));
    loop {
        match reader.read_event().map_err(|e| bad(&e))? {
            Event::Start(start) => {
                depth += 1;
                if depth == 2 && start.local_name().as_ref() == b"Encrypt" {
                    if found.is_some() {
                        return Err(CryptoError::BadEnvelope(
                            "XML body has more than one <Encrypt>".into(),
                        ));
                    }
                    inside = true;
                    found = Some(String::new());
                }
            }
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                inside = false;
            }
            Event::CData(cdata) if inside => {
                let text: Cow<'_, str> = cdata.decode().map_err(|e| bad(&e))?;
                push(&mut found, &text);
            }
            Event::Text(text) if inside => {
                let text = text.decode().map_err(|e| bad(&e))?;
                push(&mut found, text.trim());
            }
            Event::GeneralRef(_) if inside => {
                return Err(CryptoError::BadEnvelope(
                    "<Encrypt> holds an entity reference; base64 never needs one".into(),
                ));
            }
            Event::Eof => break,
            _ => {}
        }
    }
    match found {
        Some(encrypt) if !encrypt.is_empty() => Ok(encrypt),
        Some(_) => Err(CryptoError::BadEnvelope(
            "XML body's <Encrypt> is empty".into(),
        )),
        None => Err(CryptoError::BadEnvelope(
            "XML body has no <Encrypt> under its root".into(),
        )),
    }
}

fn push(found: &mut Option<String>, text: &str) {
    if let Some(s) = found {
        s.push_str(text);
    }
}

/// The `encrypt` of an AI bot callback's JSON body (`{"encrypt": "…"}`, 101033).
pub fn extract_json_encrypt(body: &str) -> Result<String, CryptoError> {
    #[derive(serde::Deserialize)]
    struct Body {
        encrypt: String,
    }
    let parsed: Body = serde_json::from_str(body)
        .map_err(|e| CryptoError::BadEnvelope(format!("JSON body: {e}")))?;
    if parsed.encrypt.is_empty() {
        return Err(CryptoError::BadEnvelope(
            "JSON body's encrypt is empty".into(),
        ));
    }
    Ok(parsed.encrypt)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The documented example of 加解密方案说明 (developer.work.weixin.qq.com/document/
    // path/90968, "举例说明"): token, key and corp id, and the POST callback it walks
    // through (signature, sort string, plaintext). The request strings are also in the
    // official SDK samples (github.com/sbzhu/weworkapi_golang sample.go, 使用示例一 and
    // 二), which blank the token and key as "xxxxxxxxxx"; the C# sample (namespace
    // Tencent) fills them in with these. Both vectors were checked independently with
    // Python's `cryptography` before being written here.
    const TOKEN: &str = "QDG6eK";
    const KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
    const CORP_ID: &str = "wx5823bf96d3bd56c7";

    // URL verification: weworkapi_golang sample.go 使用示例一 (echostr URL-decoded).
    const VERIFY_SIGNATURE: &str = "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3";
    const VERIFY_TIMESTAMP: &str = "1409659589";
    const VERIFY_NONCE: &str = "263014780";
    const VERIFY_ECHOSTR: &str =
        "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==";
    const VERIFY_PLAIN: &str = "1616140317555161061";

    // POST callback: weworkapi_golang sample.go 使用示例二 and doc 90968 第一步.
    const POST_SIGNATURE: &str = "477715d11cdb4164915debcba66cb864d751f3e6";
    const POST_TIMESTAMP: &str = "1409659813";
    const POST_NONCE: &str = "1372623149";
    const POST_BODY: &str = "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><Encrypt><![CDATA[RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q==]]></Encrypt><AgentID><![CDATA[218]]></AgentID></xml>";
    // What it decrypts to, byte for byte (doc 90968 shows it indented; the real bytes
    // have one newline between elements and none inside the first line).
    const POST_PLAIN: &str = "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>\n<FromUserName><![CDATA[mycreate]]></FromUserName>\n<CreateTime>1409659813</CreateTime>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[hello]]></Content>\n<MsgId>4561255354251345929</MsgId>\n<AgentID>218</AgentID>\n</xml>";

    fn app() -> WeComCrypto {
        WeComCrypto::new(TOKEN, KEY, CORP_ID).unwrap()
    }

    fn post_encrypt() -> String {
        extract_xml_encrypt(POST_BODY).unwrap()
    }

    /// Encrypts raw plaintext bytes, for tests that need a malformed plaintext sealed
    /// under the real key and signed properly.
    fn seal_raw(crypto: &WeComCrypto, plain: &[u8]) -> (String, String) {
        let mut buf = plain.to_vec();
        let len = buf.len();
        let (key, iv) = crypto.key_iv();
        let sealed = Encryptor::new(&key.into(), &iv.into())
            .encrypt_padded_mut::<NoPadding>(&mut buf, len)
            .unwrap();
        let encrypt = B64.encode(sealed);
        let signature = crypto.signature(POST_TIMESTAMP, POST_NONCE, &encrypt);
        (encrypt, signature)
    }

    fn header(msg_len: u32) -> Vec<u8> {
        let mut plain = vec![b'r'; RANDOM_LEN];
        plain.extend_from_slice(&msg_len.to_be_bytes());
        plain
    }

    #[test]
    fn official_url_verification_vector() {
        let crypto = app();
        assert_eq!(
            crypto.signature(VERIFY_TIMESTAMP, VERIFY_NONCE, VERIFY_ECHOSTR),
            VERIFY_SIGNATURE
        );
        let echo = crypto
            .verify_url(
                VERIFY_SIGNATURE,
                VERIFY_TIMESTAMP,
                VERIFY_NONCE,
                VERIFY_ECHOSTR,
            )
            .unwrap();
        assert_eq!(echo, VERIFY_PLAIN);
    }

    #[test]
    fn official_callback_vector() {
        let crypto = app();
        let encrypt = post_encrypt();
        assert!(encrypt.starts_with("RypEvHKD8QQK") && encrypt.ends_with("+qN+E7Q=="));
        // Doc 90968 第二步 gives the signature of exactly this input.
        assert_eq!(
            crypto.signature(POST_TIMESTAMP, POST_NONCE, &encrypt),
            POST_SIGNATURE
        );
        let msg = crypto
            .decrypt(POST_SIGNATURE, POST_TIMESTAMP, POST_NONCE, &encrypt)
            .unwrap();
        assert_eq!(msg, POST_PLAIN);
    }

    #[test]
    fn encrypting_the_official_plaintext_reproduces_wecoms_ciphertext() {
        // Same random prefix, message and corp id must give WeCom's bytes exactly: the
        // proof that layout, length order, padding to 32, key, IV and base64 all match.
        let crypto = app();
        let encrypt = post_encrypt();
        let mut plain = crypto.decrypt_blocks("encrypt", &encrypt).unwrap();
        let opened = open("encrypt", &mut plain).unwrap();
        let random: [u8; RANDOM_LEN] = opened.random.try_into().unwrap();
        assert_eq!(opened.receive_id, CORP_ID.as_bytes());
        let sealed = crypto
            .encrypt_with(random, POST_PLAIN, POST_TIMESTAMP, POST_NONCE)
            .unwrap();
        assert_eq!(sealed.encrypt, encrypt);
        assert_eq!(sealed.signature, POST_SIGNATURE);
    }

    #[test]
    fn key_must_be_43_base64_characters() {
        for key in ["", &KEY[..42], &format!("{KEY}A"), &format!("{KEY}=")] {
            let err = WeComCrypto::new(TOKEN, key, CORP_ID).unwrap_err();
            assert!(
                matches!(&err, CryptoError::BadKey(m) if m.contains("43 characters")),
                "{key:?}: {err}"
            );
        }
        let not_base64 = format!("{}!", &KEY[..42]);
        assert!(matches!(
            WeComCrypto::new(TOKEN, &not_base64, CORP_ID),
            Err(CryptoError::BadKey(_))
        ));
    }

    #[test]
    fn debug_hides_token_and_key() {
        let shown = format!("{:?}", app());
        assert!(!shown.contains(TOKEN) && shown.contains(CORP_ID), "{shown}");
    }

    #[test]
    fn round_trip_app_and_ai_bot() {
        for receive_id in [CORP_ID, ""] {
            let crypto = WeComCrypto::new(TOKEN, KEY, receive_id).unwrap();
            for reply in ["", "x", "你好，世界", &"长".repeat(1000)] {
                let sealed = crypto.encrypt(reply, "1700000000", "abc123").unwrap();
                let back = crypto
                    .decrypt(&sealed.signature, "1700000000", "abc123", &sealed.encrypt)
                    .unwrap();
                assert_eq!(back, reply);
            }
        }
    }

    #[test]
    fn random_prefix_differs_between_replies() {
        let crypto = app();
        let a = crypto.encrypt("same", "1", "n").unwrap();
        let b = crypto.encrypt("same", "1", "n").unwrap();
        assert_ne!(a.encrypt, b.encrypt);
    }

    #[test]
    fn padding_is_a_full_block_when_length_is_a_multiple_of_32() {
        let crypto = app();
        // 20 header + 26 message + 18 corp id = 64: a whole extra block of 32 × 32.
        let reply = "a".repeat(64 - HEADER_LEN - CORP_ID.len());
        let sealed = crypto.encrypt(&reply, "1", "n").unwrap();
        let plain = crypto.decrypt_blocks("encrypt", &sealed.encrypt).unwrap();
        assert_eq!(plain.len(), 96);
        assert!(plain[64..].iter().all(|&b| b == 32));
        // One byte more: 31 bytes of 31.
        let sealed = crypto.encrypt(&format!("{reply}a"), "1", "n").unwrap();
        let plain = crypto.decrypt_blocks("encrypt", &sealed.encrypt).unwrap();
        assert_eq!(plain.len(), 96);
        assert!(plain[65..].iter().all(|&b| b == 31));
        assert_eq!(plain[64], b'7', "last byte of the corp id");
    }

    #[test]
    fn tampered_signature_is_rejected_before_decrypting() {
        let crypto = app();
        let encrypt = post_encrypt();
        let mut wrong = POST_SIGNATURE.to_string();
        wrong.replace_range(0..1, "5");
        for signature in [wrong.as_str(), "", &POST_SIGNATURE.to_uppercase()] {
            assert_eq!(
                crypto.decrypt(signature, POST_TIMESTAMP, POST_NONCE, &encrypt),
                Err(CryptoError::BadSignature("encrypt"))
            );
        }
        // The timestamp and nonce are signed too, and the token.
        assert!(
            crypto
                .decrypt(POST_SIGNATURE, "1409659814", POST_NONCE, &encrypt)
                .is_err()
        );
        assert!(
            crypto
                .decrypt(POST_SIGNATURE, POST_TIMESTAMP, "1", &encrypt)
                .is_err()
        );
        let other_token = WeComCrypto::new("QDG6eL", KEY, CORP_ID).unwrap();
        assert_eq!(
            other_token.verify_url(
                VERIFY_SIGNATURE,
                VERIFY_TIMESTAMP,
                VERIFY_NONCE,
                VERIFY_ECHOSTR
            ),
            Err(CryptoError::BadSignature("echostr"))
        );
        // Garbage that is not even base64 fails on the signature, not on parsing.
        assert_eq!(
            crypto.decrypt(POST_SIGNATURE, POST_TIMESTAMP, POST_NONCE, "%%%"),
            Err(CryptoError::BadSignature("encrypt"))
        );
    }

    #[test]
    fn tampered_ciphertext_is_rejected() {
        let crypto = app();
        let encrypt = post_encrypt();
        // Re-signed, so only the ciphertext is wrong: a flipped byte in the last block
        // garbles the padding.
        let mut raw = B64.decode(&encrypt).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 0x01;
        let tampered = B64.encode(&raw);
        let signature = crypto.signature(POST_TIMESTAMP, POST_NONCE, &tampered);
        let err = crypto
            .decrypt(&signature, POST_TIMESTAMP, POST_NONCE, &tampered)
            .unwrap_err();
        assert!(
            matches!(err, CryptoError::BadPadding("encrypt", _)),
            "{err}"
        );

        let signed = |text: &str| crypto.signature(POST_TIMESTAMP, POST_NONCE, text);
        let check = |text: &str| crypto.decrypt(&signed(text), POST_TIMESTAMP, POST_NONCE, text);
        assert!(matches!(
            check("not base64!"),
            Err(CryptoError::BadBase64("encrypt", _))
        ));
        // Missing '=' padding is refused, as Go's StdEncoding does.
        assert!(matches!(
            check(encrypt.trim_end_matches('=')),
            Err(CryptoError::BadBase64("encrypt", _))
        ));
        assert!(matches!(
            check(""),
            Err(CryptoError::TooShort("encrypt", _))
        ));
        // 16 and 48 bytes: whole AES blocks but not whole 32-byte units.
        for n in [16, 48] {
            let text = B64.encode(&raw[..n]);
            assert!(matches!(
                check(&text),
                Err(CryptoError::BadPadding("encrypt", _))
            ));
        }
    }

    #[test]
    fn bad_padding_bytes_are_rejected() {
        let crypto = app();
        let cases: [(&str, Vec<u8>); 3] = [
            ("pad byte 0", [header(0), vec![0u8; 12]].concat()),
            ("pad byte 33", [header(0), vec![33u8; 12]].concat()),
            // Last byte says 3, the two before it disagree.
            (
                "inconsistent",
                [header(0), vec![9u8; 9], vec![1, 2, 3]].concat(),
            ),
        ];
        for (name, plain) in cases {
            assert_eq!(plain.len(), 32, "{name}");
            let (encrypt, signature) = seal_raw(&crypto, &plain);
            let err = crypto
                .decrypt(&signature, POST_TIMESTAMP, POST_NONCE, &encrypt)
                .unwrap_err();
            assert!(
                matches!(err, CryptoError::BadPadding("encrypt", _)),
                "{name}: {err}"
            );
        }
    }

    #[test]
    fn short_plaintexts_are_rejected_not_panicking() {
        let crypto = app();
        // All padding: nothing left for the header.
        let (encrypt, signature) = seal_raw(&crypto, &[32u8; 32]);
        let err = crypto
            .decrypt(&signature, POST_TIMESTAMP, POST_NONCE, &encrypt)
            .unwrap_err();
        assert!(matches!(err, CryptoError::TooShort("encrypt", _)), "{err}");
        // 19 bytes of header, 13 of padding.
        let (encrypt, signature) = seal_raw(&crypto, &[vec![7u8; 19], vec![13u8; 13]].concat());
        assert!(matches!(
            crypto.decrypt(&signature, POST_TIMESTAMP, POST_NONCE, &encrypt),
            Err(CryptoError::TooShort("encrypt", _))
        ));
        // msg_len claims more than follows (and the largest u32).
        for claimed in [11, u32::MAX] {
            let plain = [header(claimed), b"0123456789".to_vec(), vec![2u8; 2]].concat();
            let (encrypt, signature) = seal_raw(&crypto, &plain);
            let err = crypto
                .decrypt(&signature, POST_TIMESTAMP, POST_NONCE, &encrypt)
                .unwrap_err();
            assert!(
                matches!(err, CryptoError::TooShort("encrypt", _)),
                "{claimed}: {err}"
            );
        }
        // Exactly fitting, with no receive id: fine for the AI bot.
        let plain = [header(10), b"0123456789".to_vec(), vec![2u8; 2]].concat();
        let (encrypt, signature) = seal_raw(&crypto, &plain);
        let bot = WeComCrypto::new(TOKEN, KEY, "").unwrap();
        assert_eq!(
            bot.decrypt(&signature, POST_TIMESTAMP, POST_NONCE, &encrypt)
                .unwrap(),
            "0123456789"
        );
    }

    #[test]
    fn wrong_receive_id_is_rejected_and_empty_config_skips_the_check() {
        let other = WeComCrypto::new(TOKEN, KEY, "ww1436e0e65a779aee").unwrap();
        assert_eq!(
            other.decrypt(POST_SIGNATURE, POST_TIMESTAMP, POST_NONCE, &post_encrypt()),
            Err(CryptoError::WrongReceiver {
                expected: "ww1436e0e65a779aee".into(),
                got: CORP_ID.into(),
            })
        );
        // A prefix of the right id is not the right id.
        let prefix = WeComCrypto::new(TOKEN, KEY, &CORP_ID[..10]).unwrap();
        assert!(matches!(
            prefix.verify_url(
                VERIFY_SIGNATURE,
                VERIFY_TIMESTAMP,
                VERIFY_NONCE,
                VERIFY_ECHOSTR
            ),
            Err(CryptoError::WrongReceiver { .. })
        ));
        // The AI bot's "" accepts whatever id the plaintext ends with.
        let bot = WeComCrypto::new(TOKEN, KEY, "").unwrap();
        assert_eq!(
            bot.verify_url(
                VERIFY_SIGNATURE,
                VERIFY_TIMESTAMP,
                VERIFY_NONCE,
                VERIFY_ECHOSTR
            ),
            Ok(VERIFY_PLAIN.to_string())
        );
        // And its own replies carry no id at all.
        let sealed = bot.encrypt("{}", "1", "n").unwrap();
        let mut plain = bot.decrypt_blocks("encrypt", &sealed.encrypt).unwrap();
        assert!(open("encrypt", &mut plain).unwrap().receive_id.is_empty());
    }

    #[test]
    fn non_utf8_message_is_rejected() {
        let crypto = app();
        let plain = [header(2), vec![0xff, 0xfe], CORP_ID.as_bytes().to_vec()].concat();
        let pad = PAD_BLOCK - plain.len() % PAD_BLOCK;
        let plain = [plain, vec![pad as u8; pad]].concat();
        let (encrypt, signature) = seal_raw(&crypto, &plain);
        assert_eq!(
            crypto.decrypt(&signature, POST_TIMESTAMP, POST_NONCE, &encrypt),
            Err(CryptoError::NotUtf8("encrypt"))
        );
    }

    #[test]
    fn xml_envelope_is_the_sdk_shape_and_round_trips() {
        let crypto = app();
        let sealed = crypto
            .encrypt("<xml>reply</xml>", POST_TIMESTAMP, POST_NONCE)
            .unwrap();
        let xml = sealed.xml_envelope();
        assert_eq!(
            xml,
            format!(
                "<xml><Encrypt><![CDATA[{}]]></Encrypt><MsgSignature><![CDATA[{}]]></MsgSignature><TimeStamp>1409659813</TimeStamp><Nonce><![CDATA[1372623149]]></Nonce></xml>",
                sealed.encrypt, sealed.signature
            )
        );
        let encrypt = extract_xml_encrypt(&xml).unwrap();
        assert_eq!(
            crypto.decrypt(&sealed.signature, POST_TIMESTAMP, POST_NONCE, &encrypt),
            Ok("<xml>reply</xml>".to_string())
        );
    }

    #[test]
    fn json_envelope_has_the_ai_bot_field_names_and_round_trips() {
        let bot = WeComCrypto::new(TOKEN, KEY, "").unwrap();
        let reply = r#"{"msgtype":"text","text":{"content":"好"}}"#;
        let sealed = bot.encrypt(reply, "1700000000", "nonce\"1").unwrap();
        let json: serde_json::Value = serde_json::from_str(&sealed.json_envelope()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "encrypt": sealed.encrypt,
                "msgsignature": sealed.signature,
                "timestamp": "1700000000",
                "nonce": "nonce\"1",
            })
        );
        let encrypt = extract_json_encrypt(&sealed.json_envelope()).unwrap();
        assert_eq!(
            bot.decrypt(&sealed.signature, "1700000000", "nonce\"1", &encrypt),
            Ok(reply.to_string())
        );
    }

    #[test]
    fn envelope_values_that_would_break_the_xml_are_refused() {
        let crypto = app();
        for (timestamp, nonce) in [
            ("", "n"),
            ("1", ""),
            ("12a", "n"),
            ("1", "a]]>b"),
            ("1", "a\nb"),
        ] {
            assert!(
                matches!(
                    crypto.encrypt("x", timestamp, nonce),
                    Err(CryptoError::BadEnvelope(_))
                ),
                "{timestamp:?} {nonce:?}"
            );
        }
    }

    #[test]
    fn extracting_encrypt_from_bodies() {
        // Plain text instead of CDATA, whitespace around it (the doc shows it indented).
        assert_eq!(
            extract_xml_encrypt("<xml>\n  <Encrypt>\n abc= \n</Encrypt>\n</xml>").unwrap(),
            "abc="
        );
        // Only the root's own child counts.
        let nested = "<xml><Other><Encrypt>x</Encrypt></Other></xml>";
        for body in [nested, "<xml></xml>", "", "<xml><Encrypt></Encrypt></xml>"] {
            assert!(
                matches!(extract_xml_encrypt(body), Err(CryptoError::BadEnvelope(_))),
                "{body:?}"
            );
        }
        for body in [
            "<xml><Encrypt>a</Encrypt><Encrypt>b</Encrypt></xml>",
            "<xml><Encrypt>a&amp;b</Encrypt></xml>",
            "<xml><Encrypt>a</Nope></xml>",
        ] {
            assert!(
                matches!(extract_xml_encrypt(body), Err(CryptoError::BadEnvelope(_))),
                "{body:?}"
            );
        }
        assert_eq!(
            extract_json_encrypt(r#"{"encrypt":"abc="}"#).unwrap(),
            "abc="
        );
        for body in ["", "{}", r#"{"encrypt":""}"#, r#"{"encrypt":1}"#] {
            assert!(
                matches!(extract_json_encrypt(body), Err(CryptoError::BadEnvelope(_))),
                "{body:?}"
            );
        }
    }

    /// No input panics: whatever the query and body, an error or a message; and what is
    /// sealed opens to itself, for an app and for an AI bot.
    mod props {
        use proptest::collection::vec;
        use proptest::prelude::*;

        use super::*;
        use crate::adapter::testing::props::{config, xml};

        proptest! {
            #![proptest_config(config())]

            #[test]
            fn any_request_is_refused_or_read(
                signature in any::<String>(),
                timestamp in any::<String>(),
                nonce in any::<String>(),
                ciphertext in any::<String>(),
            ) {
                let crypto = app();
                let _ = crypto.decrypt(&signature, &timestamp, &nonce, &ciphertext);
                let _ = crypto.verify_url(&signature, &timestamp, &nonce, &ciphertext);
                // Signed properly, so what follows the signature check is reached too.
                let signed = crypto.signature(&timestamp, &nonce, &ciphertext);
                let _ = crypto.decrypt(&signed, &timestamp, &nonce, &ciphertext);
            }

            #[test]
            fn any_signed_bytes_are_refused_or_read(
                bytes in vec(any::<u8>(), 0..300),
                msg_len in prop_oneof![0u32..400, any::<u32>()],
                blocks in 1usize..8,
            ) {
                let crypto = app();
                let ai_bot = WeComCrypto::new(TOKEN, KEY, "").unwrap();
                let open = |plain: &[u8]| {
                    let (encrypt, signature) = seal_raw(&crypto, plain);
                    let _ = crypto.decrypt(&signature, POST_TIMESTAMP, POST_NONCE, &encrypt);
                    let _ = ai_bot.decrypt(&signature, POST_TIMESTAMP, POST_NONCE, &encrypt);
                };
                // Base64 of any length.
                let encoded = B64.encode(&bytes);
                let signature = crypto.signature(POST_TIMESTAMP, POST_NONCE, &encoded);
                let _ = crypto.decrypt(&signature, POST_TIMESTAMP, POST_NONCE, &encoded);
                // Whole blocks of anything: whatever the padding says.
                let blocks: Vec<u8> = bytes.iter().copied().cycle().take(32 * blocks).collect();
                if blocks.len().is_multiple_of(32) && !blocks.is_empty() {
                    open(&blocks);
                }
                // Padded right, so what is read is the header: any msg_len, any message,
                // any receive id after it.
                let mut plain = header(msg_len);
                plain.extend_from_slice(&bytes);
                let pad = 32 - plain.len() % 32;
                plain.resize(plain.len() + pad, pad as u8);
                open(&plain);
            }

            #[test]
            fn what_is_sealed_opens_to_itself(
                plain in any::<String>(),
                timestamp in any::<u32>(),
                nonce in any::<u32>(),
            ) {
                let (timestamp, nonce) = (timestamp.to_string(), nonce.to_string());
                for crypto in [app(), WeComCrypto::new(TOKEN, KEY, "").unwrap()] {
                    let sealed = crypto.encrypt(&plain, &timestamp, &nonce).unwrap();
                    let from_xml = extract_xml_encrypt(&sealed.xml_envelope()).unwrap();
                    let from_json = extract_json_encrypt(&sealed.json_envelope()).unwrap();
                    prop_assert_eq!(&from_xml, &sealed.encrypt);
                    prop_assert_eq!(&from_json, &sealed.encrypt);
                    let opened = crypto.decrypt(&sealed.signature, &timestamp, &nonce, &from_xml);
                    prop_assert_eq!(opened.as_deref(), Ok(plain.as_str()));
                }
            }

            #[test]
            fn any_envelope_or_key_is_refused_or_read(
                body in xml(&["Encrypt", "ToUserName", "AgentID", "xml"]),
                text in any::<String>(),
                key in any::<String>(),
            ) {
                let _ = extract_xml_encrypt(&body);
                let _ = extract_xml_encrypt(&text);
                let _ = extract_json_encrypt(&text);
                let _ = extract_json_encrypt(&serde_json::json!({"encrypt": text}).to_string());
                let _ = WeComCrypto::new(text.as_str(), &key, text.as_str());
            }
        }
    }
}
