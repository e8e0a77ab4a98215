//! RecordIO framing of Mesos event streams: `<decimal length>\n<bytes>` per record.
//!
//! [`RecordIoCodec`] is a `tokio_util` codec: it decodes records incrementally across arbitrary
//! chunk boundaries and encodes records for servers (the embedded master and agents).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

/// The default cap on one record's size: 64 MiB.
pub const DEFAULT_MAX_RECORD_SIZE: usize = 64 * 1024 * 1024;

/// Appends one RecordIO record holding `data` to `dst`.
pub fn encode_record(dst: &mut BytesMut, data: &[u8]) {
    let header = data.len().to_string();
    dst.reserve(header.len() + 1 + data.len());
    dst.put_slice(header.as_bytes());
    dst.put_u8(b'\n');
    dst.put_slice(data);
}

/// A framing error. Once one is returned the stream is dead: every later decode returns an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordIoError {
    /// The length header holds something other than ASCII digits.
    #[error("invalid RecordIO header: {0}")]
    InvalidHeader(String),
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

    fn fail(&mut self, err: RecordIoError) -> Result<Option<Bytes>, RecordIoError> {
        self.failed = true;
        Err(err)
    }
}

impl Decoder for RecordIoCodec {
    type Item = Bytes;
    type Error = RecordIoError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, RecordIoError> {
        if self.failed {
            return Err(RecordIoError::Failed);
        }
        loop {
            let len = match self.pending {
                Some(len) => len,
                None => {
                    let max_digits = 20;
                    let Some(nl) = src.iter().take(max_digits + 1).position(|b| *b == b'\n') else {
                        if let Some(bad) = src.iter().find(|b| !b.is_ascii_digit()) {
                            return self
                                .fail(RecordIoError::InvalidHeader(format!("byte 0x{bad:02x}")));
                        }
                        if src.len() > max_digits {
                            return self
                                .fail(RecordIoError::InvalidHeader("header too long".into()));
                        }
                        return Ok(None);
                    };
                    let header = &src[..nl];
                    if header.is_empty() || !header.iter().all(u8::is_ascii_digit) {
                        let shown = String::from_utf8_lossy(header).into_owned();
                        return self.fail(RecordIoError::InvalidHeader(shown));
                    }
                    let size: u64 = match std::str::from_utf8(header)
                        .ok()
                        .and_then(|s| s.parse().ok())
                    {
                        Some(size) => size,
                        None => {
                            return self
                                .fail(RecordIoError::InvalidHeader("length overflows u64".into()));
                        }
                    };
                    if size > self.max_record_size as u64 {
                        return self.fail(RecordIoError::RecordTooLarge {
                            size,
                            max: self.max_record_size,
                        });
                    }
                    src.advance(nl + 1);
                    let len = size as usize;
                    self.pending = Some(len);
                    len
                }
            };
            if src.len() < len {
                src.reserve(len - src.len());
                return Ok(None);
            }
            self.pending = None;
            let record = src.split_to(len).freeze();
            if record.is_empty() {
                continue;
            }
            return Ok(Some(record));
        }
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, RecordIoError> {
        match self.decode(src)? {
            Some(record) => Ok(Some(record)),
            None if src.is_empty() && self.pending.is_none() => Ok(None),
            None => {
                let pending = src.len();
                self.fail(RecordIoError::Truncated(pending))
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
