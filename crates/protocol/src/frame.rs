//! Size-prefixed frames and request headers.
//!
//! A Kafka request is `size: i32` followed by `size` bytes: the request header, then the body.
//! The size is checked against `socket.request.max.bytes` before the body is read, so a peer
//! cannot make the broker allocate more than that.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion};

/// Bytes in the size prefix of every frame.
pub const FRAME_PREFIX_BYTES: usize = 4;

/// Why a frame or its header could not be accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("frame size {size} is negative or zero")]
    InvalidSize { size: i32 },
    #[error("frame size {size} exceeds socket.request.max.bytes ({max})")]
    TooLarge { size: usize, max: usize },
    #[error("frame of {size} bytes is too short for a request header")]
    Truncated { size: usize },
    #[error("unknown API key {api_key} (correlation id {correlation_id})")]
    UnknownApiKey { api_key: i16, correlation_id: i32 },
    #[error("malformed {api_key:?} v{version} request header: {reason}")]
    MalformedHeader {
        api_key: ApiKey,
        version: i16,
        reason: String,
    },
}

/// Reads the size prefix and checks it against `frame_bytes_max`.
pub fn frame_len(prefix: [u8; 4], frame_bytes_max: usize) -> Result<usize, FrameError> {
    let size = i32::from_be_bytes(prefix);
    if size <= 0 {
        return Err(FrameError::InvalidSize { size });
    }
    let size = size as usize;
    if size > frame_bytes_max {
        return Err(FrameError::TooLarge {
            size,
            max: frame_bytes_max,
        });
    }
    Ok(size)
}

/// A request whose header is parsed; the body is left for the handler to decode.
#[derive(Debug, Clone)]
pub struct RequestFrame {
    pub api_key: ApiKey,
    pub header: RequestHeader,
    /// The request body, after the header.
    pub body: Bytes,
}

impl RequestFrame {
    pub fn version(&self) -> i16 {
        self.header.request_api_version
    }

    pub fn correlation_id(&self) -> i32 {
        self.header.correlation_id
    }

    /// Parses the header of one frame (without its size prefix).
    ///
    /// The header's own version depends on the API key and version, so an unknown key can only
    /// be reported with the correlation id; what to do with it is the caller's choice.
    pub fn parse(mut frame: Bytes) -> Result<Self, FrameError> {
        if frame.len() < 8 {
            return Err(FrameError::Truncated { size: frame.len() });
        }
        let raw_key = i16::from_be_bytes([frame[0], frame[1]]);
        let version = i16::from_be_bytes([frame[2], frame[3]]);
        let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
        let api_key = ApiKey::try_from(raw_key).map_err(|()| FrameError::UnknownApiKey {
            api_key: raw_key,
            correlation_id,
        })?;
        // Versions beyond what the crate knows still have a header version by the rules of
        // their API (flexible once flexible); clamp so that the header parses and the caller can
        // answer UNSUPPORTED_VERSION with the right correlation id.
        let known = api_key.valid_versions();
        let header_version = api_key.request_header_version(version.clamp(known.min, known.max));
        let header = RequestHeader::decode(&mut frame, header_version).map_err(|e| {
            FrameError::MalformedHeader {
                api_key,
                version,
                reason: e.to_string(),
            }
        })?;
        Ok(Self {
            api_key,
            header,
            body: frame,
        })
    }
}

/// Encodes a complete response frame: size prefix, response header and body.
///
/// ApiVersions always answers with header v0, whatever the request version (KIP-511), so that a
/// client that asked with a version the broker does not know can still read the answer.
pub fn encode_response<R: Encodable + HeaderVersion>(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &R,
) -> Result<BytesMut, EncodeError> {
    let header_version = match api_key {
        ApiKey::ApiVersions => 0,
        _ => R::header_version(version),
    };
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let size = header
        .compute_size(header_version)
        .map_err(EncodeError::new)?
        + body.compute_size(version).map_err(EncodeError::new)?;
    let mut buf = BytesMut::with_capacity(FRAME_PREFIX_BYTES + size);
    buf.put_i32(size as i32);
    header
        .encode(&mut buf, header_version)
        .map_err(EncodeError::new)?;
    body.encode(&mut buf, version).map_err(EncodeError::new)?;
    debug_assert_eq!(buf.len(), FRAME_PREFIX_BYTES + size);
    Ok(buf)
}

/// A response that could not be encoded at the requested version (a bug, never the peer's fault).
#[derive(Debug, thiserror::Error)]
#[error("cannot encode response: {0}")]
pub struct EncodeError(String);

impl EncodeError {
    pub(crate) fn new(e: impl std::fmt::Display) -> Self {
        Self(e.to_string())
    }
}

/// Decodes a request body at the frame's version. Trailing bytes are ignored, as Kafka does.
pub fn decode_body<R: Decodable>(frame: &RequestFrame) -> Result<R, String> {
    let mut body = frame.body.clone();
    R::decode(&mut body, frame.version()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{ApiVersionsRequest, MetadataRequest};

    fn request_bytes(key: ApiKey, version: i16, body: &impl Encodable) -> Bytes {
        crate::testing::request_frame(key, version, 42, "t", body)
    }

    #[test]
    fn parses_flexible_and_classic_headers() {
        for v in [0, 3] {
            let bytes = request_bytes(ApiKey::ApiVersions, v, &ApiVersionsRequest::default());
            let f = RequestFrame::parse(bytes).unwrap();
            assert_eq!(f.api_key, ApiKey::ApiVersions);
            assert_eq!(f.correlation_id(), 42);
            assert_eq!(f.header.client_id.as_deref(), Some("t"));
        }
        let bytes = request_bytes(ApiKey::Metadata, 12, &MetadataRequest::default());
        let f = RequestFrame::parse(bytes).unwrap();
        let _: MetadataRequest = decode_body(&f).unwrap();
    }

    #[test]
    fn unknown_key_reports_correlation_id() {
        let bytes = Bytes::from_static(&[0x7f, 0x00, 0, 1, 0, 0, 0, 9, 0xff, 0xff]);
        assert_eq!(
            RequestFrame::parse(bytes).unwrap_err(),
            FrameError::UnknownApiKey {
                api_key: 0x7f00,
                correlation_id: 9
            }
        );
    }

    #[test]
    fn frame_len_limits() {
        assert_eq!(
            frame_len([0, 0, 0, 0], 10),
            Err(FrameError::InvalidSize { size: 0 })
        );
        assert_eq!(
            frame_len([0xff, 0xff, 0xff, 0xff], 10),
            Err(FrameError::InvalidSize { size: -1 })
        );
        assert_eq!(
            frame_len([0, 0, 0, 11], 10),
            Err(FrameError::TooLarge { size: 11, max: 10 })
        );
    }

    #[test]
    fn truncated_header_is_an_error() {
        for n in 0..12 {
            let bytes = request_bytes(ApiKey::Metadata, 9, &MetadataRequest::default());
            let _ = RequestFrame::parse(bytes.slice(..n.min(bytes.len())));
        }
    }
}
