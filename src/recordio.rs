//! RecordIO framing of Mesos event streams: `<decimal length>\n<bytes>` per record.
//!
//! [`RecordIoCodec`] is a `tokio_util` codec: it decodes records incrementally across arbitrary
//! chunk boundaries and encodes records for servers (the embedded master and agents).
//!
//! Decoding is strict, as stout's decoder is: the header is one or more ASCII digits (no sign, no
//! spaces, no `\r`) of at most 20 characters whose value fits a `u64`, followed by `\n`. Records
//! of length 0 are skipped. A record larger than the configured cap is refused from its header
//! alone, before any of it is buffered. After any framing error the codec is dead: every later
//! call returns [`RecordIoError::Failed`]. Records are handed out as zero-copy [`Bytes`] slices of
//! the read buffer.

use std::fmt::Write as _;

use bytes::{Buf, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

/// The default cap on one record's size: 64 MiB.
pub const DEFAULT_MAX_RECORD_SIZE: usize = 64 * 1024 * 1024;

/// The most digits a length header may have: `u64::MAX` has 20.
pub const MAX_HEADER_DIGITS: usize = 20;

/// How much buffer space the decoder reserves ahead at most while a large record arrives; the
/// buffer still grows as data comes in, but an announced size is never allocated up front.
const MAX_RESERVE_AHEAD: usize = 1024 * 1024;

/// Appends one RecordIO record holding `data` to `dst`.
pub fn encode_record(dst: &mut BytesMut, data: &[u8]) {
    dst.reserve(MAX_HEADER_DIGITS + 1 + data.len());
    // Writing to a BytesMut cannot fail.
    let _ = writeln!(dst, "{}", data.len());
    dst.extend_from_slice(data);
}

/// A framing error. Once one is returned the stream is dead: every later decode returns an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordIoError {
    /// The length header holds something other than ASCII digits (or nothing, or more than
    /// [`MAX_HEADER_DIGITS`] digits).
    #[error("invalid RecordIO header: {0}")]
    InvalidHeader(String),
    /// The length header's digits exceed `u64::MAX`.
    #[error("RecordIO length header {0} overflows a u64")]
    LengthOverflow(String),
    /// The announced record is larger than the configured cap.
    #[error("RecordIO record of {size} bytes exceeds the cap of {max} bytes")]
    RecordTooLarge {
        /// Announced size.
        size: u64,
        /// Configured cap.
        max: usize,
    },
    /// The stream ended in the middle of a record.
    #[error("stream ended inside a RecordIO record ({0} bytes pending)")]
    Truncated(usize),
    /// An earlier framing error killed the stream.
    #[error("RecordIO stream already failed")]
    Failed,
    /// Reading the underlying byte stream failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// Incremental RecordIO decoder and encoder.
#[derive(Debug, Clone)]
pub struct RecordIoCodec {
    max_record_size: usize,
    /// Length of the record whose header was consumed but whose data has not fully arrived.
    pending: Option<usize>,
    failed: bool,
}

impl Default for RecordIoCodec {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_RECORD_SIZE)
    }
}

impl RecordIoCodec {
    /// A codec that rejects records larger than `max_record_size` bytes.
    pub fn new(max_record_size: usize) -> Self {
        Self {
            max_record_size,
            pending: None,
            failed: false,
        }
    }

    /// The configured cap on one record's size.
    pub fn max_record_size(&self) -> usize {
        self.max_record_size
    }

    /// Whether a framing error has killed this decoder.
    pub fn is_failed(&self) -> bool {
        self.failed
    }

    /// Marks the stream dead and hands `err` back.
    fn fail(&mut self, err: RecordIoError) -> RecordIoError {
        tracing::debug!(error = %err, "RecordIO framing error");
        self.failed = true;
        self.pending = None;
        err
    }

    /// Decodes the next non-empty record of `src` in place and hands its bytes to `decode`.
    ///
    /// This is [`Decoder::decode`] without splitting the record off the buffer: no reference
    /// counting per record, which matters for streams of tiny events (heartbeats) decoded at once,
    /// e.g. `codec.decode_record_with(&mut buf, |record| Format::Protobuf.decode::<Event>(record))`.
    /// `Ok(None)`: no complete record yet. Framing errors are sticky as with [`Decoder::decode`].
    pub fn decode_record_with<T>(
        &mut self,
        src: &mut BytesMut,
        decode: impl FnOnce(&[u8]) -> T,
    ) -> Result<Option<T>, RecordIoError> {
        let Some((offset, len)) = self.next_record(src)? else {
            return Ok(None);
        };
        let decoded = decode(&src[offset..offset + len]);
        src.advance(offset + len);
        Ok(Some(decoded))
    }

    /// Finds the next complete non-empty record in `src`, consuming empty records on the way.
    ///
    /// Returns `(offset, len)`: the record's data is `src[offset..offset + len]`, where `offset` is
    /// the length of a header not consumed yet (0 when the header was consumed by an earlier call),
    /// so that the caller advances once. `Ok(None)`: more bytes are needed (a header whose record
    /// is incomplete is consumed and remembered).
    fn next_record(&mut self, src: &mut BytesMut) -> Result<Option<(usize, usize)>, RecordIoError> {
        if self.failed {
            return Err(RecordIoError::Failed);
        }
        loop {
            let (offset, len) = match self.pending.take() {
                Some(len) => (0, len),
                None => {
                    let (header_len, size) = match Self::parse_header(src) {
                        Ok(Some(header)) => header,
                        Ok(None) => return Ok(None),
                        Err(err) => return Err(self.fail(err)),
                    };
                    match usize::try_from(size) {
                        Ok(len) if len <= self.max_record_size => (header_len, len),
                        _ => {
                            return Err(self.fail(RecordIoError::RecordTooLarge {
                                size,
                                max: self.max_record_size,
                            }));
                        }
                    }
                }
            };
            let available = src.len() - offset;
            if available < len {
                src.advance(offset);
                self.pending = Some(len);
                src.reserve((len - available).min(MAX_RESERVE_AHEAD));
                return Ok(None);
            }
            if len > 0 {
                return Ok(Some((offset, len)));
            }
            // Empty records carry nothing; skip them.
            src.advance(offset);
        }
    }

    /// Parses a header from the front of `src` in one pass. `Ok(None)`: more bytes are needed.
    fn parse_header(src: &[u8]) -> Result<Option<(usize, u64)>, RecordIoError> {
        let mut size: u64 = 0;
        for (index, &byte) in src.iter().enumerate() {
            match byte {
                b'0'..=b'9' if index < MAX_HEADER_DIGITS => {
                    size = match size
                        .checked_mul(10)
                        .and_then(|s| s.checked_add(u64::from(byte - b'0')))
                    {
                        Some(size) => size,
                        None => {
                            let digits = String::from_utf8_lossy(&src[..=index]).into_owned();
                            return Err(RecordIoError::LengthOverflow(digits));
                        }
                    };
                }
                b'0'..=b'9' => {
                    return Err(RecordIoError::InvalidHeader(format!(
                        "more than {MAX_HEADER_DIGITS} digits"
                    )));
                }
                b'\n' if index > 0 => return Ok(Some((index + 1, size))),
                b'\n' => return Err(RecordIoError::InvalidHeader("empty length".into())),
                other => {
                    return Err(RecordIoError::InvalidHeader(format!(
                        "unexpected byte 0x{other:02x} after {:?}",
                        String::from_utf8_lossy(&src[..index])
                    )));
                }
            }
        }
        Ok(None)
    }
}

impl Decoder for RecordIoCodec {
    type Item = Bytes;
    type Error = RecordIoError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, RecordIoError> {
        let Some((offset, len)) = self.next_record(src)? else {
            return Ok(None);
        };
        src.advance(offset);
        Ok(Some(src.split_to(len).freeze()))
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, RecordIoError> {
        match self.decode(src)? {
            Some(record) => Ok(Some(record)),
            None if src.is_empty() && self.pending.is_none() => Ok(None),
            None => {
                let pending = src.len();
                Err(self.fail(RecordIoError::Truncated(pending)))
            }
        }
    }
}

impl<T: AsRef<[u8]>> Encoder<T> for RecordIoCodec {
    type Error = RecordIoError;

    fn encode(&mut self, item: T, dst: &mut BytesMut) -> Result<(), RecordIoError> {
        encode_record(dst, item.as_ref());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(codec: &mut RecordIoCodec, input: &[u8]) -> Result<Vec<Bytes>, RecordIoError> {
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(record) = codec.decode_eof(&mut buf)? {
            out.push(record);
        }
        Ok(out)
    }

    #[test]
    fn header_rules() {
        let ok = |input: &[u8]| decode_all(&mut RecordIoCodec::default(), input);
        assert_eq!(ok(b"3\nabc").unwrap(), [Bytes::from_static(b"abc")]);
        assert_eq!(ok(b"003\nabc").unwrap(), [Bytes::from_static(b"abc")]);
        for bad in [
            &b"\nabc"[..],
            b"5\r\nhello",
            b" 5\nhello",
            b"5 \nhello",
            b"+5\nhello",
            b"-5\nhello",
            b"0x5\nhello",
            b"000000000000000000005\nhello",
        ] {
            assert!(
                matches!(ok(bad), Err(RecordIoError::InvalidHeader(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(matches!(
            ok(b"18446744073709551616\n"),
            Err(RecordIoError::LengthOverflow(_))
        ));
        assert!(matches!(
            ok(b"99999999999999999999\n"),
            Err(RecordIoError::LengthOverflow(_))
        ));
        assert!(matches!(
            ok(b"18446744073709551615\n"),
            Err(RecordIoError::RecordTooLarge { .. })
        ));
    }

    #[test]
    fn too_large_records_are_refused_from_the_header() {
        let mut codec = RecordIoCodec::new(4);
        let mut buf = BytesMut::from(&b"5\nhel"[..]);
        let err = codec.decode(&mut buf).unwrap_err();
        assert!(matches!(
            err,
            RecordIoError::RecordTooLarge { size: 5, max: 4 }
        ));
        assert!(codec.is_failed());
        assert!(matches!(codec.decode(&mut buf), Err(RecordIoError::Failed)));
        assert_eq!(codec.max_record_size(), 4);
    }

    #[test]
    fn announced_size_is_not_allocated_up_front() {
        let mut codec = RecordIoCodec::default();
        let mut buf = BytesMut::from(&b"60000000\nab"[..]);
        assert!(codec.decode(&mut buf).unwrap().is_none());
        assert!(buf.capacity() < 4 * 1024 * 1024, "{}", buf.capacity());
    }

    #[test]
    fn eof_inside_a_header_or_record_is_truncation() {
        let mut codec = RecordIoCodec::default();
        assert!(matches!(
            decode_all(&mut codec, b"5\nhel"),
            Err(RecordIoError::Truncated(3))
        ));
        assert!(matches!(
            decode_all(&mut RecordIoCodec::default(), b"1"),
            Err(RecordIoError::Truncated(1))
        ));
        assert!(
            decode_all(&mut RecordIoCodec::default(), b"")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn decode_record_with_reads_in_place_and_shares_state() {
        let mut codec = RecordIoCodec::default();
        let mut buf = BytesMut::from(&b"3\nabc0\n2\nxy1"[..]);
        assert_eq!(
            codec
                .decode_record_with(&mut buf, <[u8]>::to_vec)
                .unwrap()
                .unwrap(),
            b"abc"
        );
        // The empty record is skipped; mixing both entry points is fine.
        assert_eq!(codec.decode(&mut buf).unwrap().unwrap(), "xy");
        assert!(
            codec
                .decode_record_with(&mut buf, <[u8]>::len)
                .unwrap()
                .is_none()
        );
        buf.extend_from_slice(b"\nz");
        assert_eq!(
            codec.decode_record_with(&mut buf, <[u8]>::len).unwrap(),
            Some(1)
        );
        let mut bad = BytesMut::from(&b"x\n"[..]);
        assert!(codec.decode_record_with(&mut bad, <[u8]>::len).is_err());
        assert!(matches!(
            codec.decode_record_with(&mut buf, <[u8]>::len),
            Err(RecordIoError::Failed)
        ));
    }

    #[test]
    fn encode_writes_decimal_length_and_data() {
        let mut buf = BytesMut::new();
        encode_record(&mut buf, b"hello!");
        encode_record(&mut buf, b"");
        assert_eq!(&buf[..], b"6\nhello!0\n");
    }
}
