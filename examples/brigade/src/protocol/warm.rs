//! Warm mode's messages: a long-lived worker task (same labels as a per-message task, minus the
//! message) receives work through scheduler→executor MESSAGE calls and answers each item with an
//! executor→scheduler MESSAGE. Both are JSON objects; bytes are base64.
//!
//! - [`WorkItem`] (scheduler → executor): `{"kind":"work","topic":..,"partition":..,"offset":..,
//!   "key":base64?,"payload":base64}`.
//! - [`WorkResult`] (executor → scheduler): `{"kind":"result","partition":..,"offset":..,
//!   "output":base64}` or `{..., "error": reason, "cause": "exit"|"timeout"|...}`.
//!
//! A worker runs one item at a time, in the order received. An item is identified by its
//! partition and offset (the worker serves one processor, hence one topic).

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

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum Wire {
    Work {
        topic: String,
        partition: i32,
        offset: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
        payload: String,
    },
    Result {
        partition: i32,
        offset: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        output: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cause: Option<String>,
    },
}

fn bad(reason: impl Into<String>) -> ProtocolError {
    ProtocolError::BadMessage(reason.into())
}

fn unbase64(s: &str) -> Result<Vec<u8>, ProtocolError> {
    BASE64.decode(s).map_err(|e| bad(format!("base64: {e}")))
}

impl WorkItem {
    /// The MESSAGE data.
    pub fn encode(&self) -> Vec<u8> {
        let m = &self.0;
        let wire = Wire::Work {
            topic: m.topic.clone(),
            partition: m.partition,
            offset: m.offset,
            key: m.key.as_ref().map(|k| BASE64.encode(k)),
            payload: BASE64.encode(&m.payload),
        };
        serde_json::to_vec(&wire).unwrap_or_default()
    }

    /// From MESSAGE data.
    pub fn decode(data: &[u8]) -> Result<Self, ProtocolError> {
        match serde_json::from_slice(data).map_err(|e| bad(e.to_string()))? {
            Wire::Work {
                topic,
                partition,
                offset,
                key,
                payload,
            } => Ok(WorkItem(InputMessage {
                topic,
                partition,
                offset,
                key: key.as_deref().map(unbase64).transpose()?,
                payload: unbase64(&payload)?,
            })),
            Wire::Result { .. } => Err(bad("expected a work item, got a result")),
        }
    }
}

impl WorkResult {
    /// The MESSAGE data.
    pub fn encode(&self) -> Vec<u8> {
        let (output, error) = match &self.outcome {
            Outcome::Output(o) => (Some(BASE64.encode(o)), None),
            Outcome::Failed { reason } => (None, Some(reason.clone())),
        };
        let wire = Wire::Result {
            partition: self.partition,
            offset: self.offset,
            output,
            error,
            cause: self.cause.map(|c| c.as_str().to_string()),
        };
        serde_json::to_vec(&wire).unwrap_or_default()
    }

    /// From MESSAGE data.
    pub fn decode(data: &[u8]) -> Result<Self, ProtocolError> {
        match serde_json::from_slice(data).map_err(|e| bad(e.to_string()))? {
            Wire::Result {
                partition,
                offset,
                output,
                error,
                cause,
            } => {
                let outcome = match (output, error) {
                    (Some(o), None) => Outcome::Output(unbase64(&o)?),
                    (None, Some(reason)) => Outcome::Failed { reason },
                    _ => return Err(bad("a result has exactly one of output and error")),
                };
                Ok(WorkResult {
                    partition,
                    offset,
                    outcome,
                    cause: cause.as_deref().and_then(FailureCause::parse),
                })
            }
            Wire::Work { .. } => Err(bad("expected a result, got a work item")),
        }
    }
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
