//! RecordIO framing: stout's vectors, the docs' byte-exact example, incremental decoding across
//! random chunk boundaries through `FramedRead` and through `MessageDecoder::decode_chunk`
//! (checked against each other), and malformed headers.

use std::io;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use futures::executor::block_on;
use mesos_sdk::codec::Format;
use mesos_sdk::recordio::{
    DEFAULT_MAX_RECORD_SIZE, MessageDecoder, MessageStreamError, RecordIoCodec, RecordIoError,
    encode_record,
};
use mesos_sdk::v1::scheduler::{Event, event};
use mesos_sdk::v1::{AgentId, ExecutorId};
use proptest::prelude::*;
use prost::Message;
use tokio_util::codec::{Decoder, Encoder, FramedRead};
use tokio_util::io::StreamReader;

/// Decodes `chunks` through `FramedRead` over a stream that yields exactly those chunks.
fn decode_chunks(
    codec: RecordIoCodec,
    chunks: Vec<Vec<u8>>,
) -> (Vec<Bytes>, Option<RecordIoError>) {
    let stream = futures::stream::iter(
        chunks
            .into_iter()
            .map(|chunk| Ok::<Bytes, io::Error>(Bytes::from(chunk))),
    );
    let mut framed = FramedRead::new(StreamReader::new(stream), codec);
    block_on(async {
        let mut records = Vec::new();
        while let Some(item) = framed.next().await {
            match item {
                Ok(record) => records.push(record),
                Err(err) => return (records, Some(err)),
            }
        }
        (records, None)
    })
}

/// Decodes `chunks` with [`MessageDecoder::decode_chunk`], chunk by chunk, then `finish`.
fn decode_events_by_chunk(
    max_record_size: usize,
    chunks: Vec<Vec<u8>>,
) -> (Vec<Event>, Option<MessageStreamError>) {
    let mut decoder = MessageDecoder::<Event>::new(Format::Protobuf, max_record_size);
    let mut events = Vec::new();
    for chunk in chunks {
        let mut chunk = Bytes::from(chunk);
        loop {
            match decoder.decode_chunk(&mut chunk) {
                Ok(Some(event)) => events.push(*event),
                Ok(None) => break,
                Err(err) => {
                    // Sticky: the decoder stays dead.
                    assert!(matches!(
                        decoder.decode_chunk(&mut Bytes::from_static(b"1\n\x08")),
                        Err(MessageStreamError::Framing(RecordIoError::Failed))
                    ));
                    return (events, Some(err));
                }
            }
        }
        assert!(chunk.is_empty(), "Ok(None) leaves nothing of the chunk");
    }
    match decoder.finish() {
        Ok(()) => (events, None),
        Err(err) => (events, Some(err)),
    }
}

/// Decodes `chunks` with [`MessageDecoder`] as a `Decoder` under `FramedRead`.
fn decode_events_framed(
    max_record_size: usize,
    chunks: Vec<Vec<u8>>,
) -> (Vec<Event>, Option<MessageStreamError>) {
    let stream = futures::stream::iter(
        chunks
            .into_iter()
            .map(|chunk| Ok::<Bytes, io::Error>(Bytes::from(chunk))),
    );
    let decoder = MessageDecoder::<Event>::new(Format::Protobuf, max_record_size);
    let mut framed = FramedRead::new(StreamReader::new(stream), decoder);
    block_on(async {
        let mut events = Vec::new();
        while let Some(item) = framed.next().await {
            match item {
                Ok(event) => events.push(*event),
                Err(err) => return (events, Some(err)),
            }
        }
        (events, None)
    })
}

fn message_event(data: Vec<u8>) -> Event {
    Event {
        r#type: Some(event::Type::Message as i32),
        message: Some(event::Message {
            agent_id: AgentId {
                value: "agent-1".into(),
            },
            executor_id: ExecutorId {
                value: "executor-1".into(),
            },
            data: data.into(),
        }),
        ..Default::default()
    }
}

fn split_at_points(data: &[u8], points: &[usize]) -> Vec<Vec<u8>> {
    let mut cuts: Vec<usize> = points.iter().map(|p| p % (data.len() + 1)).collect();
    cuts.sort_unstable();
    let mut chunks = Vec::new();
    let mut start = 0;
    for cut in cuts {
        chunks.push(data[start..cut].to_vec());
        start = cut;
    }
    chunks.push(data[start..].to_vec());
    chunks
}

#[test]
fn stout_encode_vector() {
    let mut codec = RecordIoCodec::default();
    let mut buf = BytesMut::new();
    for record in ["hello!", "", " ", "13 characters"] {
        codec.encode(record.as_bytes(), &mut buf).unwrap();
    }
    assert_eq!(&buf[..], b"6\nhello!0\n1\n 13\n13 characters");

    // And back: the empty record is skipped.
    let (records, err) = decode_chunks(RecordIoCodec::default(), vec![buf.to_vec()]);
    assert!(err.is_none());
    assert_eq!(
        records,
        ["hello!", " ", "13 characters"].map(|s| Bytes::from_static(s.as_bytes()))
    );
}

#[test]
fn stout_incremental_vector() {
    let mut codec = RecordIoCodec::default();
    let mut buf = BytesMut::new();
    for piece in ["1", "3", "\n", "13 character"] {
        buf.extend_from_slice(piece.as_bytes());
        assert!(codec.decode(&mut buf).unwrap().is_none(), "after {piece:?}");
    }
    buf.extend_from_slice(b"s");
    assert_eq!(codec.decode(&mut buf).unwrap().unwrap(), "13 characters");
    assert!(codec.decode(&mut buf).unwrap().is_none());
    assert!(codec.decode_eof(&mut buf).unwrap().is_none());
}

#[test]
fn stout_not_a_number_vector_is_sticky() {
    let mut codec = RecordIoCodec::default();
    let mut buf = BytesMut::from(&b"not a number\n"[..]);
    assert!(matches!(
        codec.decode(&mut buf),
        Err(RecordIoError::InvalidHeader(_))
    ));
    // Every later call fails, even with well-formed input.
    let mut good = BytesMut::from(&b"5\nhello"[..]);
    assert!(matches!(
        codec.decode(&mut good),
        Err(RecordIoError::Failed)
    ));
    assert!(matches!(
        codec.decode_eof(&mut good),
        Err(RecordIoError::Failed)
    ));
    assert!(codec.is_failed());
}

#[test]
fn heartbeat_record_is_byte_exact() {
    let mut buf = BytesMut::new();
    encode_record(&mut buf, br#"{"type":"HEARTBEAT"}"#);
    assert_eq!(
        &buf[..],
        br#"20
{"type":"HEARTBEAT"}"#
    );
    let (records, err) = decode_chunks(RecordIoCodec::default(), vec![buf.to_vec()]);
    assert!(err.is_none());
    assert_eq!(records, [Bytes::from_static(br#"{"type":"HEARTBEAT"}"#)]);
}

#[test]
fn docs_subscribed_example_is_truncated() {
    // docs/recordio.md announces 128 bytes, but the body is 121 bytes (and lacks a brace).
    let body = r#"{"type": "SUBSCRIBED","subscribed": {"framework_id": {"value":"12220-3440-12532-2345"},"heartbeat_interval_seconds":15.0}"#;
    assert_eq!(body.len(), 121);
    let stream = format!("128\n{body}");
    let (records, err) = decode_chunks(RecordIoCodec::default(), vec![stream.into_bytes()]);
    assert!(records.is_empty());
    assert!(
        matches!(err, Some(RecordIoError::Truncated(121))),
        "{err:?}"
    );
}

#[test]
fn events_across_one_byte_chunks() {
    let mut buf = BytesMut::new();
    encode_record(&mut buf, br#"{"type":"HEARTBEAT"}"#);
    encode_record(&mut buf, b"");
    encode_record(&mut buf, &[0u8; 300]);
    let chunks: Vec<Vec<u8>> = buf.iter().map(|b| vec![*b]).collect();
    let (records, err) = decode_chunks(RecordIoCodec::default(), chunks);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(records.len(), 2);
    assert_eq!(records[1].len(), 300);
}

#[test]
fn record_too_large_is_typed_and_sticky() {
    let (records, err) = decode_chunks(
        RecordIoCodec::new(10),
        vec![b"3\nabc".to_vec(), b"11\nhello world".to_vec()],
    );
    assert_eq!(records, [Bytes::from_static(b"abc")]);
    assert!(
        matches!(
            err,
            Some(RecordIoError::RecordTooLarge { size: 11, max: 10 })
        ),
        "{err:?}"
    );
    // A record exactly at the cap passes.
    let (records, err) = decode_chunks(RecordIoCodec::new(5), vec![b"5\nhello".to_vec()]);
    assert!(err.is_none());
    assert_eq!(records.len(), 1);
}

#[test]
fn huge_announced_lengths_fail_without_allocating() {
    for header in [
        "18446744073709551615\n",
        "9999999999999\n",
        &format!("{}\n", DEFAULT_MAX_RECORD_SIZE + 1),
    ] {
        let (_, err) = decode_chunks(RecordIoCodec::default(), vec![header.as_bytes().to_vec()]);
        assert!(
            matches!(err, Some(RecordIoError::RecordTooLarge { .. })),
            "{header:?}: {err:?}"
        );
    }
}

#[test]
fn malformed_headers_are_errors() {
    let cases: &[&[u8]] = &[
        b"abc\n",
        b"1a\nx",
        b"+5\nhello",
        b"-5\nhello",
        b"5\r\nhello",
        b" 5\nhello",
        b"\nhello",
        b"18446744073709551616\n",
        b"123456789012345678901\n",
        b"123456789012345678901234567890",
        b"\xff\n",
    ];
    for case in cases {
        let (records, err) = decode_chunks(RecordIoCodec::default(), vec![case.to_vec()]);
        assert!(records.is_empty());
        assert!(
            matches!(
                err,
                Some(RecordIoError::InvalidHeader(_) | RecordIoError::LengthOverflow(_))
            ),
            "{:?}: {err:?}",
            String::from_utf8_lossy(case)
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_records_survive_random_chunking(
        records in proptest::collection::vec(
            proptest::collection::vec(any::<u8>(), 0..300), 0..20),
        points in proptest::collection::vec(any::<usize>(), 0..40),
    ) {
        let mut buf = BytesMut::new();
        for record in &records {
            encode_record(&mut buf, record);
        }
        let chunks = split_at_points(&buf, &points);
        let (decoded, err) = decode_chunks(RecordIoCodec::default(), chunks);
        prop_assert!(err.is_none(), "{:?}", err);
        let expected: Vec<&Vec<u8>> = records.iter().filter(|r| !r.is_empty()).collect();
        prop_assert_eq!(decoded.len(), expected.len());
        for (got, want) in decoded.iter().zip(expected) {
            prop_assert_eq!(&got[..], &want[..]);
        }
    }

    #[test]
    fn truncated_streams_report_truncation(
        records in proptest::collection::vec(
            proptest::collection::vec(any::<u8>(), 1..100), 1..10),
        cut in any::<usize>(),
    ) {
        let mut buf = BytesMut::new();
        for record in &records {
            encode_record(&mut buf, record);
        }
        let cut = 1 + cut % (buf.len() - 1);
        let (decoded, err) = decode_chunks(RecordIoCodec::default(), vec![buf[..cut].to_vec()]);
        // Everything before the cut decodes; the cut record is reported as truncated unless
        // the cut falls exactly on a record boundary.
        prop_assert!(decoded.len() < records.len());
        if let Some(err) = err {
            let truncated = matches!(err, RecordIoError::Truncated(_));
            prop_assert!(truncated, "{:?}", err);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        data in proptest::collection::vec(any::<u8>(), 0..200),
        points in proptest::collection::vec(any::<usize>(), 0..10),
    ) {
        let chunks = split_at_points(&data, &points);
        let _ = decode_chunks(RecordIoCodec::new(1024), chunks);
    }

    #[test]
    fn digit_heavy_headers_never_panic(
        header in "[0-9+\\- \r]{0,30}\n?",
        body in proptest::collection::vec(any::<u8>(), 0..50),
    ) {
        let mut data = header.into_bytes();
        data.extend_from_slice(&body);
        let _ = decode_chunks(RecordIoCodec::new(64), vec![data]);
    }

    #[test]
    fn decode_chunk_yields_every_event_across_random_chunking(
        payloads in proptest::collection::vec(
            proptest::collection::vec(any::<u8>(), 0..300), 0..20),
        empty_records in proptest::collection::vec(any::<bool>(), 20),
        points in proptest::collection::vec(any::<usize>(), 0..40),
    ) {
        let events: Vec<Event> = payloads.into_iter().map(message_event).collect();
        let mut buf = BytesMut::new();
        for (event, empty_first) in events.iter().zip(&empty_records) {
            if *empty_first {
                encode_record(&mut buf, b"");
            }
            encode_record(&mut buf, &event.encode_to_vec());
        }
        let chunks = split_at_points(&buf, &points);
        let (decoded, err) = decode_events_by_chunk(DEFAULT_MAX_RECORD_SIZE, chunks.clone());
        prop_assert!(err.is_none(), "{:?}", err);
        prop_assert_eq!(&decoded, &events);
        let (framed, err) = decode_events_framed(DEFAULT_MAX_RECORD_SIZE, chunks);
        prop_assert!(err.is_none(), "{:?}", err);
        prop_assert_eq!(&framed, &events);
    }

    /// Headers padded with leading zeros up to the 20-digit limit: short ones take the decoders'
    /// inlined fast path, long ones the full header parser, and every path reads the same
    /// records, whole or split anywhere.
    #[test]
    fn zero_padded_headers_of_any_length_decode_alike(
        payloads in proptest::collection::vec(
            (proptest::collection::vec(any::<u8>(), 0..300), 0usize..18), 1..12),
        points in proptest::collection::vec(any::<usize>(), 0..20),
    ) {
        let events: Vec<Event> =
            payloads.iter().map(|(data, _)| message_event(data.clone())).collect();
        let mut buf = Vec::new();
        for (event, (_, zeros)) in events.iter().zip(&payloads) {
            let data = event.encode_to_vec();
            buf.extend_from_slice(format!("{}{}\n", "0".repeat(*zeros), data.len()).as_bytes());
            buf.extend_from_slice(&data);
        }
        let chunks = split_at_points(&buf, &points);
        let (by_chunk, err) = decode_events_by_chunk(DEFAULT_MAX_RECORD_SIZE, chunks.clone());
        prop_assert!(err.is_none(), "{:?}", err);
        prop_assert_eq!(&by_chunk, &events);
        let (framed, err) = decode_events_framed(DEFAULT_MAX_RECORD_SIZE, chunks.clone());
        prop_assert!(err.is_none(), "{:?}", err);
        prop_assert_eq!(&framed, &events);
        let (records, err) = decode_chunks(RecordIoCodec::default(), chunks);
        prop_assert!(err.is_none(), "{:?}", err);
        let raw: Vec<Vec<u8>> = events.iter().map(Message::encode_to_vec).collect();
        prop_assert_eq!(records.iter().map(|r| r.to_vec()).collect::<Vec<_>>(), raw);
    }

    #[test]
    fn decode_chunk_reports_a_cut_record_as_truncated(
        payloads in proptest::collection::vec(
            proptest::collection::vec(any::<u8>(), 0..100), 1..10),
        cut in any::<usize>(),
        points in proptest::collection::vec(any::<usize>(), 0..10),
    ) {
        let mut buf = BytesMut::new();
        let mut boundaries = vec![0];
        for payload in payloads {
            encode_record(&mut buf, &message_event(payload).encode_to_vec());
            boundaries.push(buf.len());
        }
        let cut = cut % (buf.len() + 1);
        let (_, err) = decode_events_by_chunk(
            DEFAULT_MAX_RECORD_SIZE,
            split_at_points(&buf[..cut], &points),
        );
        if boundaries.contains(&cut) {
            prop_assert!(err.is_none(), "{:?}", err);
        } else {
            let truncated = matches!(err, Some(MessageStreamError::Framing(RecordIoError::Truncated(_))));
            prop_assert!(truncated, "{:?}", err);
        }
    }

    /// Whatever the bytes, both ways of decoding agree on the events and on whether it failed,
    /// and neither panics.
    #[test]
    fn decode_chunk_agrees_with_the_decoder_on_arbitrary_bytes(
        data in proptest::collection::vec(any::<u8>(), 0..200),
        points in proptest::collection::vec(any::<usize>(), 0..10),
    ) {
        let chunks = split_at_points(&data, &points);
        let (by_chunk, chunk_err) = decode_events_by_chunk(64, chunks.clone());
        let (framed, framed_err) = decode_events_framed(64, chunks);
        prop_assert_eq!(by_chunk, framed);
        prop_assert_eq!(chunk_err.is_some(), framed_err.is_some());
    }
}
