//! Warm mode's messages: a long-lived worker task (same labels as a per-message task, minus the
//! message) receives work through scheduler→executor MESSAGE calls and answers each item with an
//! executor→scheduler MESSAGE. Both are JSON objects; bytes are base64.
//!
//! - [`WorkItem`] (scheduler → executor): `{"kind":"work","topic":..,"partition":..,"offset":..,
//!   "key":base64?,"payload":base64}`.
//! - [`WorkResult`] (executor → scheduler): `{"kind":"result","partition":..,"offset":..,
//!   "output":base64}` or `{..., "error": reason, "cause": "exit"|"timeout"|...}`.
//!
//! - A batch of items (scheduler → executor): `{"kind":"batch","items":[{..work fields..},..]}`.
//! - A batch of results (executor → scheduler): `{"kind":"results","results":[{..},..]}`.
//!
//! A worker runs up to its concurrency ([`LABEL_WARM_CONCURRENCY`], 1 when absent) items at
//! once, starting them in the order received. An item is identified by its partition and offset
//! (the worker serves one processor, hence one topic). Readers accept single and batched forms
//! alike ([`WorkItem::decode_all`], [`WorkResult::decode_all`]).

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

use mesos_sdk::v1;

use super::{
    FailureCause, InputMessage, LABEL_PROCESSOR, LABEL_PROTOCOL, Outcome, PROTOCOL_VERSION,
    ProtocolError, label,
};
use crate::processor::Processor;

/// Label on a warm worker task: `true`.
pub const LABEL_WARM: &str = "brigade-warm-worker";
/// Label on a warm worker task: how many items it runs at once (a positive integer).
pub const LABEL_WARM_CONCURRENCY: &str = "brigade-warm-concurrency";

/// One message for a warm worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkItem(pub InputMessage);

/// A warm worker's answer for one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkResult {
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
    /// The result.
    pub outcome: Outcome,
    /// Why it failed, for a failure.
    pub cause: Option<FailureCause>,
}

/// A work item as read. Strings are borrowed from the MESSAGE data where they need no
/// unescaping (base64 never does), so a batch is read without a copy of every payload.
#[derive(Deserialize)]
struct WorkWire<'a> {
    #[serde(borrow)]
    topic: Cow<'a, str>,
    partition: i32,
    offset: i64,
    #[serde(default, borrow)]
    key: Option<Cow<'a, str>>,
    #[serde(borrow)]
    payload: Cow<'a, str>,
}

/// A result as written and read (borrowed as [`WorkWire`]).
#[derive(Serialize, Deserialize)]
struct ResultWire<'a> {
    partition: i32,
    offset: i64,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    output: Option<Cow<'a, str>>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    error: Option<Cow<'a, str>>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    cause: Option<Cow<'a, str>>,
}

/// Bytes written as base64 straight into the JSON text (no intermediate string).
struct Base64Out<'a>(&'a [u8]);

impl Serialize for Base64Out<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&base64::display::Base64Display::new(self.0, &BASE64))
    }
}

/// A work item as written, borrowed from its message.
#[derive(Serialize)]
struct WorkOut<'a> {
    topic: &'a str,
    partition: i32,
    offset: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<Base64Out<'a>>,
    payload: Base64Out<'a>,
}

impl<'a> WorkOut<'a> {
    fn of(m: &'a InputMessage) -> Self {
        WorkOut {
            topic: &m.topic,
            partition: m.partition,
            offset: m.offset,
            key: m.key.as_deref().map(Base64Out),
            payload: Base64Out(&m.payload),
        }
    }
}

/// What is written (an internally tagged enum).
#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum Wire<'a> {
    Work(WorkOut<'a>),
    Result(ResultWire<'a>),
    Batch { items: Vec<WorkOut<'a>> },
    Results { results: Vec<ResultWire<'a>> },
}

/// What is read: the fields of every kind in one flat struct, sorted out by `kind` after.
/// (serde reads an internally tagged enum by first copying the whole document into an
/// intermediate tree; a batch of hundreds of items paid that on every MESSAGE.)
#[derive(Deserialize)]
struct AnyWire<'a> {
    #[serde(borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    items: Option<Vec<WorkWire<'a>>>,
    #[serde(borrow)]
    results: Option<Vec<ResultWire<'a>>>,
    #[serde(borrow)]
    topic: Option<Cow<'a, str>>,
    partition: Option<i32>,
    offset: Option<i64>,
    #[serde(borrow)]
    key: Option<Cow<'a, str>>,
    #[serde(borrow)]
    payload: Option<Cow<'a, str>>,
    #[serde(borrow)]
    output: Option<Cow<'a, str>>,
    #[serde(borrow)]
    error: Option<Cow<'a, str>>,
    #[serde(borrow)]
    cause: Option<Cow<'a, str>>,
}

impl<'a> AnyWire<'a> {
    fn read(data: &'a [u8]) -> Result<Self, ProtocolError> {
        serde_json::from_slice(data).map_err(|e| bad(e.to_string()))
    }

    /// A single work item's fields.
    fn work(self) -> Result<WorkWire<'a>, ProtocolError> {
        let missing = |field: &str| bad(format!("a work item without {field}"));
        Ok(WorkWire {
            topic: self.topic.ok_or_else(|| missing("topic"))?,
            partition: self.partition.ok_or_else(|| missing("partition"))?,
            offset: self.offset.ok_or_else(|| missing("offset"))?,
            key: self.key,
            payload: self.payload.ok_or_else(|| missing("payload"))?,
        })
    }

    /// A single result's fields.
    fn result(self) -> Result<ResultWire<'a>, ProtocolError> {
        let missing = |field: &str| bad(format!("a result without {field}"));
        Ok(ResultWire {
            partition: self.partition.ok_or_else(|| missing("partition"))?,
            offset: self.offset.ok_or_else(|| missing("offset"))?,
            output: self.output,
            error: self.error,
            cause: self.cause,
        })
    }
}

fn bad(reason: impl Into<String>) -> ProtocolError {
    ProtocolError::BadMessage(reason.into())
}

fn unbase64(s: &str) -> Result<Vec<u8>, ProtocolError> {
    BASE64.decode(s).map_err(|e| bad(format!("base64: {e}")))
}

impl WorkItem {
    fn from_wire(w: WorkWire<'_>) -> Result<Self, ProtocolError> {
        Ok(WorkItem(InputMessage {
            topic: w.topic.into_owned(),
            partition: w.partition,
            offset: w.offset,
            key: w.key.as_deref().map(unbase64).transpose()?,
            payload: unbase64(&w.payload)?,
        }))
    }

    /// The MESSAGE data.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(&Wire::Work(WorkOut::of(&self.0))).unwrap_or_default()
    }

    /// The MESSAGE data of several items (`batch`); a single item is sent as `work`.
    pub fn encode_batch(items: &[WorkItem]) -> Vec<u8> {
        Self::encode_messages(items.iter().map(|item| &item.0))
    }

    /// [`encode_batch`](Self::encode_batch) of the messages themselves (no copy of them).
    pub fn encode_messages<'a>(messages: impl IntoIterator<Item = &'a InputMessage>) -> Vec<u8> {
        let mut items: Vec<WorkOut<'a>> = messages.into_iter().map(WorkOut::of).collect();
        let wire = if items.len() == 1 {
            Wire::Work(items.remove(0))
        } else {
            Wire::Batch { items }
        };
        serde_json::to_vec(&wire).unwrap_or_default()
    }

    /// From MESSAGE data holding one item (`work`).
    pub fn decode(data: &[u8]) -> Result<Self, ProtocolError> {
        let any = AnyWire::read(data)?;
        match &*any.kind {
            "work" => Self::from_wire(any.work()?),
            other => Err(bad(format!("expected a work item, not {other:?}"))),
        }
    }

    /// From MESSAGE data holding one item (`work`) or several (`batch`).
    pub fn decode_all(data: &[u8]) -> Result<Vec<Self>, ProtocolError> {
        let any = AnyWire::read(data)?;
        match &*any.kind {
            "work" => Ok(vec![Self::from_wire(any.work()?)?]),
            "batch" => any
                .items
                .ok_or_else(|| bad("a batch without items"))?
                .into_iter()
                .map(Self::from_wire)
                .collect(),
            other => Err(bad(format!("expected work items, not {other:?}"))),
        }
    }
}

impl WorkResult {
    fn wire(&self) -> ResultWire<'_> {
        let (output, error) = match &self.outcome {
            Outcome::Output(o) => (Some(Cow::Owned(BASE64.encode(o))), None),
            Outcome::Failed { reason } => (None, Some(Cow::Borrowed(reason.as_str()))),
        };
        ResultWire {
            partition: self.partition,
            offset: self.offset,
            output,
            error,
            cause: self.cause.map(|c| Cow::Borrowed(c.as_str())),
        }
    }

    fn from_wire(w: ResultWire<'_>) -> Result<Self, ProtocolError> {
        let outcome = match (w.output, w.error) {
            (Some(o), None) => Outcome::Output(unbase64(&o)?),
            (None, Some(reason)) => Outcome::Failed {
                reason: reason.into_owned(),
            },
            _ => return Err(bad("a result has exactly one of output and error")),
        };
        Ok(WorkResult {
            partition: w.partition,
            offset: w.offset,
            outcome,
            cause: w.cause.as_deref().and_then(FailureCause::parse),
        })
    }

    /// The MESSAGE data.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(&Wire::Result(self.wire())).unwrap_or_default()
    }

    /// The MESSAGE data of several results (`results`); a single one is sent as `result`.
    pub fn encode_batch(results: &[WorkResult]) -> Vec<u8> {
        if let [one] = results {
            return one.encode();
        }
        let wire = Wire::Results {
            results: results.iter().map(WorkResult::wire).collect(),
        };
        serde_json::to_vec(&wire).unwrap_or_default()
    }

    /// From MESSAGE data holding one result (`result`).
    pub fn decode(data: &[u8]) -> Result<Self, ProtocolError> {
        let any = AnyWire::read(data)?;
        match &*any.kind {
            "result" => Self::from_wire(any.result()?),
            other => Err(bad(format!("expected a result, not {other:?}"))),
        }
    }

    /// From MESSAGE data holding one result (`result`) or several (`results`).
    pub fn decode_all(data: &[u8]) -> Result<Vec<Self>, ProtocolError> {
        let any = AnyWire::read(data)?;
        match &*any.kind {
            "result" => Ok(vec![Self::from_wire(any.result()?)?]),
            "results" => any
                .results
                .ok_or_else(|| bad("results without a list"))?
                .into_iter()
                .map(Self::from_wire)
                .collect(),
            other => Err(bad(format!("expected results, not {other:?}"))),
        }
    }
}

/// The concurrency of a warm worker task: its [`LABEL_WARM_CONCURRENCY`] label, 1 when absent
/// or unreadable.
pub fn worker_concurrency(task: &v1::TaskInfo) -> usize {
    label(task.labels.as_ref(), LABEL_WARM_CONCURRENCY)
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(1)
}

/// Makes `task` a warm worker of `processor`: labels `processor-configuration`,
/// `brigade-protocol` and [`LABEL_WARM`]; no message. Other labels are kept.
pub fn encode_worker(task: &mut v1::TaskInfo, processor: &Processor) {
    let mut labels: Vec<v1::Label> = task
        .labels
        .take()
        .map(|l| l.labels)
        .unwrap_or_default()
        .into_iter()
        .filter(|l| ![LABEL_PROCESSOR, LABEL_PROTOCOL, LABEL_WARM].contains(&l.key.as_str()))
        .collect();
    for (key, value) in [
        (LABEL_PROTOCOL, PROTOCOL_VERSION.to_string()),
        (LABEL_PROCESSOR, processor.to_json()),
        (LABEL_WARM, "true".to_string()),
    ] {
        labels.push(v1::Label {
            key: key.to_string(),
            value: Some(value),
        });
    }
    task.labels = Some(v1::Labels { labels });
}

/// Whether `task` is a warm worker.
pub fn is_worker(task: &v1::TaskInfo) -> bool {
    label(task.labels.as_ref(), LABEL_WARM) == Some("true")
}

/// The processor of a warm worker task.
pub fn decode_worker(task: &v1::TaskInfo) -> Result<Processor, ProtocolError> {
    let text = label(task.labels.as_ref(), LABEL_PROCESSOR)
        .ok_or(ProtocolError::MissingLabel(LABEL_PROCESSOR))?;
    Processor::from_json(text).map_err(ProtocolError::InvalidProcessor)
}
