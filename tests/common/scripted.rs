//! A scripted HTTP/1.1 server for tests: binds 127.0.0.1:0, records every request and answers
//! with whatever the test's handler returns, including endless or broken streaming bodies.
//!
//! Use it only to provoke what a real Mesos peer will not do on demand (307 chains, 503s, silent
//! or cut streams, 401s, slow answers). Include it with
//! `#[path = "common/scripted.rs"] mod scripted;`.

#![allow(dead_code)]

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// One request the server received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// HTTP method.
    pub method: http::Method,
    /// Path and query.
    pub path: String,
    /// Request headers.
    pub headers: HeaderMap,
    /// Whole request body.
    pub body: Bytes,
}

impl Recorded {
    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
}

/// Something to put on a streaming answer.
#[derive(Debug)]
pub enum Chunk {
    /// Raw bytes, sent as one chunk.
    Data(Bytes),
    /// Break the connection without finishing the body.
    Abort,
}

/// The sending end of a streaming answer. Dropping it ends the body cleanly.
#[derive(Debug, Clone)]
pub struct StreamHandle {
    tx: mpsc::UnboundedSender<Chunk>,
}

impl StreamHandle {
    /// Sends one RecordIO record holding `data`; false once the client has gone.
    pub fn record(&self, data: impl AsRef<[u8]>) -> bool {
        let data = data.as_ref();
        let mut buf = BytesMut::new();
        buf.extend_from_slice(format!("{}\n", data.len()).as_bytes());
        buf.extend_from_slice(data);
        self.raw(buf.freeze())
    }

    /// Sends raw bytes; false once the client has gone.
    pub fn raw(&self, data: impl Into<Bytes>) -> bool {
        self.tx.send(Chunk::Data(data.into())).is_ok()
    }

    /// Breaks the connection mid-body.
    pub fn abort(&self) {
        let _ = self.tx.send(Chunk::Abort);
    }

    /// Whether the client is gone (the answer was dropped).
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// What the server answers.
pub enum Reply {
    /// A complete answer.
    Full {
        /// Status.
        status: StatusCode,
        /// Extra headers.
        headers: HeaderMap,
        /// Body.
        body: Bytes,
    },
    /// A chunked answer fed through a [`StreamHandle`].
    Stream {
        /// Status.
        status: StatusCode,
        /// Extra headers.
        headers: HeaderMap,
        /// Source of the body.
        chunks: mpsc::UnboundedReceiver<Chunk>,
    },
}

impl Reply {
    /// An answer with `status` and a `text/plain` body.
    pub fn text(status: u16, text: &str) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        Reply::Full {
            status: StatusCode::from_u16(status).unwrap(),
            headers,
            body: Bytes::copy_from_slice(text.as_bytes()),
        }
    }

    /// An answer with `status`, no body.
    pub fn empty(status: u16) -> Self {
        Reply::Full {
            status: StatusCode::from_u16(status).unwrap(),
            headers: HeaderMap::new(),
            body: Bytes::new(),
        }
    }

    /// An answer with `status` and a body of `content_type`.
    pub fn body(status: u16, content_type: &str, body: impl Into<Bytes>) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_str(content_type).unwrap(),
        );
        Reply::Full {
            status: StatusCode::from_u16(status).unwrap(),
            headers,
            body: body.into(),
        }
    }

    /// A 307 to `location`.
    pub fn redirect(location: &str) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::LOCATION,
            HeaderValue::from_str(location).unwrap(),
        );
        Reply::Full {
            status: StatusCode::TEMPORARY_REDIRECT,
            headers,
            body: Bytes::new(),
        }
    }

    /// A 200 chunked stream of `content_type` with an optional `Mesos-Stream-Id`, and its handle.
    pub fn stream(content_type: &str, stream_id: Option<&str>) -> (Self, StreamHandle) {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_str(content_type).unwrap(),
        );
        if let Some(id) = stream_id {
            headers.insert("Mesos-Stream-Id", HeaderValue::from_str(id).unwrap());
        }
        (
            Reply::Stream {
                status: StatusCode::OK,
                headers,
                chunks: rx,
            },
            StreamHandle { tx },
        )
    }
}

type Handler =
    Arc<dyn Fn(Recorded) -> std::pin::Pin<Box<dyn Future<Output = Reply> + Send>> + Send + Sync>;

/// The server. Dropping it stops accepting (open connections finish on their own).
pub struct ScriptedServer {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Recorded>>>,
    accept: JoinHandle<()>,
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl ScriptedServer {
    /// Starts a server answering every request with `handler`.
    pub async fn start<F, Fut>(handler: F) -> Self
    where
        F: Fn(Recorded) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Reply> + Send + 'static,
    {
        let handler: Handler = Arc::new(move |req| Box::pin(handler(req)));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = requests.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let handler = handler.clone();
                let recorded = recorded.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let handler = handler.clone();
                        let recorded = recorded.clone();
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body
                                .collect()
                                .await
                                .map(|c| c.to_bytes())
                                .unwrap_or_default();
                            let rec = Recorded {
                                method: parts.method,
                                path: parts
                                    .uri
                                    .path_and_query()
                                    .map(|p| p.as_str().to_owned())
                                    .unwrap_or_default(),
                                headers: parts.headers,
                                body,
                            };
                            recorded.lock().unwrap().push(rec.clone());
                            let reply = handler(rec).await;
                            Ok::<_, Infallible>(into_response(reply))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), service)
                        .await;
                });
            }
        });
        Self {
            addr,
            requests,
            accept,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `127.0.0.1:<port>`.
    pub fn authority(&self) -> String {
        self.addr.to_string()
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }
}

fn into_response(reply: Reply) -> Response<BoxBody<Bytes, std::io::Error>> {
    let (status, headers, body) = match reply {
        Reply::Full {
            status,
            headers,
            body,
        } => (
            status,
            headers,
            Full::new(body).map_err(|never| match never {}).boxed(),
        ),
        Reply::Stream {
            status,
            headers,
            chunks,
        } => {
            let frames = tokio_stream_from(chunks).map(|chunk| match chunk {
                Chunk::Data(data) => Ok(Frame::data(data)),
                Chunk::Abort => Err(std::io::Error::other("scripted abort")),
            });
            (status, headers, BodyExt::boxed(StreamBody::new(frames)))
        }
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

fn tokio_stream_from(
    mut rx: mpsc::UnboundedReceiver<Chunk>,
) -> impl futures::Stream<Item = Chunk> + Send + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
