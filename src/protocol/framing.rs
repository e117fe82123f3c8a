//! Binary audio framing v1/v2/v3 (PROTOCOL.md §2): decode uplink frames and
//! encode downlink frames. All multi-byte integers are big-endian.
//!
//! Decoding borrows the payload from the frame, so the audio hot path does not
//! allocate; encoding appends to a caller-owned buffer that can be reused.

/// Largest binary frame accepted, header included (§2.4).
pub const MAX_BINARY_FRAME: usize = 4096;
const V2_HEADER: usize = 16;
const V3_HEADER: usize = 4;

/// The framing version a connection speaks; downlink uses the uplink's version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FramingVersion {
    /// A bare Opus packet per frame.
    #[default]
    V1,
    /// 16-byte header with a capture timestamp.
    V2,
    /// 4-byte header.
    V3,
}

impl FramingVersion {
    /// Versions 1, 2 and 3 exist; anything else is `None`.
    pub fn from_number(n: i64) -> Option<Self> {
        match n {
            1 => Some(FramingVersion::V1),
            2 => Some(FramingVersion::V2),
            3 => Some(FramingVersion::V3),
            _ => None,
        }
    }

    /// The `Protocol-Version` header: an unparsable or unknown value counts as 1 (§2.1).
    pub fn from_header(value: Option<&str>) -> Self {
        value
            .and_then(|v| v.trim().parse::<i64>().ok())
            .and_then(Self::from_number)
            .unwrap_or_default()
    }

    pub fn number(self) -> u8 {
        match self {
            FramingVersion::V1 => 1,
            FramingVersion::V2 => 2,
            FramingVersion::V3 => 3,
        }
    }
}

/// What a binary frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketKind {
    Opus,
    /// Handled exactly like a text frame (§2.4).
    Json,
}

/// One decoded uplink frame, borrowing its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BinaryPacket<'a> {
    pub kind: PacketKind,
    /// Device capture time (v2 only, else 0), kept for server-side AEC.
    pub timestamp_ms: u32,
    pub payload: &'a [u8],
}

/// Why a binary frame was dropped; each maps to one error code (§2.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// Zero-length frame: browser clients send one before `listen stop`; ignored silently.
    Empty,
    /// Over [`MAX_BINARY_FRAME`] (`TOO_LARGE`).
    TooLarge { len: usize },
    /// Shorter than its header (`SCHEMA_INVALID`).
    Truncated { len: usize, header: usize },
    /// `payload_size` disagrees with the bytes present (`SCHEMA_INVALID`).
    SizeMismatch { declared: usize, present: usize },
    /// A `type` other than 0 (Opus) or 1 (JSON) (`UNSUPPORTED`).
    UnknownType { value: u16 },
}

impl FrameError {
    /// The message of the `audio` error reply: it names the limit or the field.
    pub fn describe(&self) -> String {
        match self {
            FrameError::Empty => "empty binary frame".to_string(),
            FrameError::TooLarge { len } => {
                format!("binary frame of {len} bytes exceeds the {MAX_BINARY_FRAME}-byte limit")
            }
            FrameError::Truncated { len, header } => {
                format!("binary frame of {len} bytes is shorter than its {header}-byte header")
            }
            FrameError::SizeMismatch { declared, present } => {
                format!("payload_size {declared} differs from the {present} payload bytes present")
            }
            FrameError::UnknownType { value } => {
                format!("type {value} is not 0 (opus) or 1 (json)")
            }
        }
    }
}

/// Decodes one uplink binary frame.
///
/// ```
/// use huddle::protocol::framing::{decode, FramingVersion, PacketKind};
///
/// // PROTOCOL.md §2.3: a v3 frame carrying the 4-byte Opus payload 58 0b e4 71.
/// let frame = [0x00, 0x00, 0x00, 0x04, 0x58, 0x0b, 0xe4, 0x71];
/// let packet = decode(FramingVersion::V3, &frame).unwrap();
/// assert_eq!(packet.kind, PacketKind::Opus);
/// assert_eq!(packet.payload, &[0x58, 0x0b, 0xe4, 0x71]);
///
/// // A frame whose payload_size lies is refused, never read past its end.
/// assert!(decode(FramingVersion::V3, &frame[..6]).is_err());
/// ```
pub fn decode(version: FramingVersion, frame: &[u8]) -> Result<BinaryPacket<'_>, FrameError> {
    if frame.is_empty() {
        return Err(FrameError::Empty);
    }
    if frame.len() > MAX_BINARY_FRAME {
        return Err(FrameError::TooLarge { len: frame.len() });
    }
    match version {
        FramingVersion::V1 => Ok(BinaryPacket {
            kind: PacketKind::Opus,
            timestamp_ms: 0,
            payload: frame,
        }),
        FramingVersion::V2 => {
            let header = header_of(frame, V2_HEADER)?;
            let kind = kind_of(u16::from_be_bytes([header[2], header[3]]))?;
            let timestamp_ms = u32::from_be_bytes([header[8], header[9], header[10], header[11]]);
            let declared = u32::from_be_bytes([header[12], header[13], header[14], header[15]]);
            let payload = payload_of(frame, V2_HEADER, declared as usize)?;
            Ok(BinaryPacket {
                kind,
                timestamp_ms,
                payload,
            })
        }
        FramingVersion::V3 => {
            let header = header_of(frame, V3_HEADER)?;
            let kind = kind_of(u16::from(header[0]))?;
            let declared = u16::from_be_bytes([header[2], header[3]]);
            let payload = payload_of(frame, V3_HEADER, usize::from(declared))?;
            Ok(BinaryPacket {
                kind,
                timestamp_ms: 0,
                payload,
            })
        }
    }
}

fn header_of(frame: &[u8], header: usize) -> Result<&[u8], FrameError> {
    frame.get(..header).ok_or(FrameError::Truncated {
        len: frame.len(),
        header,
    })
}

fn kind_of(value: u16) -> Result<PacketKind, FrameError> {
    match value {
        0 => Ok(PacketKind::Opus),
        1 => Ok(PacketKind::Json),
        _ => Err(FrameError::UnknownType { value }),
    }
}

fn payload_of(frame: &[u8], header: usize, declared: usize) -> Result<&[u8], FrameError> {
    let payload = &frame[header..];
    if payload.len() != declared {
        return Err(FrameError::SizeMismatch {
            declared,
            present: payload.len(),
        });
    }
    Ok(payload)
}

/// Appends one downlink frame to `out`. Downlink v2 frames carry timestamp 0 (§2.3).
pub fn encode_into(version: FramingVersion, kind: PacketKind, payload: &[u8], out: &mut Vec<u8>) {
    let type_value: u16 = match kind {
        PacketKind::Opus => 0,
        PacketKind::Json => 1,
    };
    match version {
        FramingVersion::V1 => {}
        FramingVersion::V2 => {
            out.extend_from_slice(&2u16.to_be_bytes());
            out.extend_from_slice(&type_value.to_be_bytes());
            out.extend_from_slice(&0u32.to_be_bytes());
            out.extend_from_slice(&0u32.to_be_bytes());
            out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        }
        FramingVersion::V3 => {
            out.push(type_value as u8);
            out.push(0);
            out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAYLOAD: [u8; 4] = [0x58, 0x0b, 0xe4, 0x71];
    // PROTOCOL.md §2.3, the worked examples byte for byte.
    const V2_EXAMPLE: [u8; 20] = [
        0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xe8, 0x00, 0x00, 0x00,
        0x04, 0x58, 0x0b, 0xe4, 0x71,
    ];
    const V3_EXAMPLE: [u8; 8] = [0x00, 0x00, 0x00, 0x04, 0x58, 0x0b, 0xe4, 0x71];

    #[test]
    fn decodes_the_v2_worked_example() {
        let packet = decode(FramingVersion::V2, &V2_EXAMPLE).unwrap();
        assert_eq!(packet.kind, PacketKind::Opus);
        assert_eq!(packet.timestamp_ms, 1000);
        assert_eq!(packet.payload, PAYLOAD);
    }

    #[test]
    fn decodes_the_v3_worked_example() {
        let packet = decode(FramingVersion::V3, &V3_EXAMPLE).unwrap();
        assert_eq!(packet.kind, PacketKind::Opus);
        assert_eq!(packet.payload, PAYLOAD);
    }

    #[test]
    fn v1_is_the_raw_packet() {
        let packet = decode(FramingVersion::V1, &PAYLOAD).unwrap();
        assert_eq!(packet.payload, PAYLOAD);
        assert_eq!(packet.kind, PacketKind::Opus);
    }

    #[test]
    fn encodes_v3_like_the_example_and_v2_with_zero_timestamp() {
        let mut out = Vec::new();
        encode_into(FramingVersion::V3, PacketKind::Opus, &PAYLOAD, &mut out);
        assert_eq!(out, V3_EXAMPLE);
        out.clear();
        encode_into(FramingVersion::V2, PacketKind::Opus, &PAYLOAD, &mut out);
        let mut expected = V2_EXAMPLE;
        expected[8..12].copy_from_slice(&[0, 0, 0, 0]);
        assert_eq!(out, expected);
    }

    #[test]
    fn a_300_byte_packet_declares_01_2c() {
        let payload = vec![7u8; 300];
        let mut out = Vec::new();
        encode_into(FramingVersion::V3, PacketKind::Opus, &payload, &mut out);
        assert_eq!(&out[2..4], &[0x01, 0x2c]);
        out.clear();
        encode_into(FramingVersion::V2, PacketKind::Opus, &payload, &mut out);
        assert_eq!(&out[12..16], &[0x00, 0x00, 0x01, 0x2c]);
        assert_eq!(
            decode(FramingVersion::V2, &out).unwrap().payload,
            &payload[..]
        );
    }

    #[test]
    fn json_type_round_trips() {
        let mut out = Vec::new();
        encode_into(
            FramingVersion::V3,
            PacketKind::Json,
            b"{\"type\":\"ping\"}",
            &mut out,
        );
        let packet = decode(FramingVersion::V3, &out).unwrap();
        assert_eq!(packet.kind, PacketKind::Json);
        assert_eq!(packet.payload, b"{\"type\":\"ping\"}");
    }

    #[test]
    fn rejects_bad_frames_with_the_right_reason() {
        assert_eq!(decode(FramingVersion::V3, &[]), Err(FrameError::Empty));
        assert_eq!(
            decode(FramingVersion::V1, &vec![0u8; 4097]),
            Err(FrameError::TooLarge { len: 4097 })
        );
        assert!(decode(FramingVersion::V1, &vec![0u8; 4096]).is_ok());
        assert_eq!(
            decode(FramingVersion::V2, &V2_EXAMPLE[..10]),
            Err(FrameError::Truncated {
                len: 10,
                header: 16
            })
        );
        assert_eq!(
            decode(FramingVersion::V3, &V3_EXAMPLE[..7]),
            Err(FrameError::SizeMismatch {
                declared: 4,
                present: 3
            })
        );
        let mut wrong_type = V3_EXAMPLE;
        wrong_type[0] = 9;
        assert_eq!(
            decode(FramingVersion::V3, &wrong_type),
            Err(FrameError::UnknownType { value: 9 })
        );
    }

    #[test]
    fn header_version_parsing_defaults_to_one() {
        assert_eq!(FramingVersion::from_header(Some("3")), FramingVersion::V3);
        assert_eq!(FramingVersion::from_header(Some(" 2 ")), FramingVersion::V2);
        assert_eq!(FramingVersion::from_header(Some("x")), FramingVersion::V1);
        assert_eq!(FramingVersion::from_header(Some("7")), FramingVersion::V1);
        assert_eq!(FramingVersion::from_header(None), FramingVersion::V1);
    }
}
