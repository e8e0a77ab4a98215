//! RecordIO framing of Mesos event streams: `<decimal length>\n<bytes>` per record.
//!
//! [`RecordIoCodec`] is a `tokio_util` codec: it decodes records incrementally across arbitrary
//! chunk boundaries and encodes records for servers (the embedded master and agents).
//! [`MessageDecoder`] is the decoder event streams are read with: it decodes each record where it
//! lies in the body's chunks into a typed message of one [`Format`], so no record is copied or
//! reference-counted on the way (only records that straddle two chunks are gathered first).
//!
//! Decoding is strict, as stout's decoder is: the header is one or more ASCII digits (no sign, no
//! spaces, no `\r`) of at most 20 characters whose value fits a `u64`, followed by `\n`. Records
//! of length 0 are skipped. A record larger than the configured cap is refused from its header
//! alone, before any of it is buffered. After any framing error the codec is dead: every later
//! call returns [`RecordIoError::Failed`]. Records are handed out as zero-copy [`Bytes`] slices of
//! the read buffer.

use std::fmt::Write as _;
use std::marker::PhantomData;

use bytes::{Buf, Bytes, BytesMut};
use prost::{Message, Name};
use tokio_util::codec::{Decoder, Encoder};

use crate::codec::{CodecError, Format};

/// The default cap on one record's size: 64 MiB.
pub const DEFAULT_MAX_RECORD_SIZE: usize = 64 * 1024 * 1024;

/// The most digits a length header may have: `u64::MAX` has 20.
pub const MAX_HEADER_DIGITS: usize = 20;

/// Headers of up to this many digits cannot overflow a `u64` (`10^19 - 1 < u64::MAX`).
const SAFE_DIGITS: usize = 19;

/// The longest header the inlined fast path reads (records under 100 MB); longer ones, valid or
/// not, go to the full parser. A small bound keeps the fast path small enough to inline.
const FAST_HEADER_DIGITS: usize = 8;

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

/// Where a [`RecordIoCodec`] stands in its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FrameState {
    /// Between records: the next byte starts a header.
    Between,
    /// The header of a record of this many bytes was consumed; its data has not fully arrived.
    Inside(usize),
    /// A framing (or, in a [`MessageDecoder`], decoding) error killed the stream.
    Failed,
}

/// Incremental RecordIO decoder and encoder.
#[derive(Debug, Clone)]
pub struct RecordIoCodec {
    max_record_size: usize,
    state: FrameState,
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
            state: FrameState::Between,
        }
    }

    /// The configured cap on one record's size.
    pub fn max_record_size(&self) -> usize {
        self.max_record_size
    }

    /// Whether a framing error has killed this decoder.
    pub fn is_failed(&self) -> bool {
        self.state == FrameState::Failed
    }

    /// Whether the stream ended between records (nothing of a record is pending).
    fn is_between_records(&self) -> bool {
        self.state == FrameState::Between
    }

    /// Marks the stream dead and hands `err` back.
    fn fail(&mut self, err: RecordIoError) -> RecordIoError {
        tracing::debug!(error = %err, "RecordIO framing error");
        self.state = FrameState::Failed;
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
    #[inline]
    fn next_record(&mut self, src: &mut BytesMut) -> Result<Option<(usize, usize)>, RecordIoError> {
        match self.whole_record_at_front(src) {
            Some((record, consumed)) => Ok(Some((consumed - record.len(), record.len()))),
            None => self.next_record_slow(src),
        }
    }

    /// The common case of [`RecordIoCodec::next_record`], kept small enough to inline: a live
    /// decoder between records and a whole non-empty record, with a short header, at the front
    /// of `src`. Returns the record's bytes and how many bytes of `src` it takes with its
    /// header. `None` says nothing about the rest: the slow path decides.
    #[inline]
    fn whole_record_at_front<'a>(&self, src: &'a [u8]) -> Option<(&'a [u8], usize)> {
        if self.state != FrameState::Between {
            return None;
        }
        let (offset, size) = Self::scan_short_header(src)?;
        let len = usize::try_from(size).ok()?;
        if len == 0 || len > self.max_record_size {
            return None;
        }
        let end = offset.checked_add(len)?;
        Some((src.get(offset..end)?, end))
    }

    /// [`RecordIoCodec::next_record`] for every other case: pending records, partial headers,
    /// empty records, and errors.
    #[inline(never)]
    fn next_record_slow(
        &mut self,
        src: &mut BytesMut,
    ) -> Result<Option<(usize, usize)>, RecordIoError> {
        loop {
            let (offset, len) = match std::mem::replace(&mut self.state, FrameState::Between) {
                FrameState::Failed => {
                    self.state = FrameState::Failed;
                    return Err(RecordIoError::Failed);
                }
                FrameState::Inside(len) => (0, len),
                FrameState::Between => {
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
                self.state = FrameState::Inside(len);
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

    /// A header of at most [`FAST_HEADER_DIGITS`] digits complete at the front of `src`:
    /// `(header length, record size)`. `None` for anything else, valid or not, which
    /// [`RecordIoCodec::parse_header`] then reads.
    #[inline]
    fn scan_short_header(src: &[u8]) -> Option<(usize, u64)> {
        let mut size: u64 = 0;
        for (index, &byte) in src.iter().take(FAST_HEADER_DIGITS + 1).enumerate() {
            let digit = byte.wrapping_sub(b'0');
            if digit < 10 && index < FAST_HEADER_DIGITS {
                size = size * 10 + u64::from(digit);
            } else if byte == b'\n' && index > 0 {
                return Some((index + 1, size));
            } else {
                return None;
            }
        }
        None
    }

    /// Parses a header from the front of `src` in one pass. `Ok(None)`: more bytes are needed.
    fn parse_header(src: &[u8]) -> Result<Option<(usize, u64)>, RecordIoError> {
        let mut size: u64 = 0;
        for (index, &byte) in src.iter().enumerate() {
            let digit = byte.wrapping_sub(b'0');
            if digit < 10 {
                if index < SAFE_DIGITS {
                    size = size * 10 + u64::from(digit);
                } else {
                    size = Self::last_digit(src, index, size, digit)?;
                }
            } else if byte == b'\n' && index > 0 {
                return Ok(Some((index + 1, size)));
            } else {
                return Err(Self::invalid_header(src, index));
            }
        }
        Ok(None)
    }

    /// Adds the digit at `index` (the 20th or later) to `size`, or says why it cannot be.
    #[cold]
    #[inline(never)]
    fn last_digit(src: &[u8], index: usize, size: u64, digit: u8) -> Result<u64, RecordIoError> {
        if index >= MAX_HEADER_DIGITS {
            return Err(RecordIoError::InvalidHeader(format!(
                "more than {MAX_HEADER_DIGITS} digits"
            )));
        }
        size.checked_mul(10)
            .and_then(|s| s.checked_add(u64::from(digit)))
            .ok_or_else(|| {
                RecordIoError::LengthOverflow(String::from_utf8_lossy(&src[..=index]).into_owned())
            })
    }

    /// The error for the byte at `index`, which is neither a digit nor a header-ending `\n`.
    #[cold]
    #[inline(never)]
    fn invalid_header(src: &[u8], index: usize) -> RecordIoError {
        if index == 0 && src[0] == b'\n' {
            return RecordIoError::InvalidHeader("empty length".into());
        }
        RecordIoError::InvalidHeader(format!(
            "unexpected byte 0x{:02x} after {:?}",
            src[index],
            String::from_utf8_lossy(&src[..index])
        ))
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
            None if src.is_empty() && self.is_between_records() => Ok(None),
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

/// Why a [`MessageDecoder`] stopped. Either way the stream is dead: every later decode returns
/// [`RecordIoError::Failed`] as [`MessageStreamError::Framing`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MessageStreamError {
    /// The RecordIO framing is broken, or reading the byte stream failed.
    #[error(transparent)]
    Framing(#[from] RecordIoError),
    /// A well-framed record does not decode as the expected message.
    #[error("undecodable record: {0}")]
    Decode(#[source] CodecError),
}

impl From<std::io::Error> for MessageStreamError {
    fn from(err: std::io::Error) -> Self {
        MessageStreamError::Framing(RecordIoError::Io(err))
    }
}

/// A decoder of RecordIO streams whose records are messages of type `M` in one [`Format`], such
/// as the scheduler's `Event`s. Feed it the stream's chunks as they arrive with
/// [`MessageDecoder::decode_chunk`] (what the client's subscription streams do), or use it as a
/// `tokio_util` [`Decoder`] over a read buffer:
/// `FramedRead::new(reader, MessageDecoder::<Event>::new(format, max_record_size))`.
///
/// Each record is decoded where it lies, so framing adds only the header scan to the cost of
/// decoding the message itself; protobuf `bytes` fields are copied out, as with any decode from
/// a slice. Messages come out boxed: Mesos events are large structs (800 bytes for the
/// scheduler's, 4.4 KiB for the executor's, mostly empty optional fields), and decoding straight
/// into a heap slot is cheaper than moving such a value through the decoder, the stream layers
/// above it and the channels behind them (`benches/decode.rs` measures both: on a HEARTBEAT
/// stream this path takes about two thirds of the time of `Event::decode` on the stack).
///
/// The common case is inlined into the caller: a record whose header (of up to 8 digits) and
/// data lie whole at the front of the input. Everything else (records split across chunks,
/// empty records, longer headers, errors) takes an out-of-line path with the full parser.
///
/// A record that does not decode kills the stream as a framing error does: after it, where the
/// next record starts cannot be trusted to mean what the peer meant.
pub struct MessageDecoder<M> {
    records: RecordIoCodec,
    format: Format,
    /// Bytes of a record (or header) that straddles chunks; see [`MessageDecoder::decode_chunk`].
    partial: BytesMut,
    message: PhantomData<fn() -> M>,
}

impl<M> std::fmt::Debug for MessageDecoder<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageDecoder")
            .field("records", &self.records)
            .field("format", &self.format)
            .field("partial", &self.partial.len())
            .field("message", &std::any::type_name::<M>())
            .finish()
    }
}

impl<M> Clone for MessageDecoder<M> {
    fn clone(&self) -> Self {
        Self {
            records: self.records.clone(),
            format: self.format,
            partial: self.partial.clone(),
            message: PhantomData,
        }
    }
}

impl<M: Message + Name + Default> MessageDecoder<M> {
    /// A decoder of `format` messages in records of at most `max_record_size` bytes.
    pub fn new(format: Format, max_record_size: usize) -> Self {
        Self {
            records: RecordIoCodec::new(max_record_size),
            format,
            partial: BytesMut::new(),
            message: PhantomData,
        }
    }

    /// Decodes the next message from `chunk`, one piece of the byte stream as it arrived (a
    /// body frame), without first copying it into a read buffer.
    ///
    /// Call it until it returns `Ok(None)`: `chunk` is then used up, and a record it ends in the
    /// middle of is kept inside the decoder until the next chunks complete it. Records that lie
    /// whole in a chunk are decoded where they lie, and only the bytes of records that straddle
    /// chunks are copied. This is what the client's subscription streams use; [`Decoder`] is
    /// for readers that own a buffer. Use one way or the other with one decoder, not both. At
    /// the end of the stream, [`MessageDecoder::finish`] says whether it ended between records.
    #[inline]
    pub fn decode_chunk(
        &mut self,
        chunk: &mut Bytes,
    ) -> Result<Option<Box<M>>, MessageStreamError> {
        // The common case, inlined: a record whole at the front of the chunk that decodes. Anything else, including a record that does not decode, takes the slow path,
        // which decides again from the same bytes.
        if self.partial.is_empty()
            && let Some((record, consumed)) = self.records.whole_record_at_front(chunk)
            && let Some(message) = self.decode_fast(record)
        {
            chunk.advance(consumed);
            return Ok(Some(message));
        }
        self.decode_chunk_slow(chunk)
    }

    /// Checks that the stream ended between records: `Err(Truncated)` when bytes of an
    /// unfinished record (or header) are left from [`MessageDecoder::decode_chunk`].
    pub fn finish(&mut self) -> Result<(), MessageStreamError> {
        if self.records.is_failed() {
            return Err(RecordIoError::Failed.into());
        }
        if self.partial.is_empty() && self.records.is_between_records() {
            return Ok(());
        }
        let pending = self.partial.len();
        self.partial = BytesMut::new();
        Err(self.records.fail(RecordIoError::Truncated(pending)).into())
    }

    /// Decodes one whole record in this decoder's format, straight into a heap slot; the slow
    /// path's decode, which reports why a record does not decode.
    #[inline]
    fn decode_record(&self, record: &[u8]) -> Result<Box<M>, CodecError> {
        match self.format {
            Format::Protobuf => Self::merge_boxed(record).map_err(CodecError::Protobuf),
            Format::Json => Self::decode_json(record),
        }
    }

    /// The fast paths' decode of a whole record where it lies: [`MessageDecoder::decode_record`]
    /// without the reason. `None` for a record that does not decode; the slow path then decodes
    /// it again to report why. Dropping prost's pointer-sized error here, rather than building
    /// a `CodecError` to throw away, keeps the inlined path measurably shorter.
    #[inline(always)]
    fn decode_fast(&self, record: &[u8]) -> Option<Box<M>> {
        match self.format {
            Format::Protobuf => Self::merge_boxed(record).ok(),
            Format::Json => Self::decode_json(record).ok(),
        }
    }

    /// Decodes a protobuf record into a fresh heap slot.
    #[inline(always)]
    fn merge_boxed(record: &[u8]) -> Result<Box<M>, prost::DecodeError> {
        let mut message = Box::<M>::default();
        message.merge(record).map(|()| message)
    }

    /// JSON's share of the decode, out of line: it is far slower than the call, and keeping it
    /// out keeps the inlined fast paths small.
    #[inline(never)]
    fn decode_json(record: &[u8]) -> Result<Box<M>, CodecError> {
        crate::codec::json::from_slice::<M>(record).map(Box::new)
    }

    /// [`MessageDecoder::decode_chunk`] for the rest: records that straddle chunks, empty
    /// records, and errors. Moves just enough of `chunk` into `partial` to complete the header
    /// or the record in progress, then decodes `partial` as a buffer.
    #[inline(never)]
    fn decode_chunk_slow(
        &mut self,
        chunk: &mut Bytes,
    ) -> Result<Option<Box<M>>, MessageStreamError> {
        let mut partial = std::mem::take(&mut self.partial);
        let result = loop {
            match self.decode_slow(&mut partial) {
                Ok(None) if !chunk.is_empty() => {}
                other => break other,
            }
            let wanted = match self.records.state {
                // The header is in: take the rest of the record.
                FrameState::Inside(len) => len.saturating_sub(partial.len()),
                // Take the header up to its '\n'; one byte past the longest valid header is
                // enough for the header parser to refuse a bad one.
                FrameState::Between | FrameState::Failed => chunk
                    .iter()
                    .take(MAX_HEADER_DIGITS + 1)
                    .position(|&byte| byte == b'\n')
                    .map_or(MAX_HEADER_DIGITS + 1, |newline| newline + 1),
            };
            let taken = chunk.split_to(wanted.clamp(1, chunk.len()));
            partial.extend_from_slice(&taken);
        };
        if result.is_err() {
            partial = BytesMut::new();
        }
        self.partial = partial;
        result
    }

    /// The format records are decoded from.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Whether a framing or decoding error has killed this decoder.
    pub fn is_failed(&self) -> bool {
        self.records.is_failed()
    }

    /// [`Decoder::decode`] for every case but the common one: JSON, partial or empty records,
    /// and errors.
    #[inline(never)]
    fn decode_slow(&mut self, src: &mut BytesMut) -> Result<Option<Box<M>>, MessageStreamError> {
        let Some((offset, len)) = self.records.next_record(src)? else {
            return Ok(None);
        };
        let decoded = self.decode_record(&src[offset..offset + len]);
        src.advance(offset + len);
        match decoded {
            Ok(message) => Ok(Some(message)),
            Err(err) => {
                tracing::debug!(error = %err, "undecodable RecordIO record");
                self.records.state = FrameState::Failed;
                Err(MessageStreamError::Decode(err))
            }
        }
    }
}

impl<M: Message + Name + Default> Decoder for MessageDecoder<M> {
    type Item = Box<M>;
    type Error = MessageStreamError;

    #[inline]
    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Box<M>>, MessageStreamError> {
        // The common case, inlined: a record whole at the front that decodes.
        if let Some((record, consumed)) = self.records.whole_record_at_front(src)
            && let Some(message) = self.decode_fast(record)
        {
            src.advance(consumed);
            return Ok(Some(message));
        }
        self.decode_slow(src)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Box<M>>, MessageStreamError> {
        match self.decode(src)? {
            Some(message) => Ok(Some(message)),
            None if src.is_empty() && self.records.is_between_records() => Ok(None),
            None => {
                let pending = src.len();
                Err(self.records.fail(RecordIoError::Truncated(pending)).into())
            }
        }
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
    fn message_decoder_decodes_typed_records_and_dies_on_a_bad_one() {
        use crate::v1::scheduler::{Event, event};
        let heartbeat = Event {
            r#type: Some(event::Type::Heartbeat as i32),
            ..Default::default()
        };
        for format in [Format::Protobuf, Format::Json] {
            let mut buf = BytesMut::new();
            let encoded = format.encode(&heartbeat).unwrap();
            encode_record(&mut buf, &encoded);
            encode_record(&mut buf, b"");
            encode_record(&mut buf, &encoded[..encoded.len() - 1]);
            let mut decoder = MessageDecoder::<Event>::new(format, 1024);
            assert_eq!(decoder.format(), format);
            assert_eq!(
                decoder.decode(&mut buf).unwrap(),
                Some(Box::new(heartbeat.clone()))
            );
            assert!(matches!(
                decoder.decode(&mut buf),
                Err(MessageStreamError::Decode(_))
            ));
            assert!(decoder.is_failed());
            assert!(matches!(
                decoder.decode(&mut buf),
                Err(MessageStreamError::Framing(RecordIoError::Failed))
            ));
        }
    }

    #[test]
    fn message_decoder_waits_for_whole_records_and_reports_truncation() {
        use crate::v1::scheduler::Event;
        let mut decoder = MessageDecoder::<Event>::new(Format::Protobuf, 4);
        let mut buf = BytesMut::from(&b"2\n\x08"[..]);
        assert_eq!(decoder.decode(&mut buf).unwrap(), None);
        assert!(matches!(
            decoder.decode_eof(&mut buf),
            Err(MessageStreamError::Framing(RecordIoError::Truncated(1)))
        ));
        let mut decoder = MessageDecoder::<Event>::new(Format::Protobuf, 4);
        let mut buf = BytesMut::from(&b"5\n"[..]);
        assert!(matches!(
            decoder.decode(&mut buf),
            Err(MessageStreamError::Framing(RecordIoError::RecordTooLarge {
                size: 5,
                max: 4
            }))
        ));
        let mut decoder = MessageDecoder::<Event>::new(Format::Protobuf, 4);
        assert_eq!(decoder.decode_eof(&mut BytesMut::new()).unwrap(), None);
    }

    #[test]
    fn encode_writes_decimal_length_and_data() {
        let mut buf = BytesMut::new();
        encode_record(&mut buf, b"hello!");
        encode_record(&mut buf, b"");
        assert_eq!(&buf[..], b"6\nhello!0\n");
    }
}
