//! The 24-byte ADB message header and its payload.

use thiserror::Error;

pub const A_SYNC: u32 = 0x434e_5953;
pub const A_CNXN: u32 = 0x4e58_4e43;
pub const A_OPEN: u32 = 0x4e45_504f;
pub const A_OKAY: u32 = 0x5941_4b4f;
pub const A_CLSE: u32 = 0x4553_4c43;
pub const A_WRTE: u32 = 0x4554_5257;
pub const A_AUTH: u32 = 0x4854_5541;
pub const A_STLS: u32 = 0x534c_5453;

/// Protocol version before checksums became optional.
pub const A_VERSION_MIN: u32 = 0x0100_0000;
/// From this version on, a receiver must not require a payload checksum (adb.h).
pub const A_VERSION_SKIP_CHECKSUM: u32 = 0x0100_0001;
pub const MAX_PAYLOAD: u32 = 1024 * 1024;
pub const HEADER_LEN: usize = 24;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum PacketError {
    #[error("bad magic: command {command:#010x}, magic {magic:#010x}")]
    BadMagic { command: u32, magic: u32 },
    #[error("payload of {len} bytes exceeds the {max}-byte limit")]
    TooLarge { len: u32, max: u32 },
    #[error("checksum mismatch: header says {expected:#x}, payload sums to {actual:#x}")]
    Checksum { expected: u32, actual: u32 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub command: u32,
    pub arg0: u32,
    pub arg1: u32,
    pub payload: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub command: u32,
    pub arg0: u32,
    pub arg1: u32,
    pub data_length: u32,
    pub data_check: u32,
    pub magic: u32,
}

/// The "checksum" ADB uses is a plain byte sum, not a CRC.
pub fn checksum(data: &[u8]) -> u32 {
    data.iter()
        .fold(0u32, |acc, &b| acc.wrapping_add(u32::from(b)))
}

pub fn command_name(command: u32) -> &'static str {
    match command {
        A_SYNC => "SYNC",
        A_CNXN => "CNXN",
        A_OPEN => "OPEN",
        A_OKAY => "OKAY",
        A_CLSE => "CLSE",
        A_WRTE => "WRTE",
        A_AUTH => "AUTH",
        A_STLS => "STLS",
        _ => "????",
    }
}

impl Header {
    pub fn parse(bytes: &[u8; HEADER_LEN]) -> Result<Self, PacketError> {
        let word =
            |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        let header = Header {
            command: word(0),
            arg0: word(4),
            arg1: word(8),
            data_length: word(12),
            data_check: word(16),
            magic: word(20),
        };
        if header.magic != header.command ^ 0xffff_ffff {
            return Err(PacketError::BadMagic {
                command: header.command,
                magic: header.magic,
            });
        }
        if header.data_length > MAX_PAYLOAD {
            return Err(PacketError::TooLarge {
                len: header.data_length,
                max: MAX_PAYLOAD,
            });
        }
        Ok(header)
    }
}

impl Packet {
    pub fn new(command: u32, arg0: u32, arg1: u32, payload: impl Into<Vec<u8>>) -> Self {
        Packet {
            command,
            arg0,
            arg1,
            payload: payload.into(),
        }
    }

    /// Always writes the real checksum: hosts on the old protocol version verify it, newer ones ignore it.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.payload.len());
        for word in [
            self.command,
            self.arg0,
            self.arg1,
            self.payload.len() as u32,
            checksum(&self.payload),
            self.command ^ 0xffff_ffff,
        ] {
            out.extend_from_slice(&word.to_le_bytes());
        }
        out.extend_from_slice(&self.payload);
        out
    }

    /// Checks the payload against the header. A zero checksum is what hosts at
    /// `A_VERSION_SKIP_CHECKSUM` and later send, so it is only enforced for older peers.
    pub fn from_parts(
        header: Header,
        payload: Vec<u8>,
        peer_version: u32,
    ) -> Result<Self, PacketError> {
        if peer_version < A_VERSION_SKIP_CHECKSUM {
            let actual = checksum(&payload);
            if actual != header.data_check {
                return Err(PacketError::Checksum {
                    expected: header.data_check,
                    actual,
                });
            }
        }
        Ok(Packet {
            command: header.command,
            arg0: header.arg0,
            arg1: header.arg1,
            payload,
        })
    }

    /// Decodes one whole packet from a buffer (used by tests and the raw client).
    pub fn decode(bytes: &[u8], peer_version: u32) -> Result<Option<(Self, usize)>, PacketError> {
        let Some(head) = bytes.get(..HEADER_LEN) else {
            return Ok(None);
        };
        let mut arr = [0u8; HEADER_LEN];
        arr.copy_from_slice(head);
        let header = Header::parse(&arr)?;
        let end = HEADER_LEN + header.data_length as usize;
        let Some(payload) = bytes.get(HEADER_LEN..end) else {
            return Ok(None);
        };
        Ok(Some((
            Packet::from_parts(header, payload.to_vec(), peer_version)?,
            end,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_roundtrip() {
        let p = Packet::new(A_WRTE, 7, 9, b"hello".to_vec());
        let bytes = p.encode();
        assert_eq!(bytes.len(), 29);
        assert_eq!(&bytes[0..4], b"WRTE");
        assert_eq!(
            u32::from_le_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]),
            532
        );
        let (q, used) = Packet::decode(&bytes, A_VERSION_MIN)
            .expect("valid")
            .expect("whole");
        assert_eq!(used, 29);
        assert_eq!(p, q);
    }

    #[test]
    fn checksum_is_byte_sum() {
        assert_eq!(checksum(b""), 0);
        assert_eq!(checksum(&[0xff, 0xff, 1]), 511);
    }

    #[test]
    fn bad_magic_rejected() {
        let mut bytes = Packet::new(A_OKAY, 1, 2, Vec::new()).encode();
        bytes[20] ^= 1;
        assert!(matches!(
            Packet::decode(&bytes, A_VERSION_MIN),
            Err(PacketError::BadMagic { .. })
        ));
    }

    #[test]
    fn zero_checksum_accepted_only_from_new_hosts() {
        let mut bytes = Packet::new(
            A_CNXN,
            A_VERSION_SKIP_CHECKSUM,
            MAX_PAYLOAD,
            b"host::".to_vec(),
        )
        .encode();
        bytes[16..20].copy_from_slice(&0u32.to_le_bytes());
        assert!(Packet::decode(&bytes, A_VERSION_SKIP_CHECKSUM).is_ok());
        assert!(matches!(
            Packet::decode(&bytes, A_VERSION_MIN),
            Err(PacketError::Checksum { .. })
        ));
    }

    #[test]
    fn partial_input_needs_more() {
        let bytes = Packet::new(A_WRTE, 1, 2, b"abc".to_vec()).encode();
        assert_eq!(Packet::decode(&bytes[..10], A_VERSION_MIN), Ok(None));
        assert_eq!(Packet::decode(&bytes[..26], A_VERSION_MIN), Ok(None));
    }
}
