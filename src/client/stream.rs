//! Subscription streams: one dedicated HTTP/1.1 connection per subscription (plain TCP or TLS) and
//! the RecordIO decoding of its endless body, into raw records or typed events.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::TryStreamExt;
use futures::stream::BoxStream;
use http::{Request, Response};
use http_body_util::{BodyDataStream, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use prost::{Message, Name};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_util::codec::FramedRead;
use tokio_util::io::StreamReader;

use super::AttemptFailure;
use super::endpoint::Endpoint;
use super::error::{Error, ErrorKind};
use crate::codec::Format;
use crate::recordio::{MessageDecoder, MessageStreamError, RecordIoCodec, RecordIoError};

/// Connects to `endpoint` on a new connection, sends `request` and waits (at most
/// `header_timeout`) for the answer's headers.
pub(super) async fn open(
    endpoint: &Endpoint,
    request: Request<Full<Bytes>>,
    connect_timeout: Duration,
    header_timeout: Duration,
    tls_config: Arc<rustls::ClientConfig>,
) -> Result<Response<Incoming>, AttemptFailure> {
    let host = endpoint.authority.host();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
        .to_owned();
    let port = endpoint
        .authority
        .port_u16()
        .unwrap_or(if endpoint.is_https() { 443 } else { 80 });
    let connect = async {
        let tcp = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|err| {
                Error::new(
                    ErrorKind::Io,
                    format!("connect to {host}:{port} failed: {err}"),
                )
                .with_source(err)
            })?;
        // Latency matters more than throughput for calls and events.
        let _ = tcp.set_nodelay(true);
        Ok::<_, Error>(tcp)
    };
    let tcp = match tokio::time::timeout(connect_timeout, connect).await {
        Err(_) => {
            return Err(AttemptFailure::Unreachable(Error::new(
                ErrorKind::Timeout,
                format!("connect to {host}:{port} timed out after {connect_timeout:?}"),
            )));
        }
        Ok(Err(err)) => return Err(AttemptFailure::Unreachable(err)),
        Ok(Ok(tcp)) => tcp,
    };
    if endpoint.is_https() {
        let server_name = ServerName::try_from(host.clone()).map_err(|err| {
            AttemptFailure::Fatal(
                Error::new(
                    ErrorKind::Config,
                    format!("'{host}' is not a TLS server name"),
                )
                .with_source(err),
            )
        })?;
        let connector = tokio_rustls::TlsConnector::from(tls_config);
        let tls = match tokio::time::timeout(connect_timeout, connector.connect(server_name, tcp))
            .await
        {
            Err(_) => {
                return Err(AttemptFailure::Unreachable(Error::new(
                    ErrorKind::Timeout,
                    format!("TLS handshake with {host}:{port} timed out"),
                )));
            }
            Ok(Err(err)) => {
                return Err(AttemptFailure::Fatal(
                    Error::new(
                        ErrorKind::Io,
                        format!("TLS handshake with {host}:{port} failed"),
                    )
                    .with_source(err),
                ));
            }
            Ok(Ok(tls)) => tls,
        };
        send(tls, request, header_timeout).await
    } else {
        send(tcp, request, header_timeout).await
    }
}

async fn send<S>(
    io: S,
    request: Request<Full<Bytes>>,
    header_timeout: Duration,
) -> Result<Response<Incoming>, AttemptFailure>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|err| {
            AttemptFailure::Fatal(
                Error::new(ErrorKind::Io, "HTTP handshake failed").with_source(err),
            )
        })?;
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::debug!(error = %err, "subscription connection ended");
        }
    });
    match tokio::time::timeout(header_timeout, sender.send_request(request)).await {
        Err(_) => Err(AttemptFailure::Fatal(Error::new(
            ErrorKind::Timeout,
            format!("no answer to SUBSCRIBE within {header_timeout:?}"),
        ))),
        Ok(Err(err)) => Err(AttemptFailure::Fatal(
            Error::new(ErrorKind::Io, "SUBSCRIBE request failed").with_source(err),
        )),
        Ok(Ok(response)) => Ok(response),
    }
}

/// Decodes a subscription body into RecordIO records. The stream ends after its first error.
pub(super) fn records(
    body: Incoming,
    max_record_size: usize,
) -> BoxStream<'static, Result<Bytes, Error>> {
    let bytes = BodyDataStream::new(body).map_err(std::io::Error::other);
    let reader = StreamReader::new(bytes);
    end_after_error(
        FramedRead::new(reader, RecordIoCodec::new(max_record_size))
            .map(|item| item.map_err(recordio_error)),
    )
}

/// Decodes a subscription body into `M`s, each record in place in the body's own chunks
/// ([`MessageDecoder::decode_chunk`]). The stream ends after its first error.
pub(super) fn events<M>(
    body: Incoming,
    format: Format,
    max_record_size: usize,
) -> BoxStream<'static, Result<Box<M>, Error>>
where
    M: Message + Name + Default + Send + 'static,
{
    struct State<M> {
        body: BodyDataStream<Incoming>,
        decoder: MessageDecoder<M>,
        chunk: Bytes,
        done: bool,
    }
    let state = State {
        body: BodyDataStream::new(body),
        decoder: MessageDecoder::<M>::new(format, max_record_size),
        chunk: Bytes::new(),
        done: false,
    };
    futures::stream::unfold(state, |mut state| async move {
        if state.done {
            return None;
        }
        loop {
            match state.decoder.decode_chunk(&mut state.chunk) {
                Ok(Some(message)) => return Some((Ok(message), state)),
                Ok(None) => {}
                Err(err) => {
                    state.done = true;
                    return Some((Err(message_stream_error(err)), state));
                }
            }
            match state.body.next().await {
                Some(Ok(chunk)) => state.chunk = chunk,
                Some(Err(err)) => {
                    state.done = true;
                    let err = RecordIoError::Io(std::io::Error::other(err));
                    return Some((Err(recordio_error(err)), state));
                }
                None => {
                    state.done = true;
                    return match state.decoder.finish() {
                        Ok(()) => None,
                        Err(err) => Some((Err(message_stream_error(err)), state)),
                    };
                }
            }
        }
    })
    .boxed()
}

fn message_stream_error(err: MessageStreamError) -> Error {
    match err {
        MessageStreamError::Framing(err) => recordio_error(err),
        MessageStreamError::Decode(err) => {
            Error::new(ErrorKind::Protocol, format!("undecodable event: {err}")).with_source(err)
        }
    }
}

fn end_after_error<T: Send + 'static>(
    items: impl futures::Stream<Item = Result<T, Error>> + Send + 'static,
) -> BoxStream<'static, Result<T, Error>> {
    items
        .scan(false, |failed, item| {
            let out = if *failed {
                None
            } else {
                *failed = item.is_err();
                Some(item)
            };
            futures::future::ready(out)
        })
        .boxed()
}

fn recordio_error(err: RecordIoError) -> Error {
    match err {
        RecordIoError::Io(io) => Error::new(
            ErrorKind::SubscriptionLost,
            format!("event stream broke: {io}"),
        )
        .with_source(io),
        RecordIoError::Truncated(pending) => Error::new(
            ErrorKind::SubscriptionLost,
            format!("event stream cut inside a record ({pending} bytes pending)"),
        ),
        other => Error::new(ErrorKind::Protocol, "event stream framing error").with_source(other),
    }
}
