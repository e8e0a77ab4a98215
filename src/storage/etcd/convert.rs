//! Mapping between the SDK's store types and `etcd-client`'s: key-values, compares, operations,
//! transaction answers, and etcd's errors onto the typed [`Error`].

use bytes::Bytes;
use etcd_client as ec;
use tonic::Code;

use crate::storage::Error;
use crate::storage::types::{
    Compare, CompareOp, CompareTarget, KeyValue, LeaseId, Op, OpResult, Txn, TxnResponse,
};

/// A key from etcd as a string (the SDK writes only UTF-8 keys; a foreign non-UTF-8 key is
/// converted lossily rather than failing a whole range or watch).
pub(super) fn key_string(key: &[u8]) -> String {
    String::from_utf8_lossy(key).into_owned()
}

pub(super) fn kv(kv: &ec::KeyValue) -> KeyValue {
    KeyValue {
        key: key_string(kv.key()),
        value: Bytes::copy_from_slice(kv.value()),
        create_revision: kv.create_revision(),
        mod_revision: kv.mod_revision(),
        version: kv.version(),
        lease: (kv.lease() != 0).then_some(LeaseId(kv.lease())),
    }
}

fn compare_op(op: CompareOp) -> ec::CompareOp {
    match op {
        CompareOp::Equal => ec::CompareOp::Equal,
        CompareOp::NotEqual => ec::CompareOp::NotEqual,
        CompareOp::Greater => ec::CompareOp::Greater,
        CompareOp::Less => ec::CompareOp::Less,
    }
}

fn compare(c: &Compare) -> ec::Compare {
    let key = c.key.as_bytes().to_vec();
    let op = compare_op(c.op);
    match &c.target {
        CompareTarget::Value(v) => ec::Compare::value(key, op, v.to_vec()),
        CompareTarget::Version(v) => ec::Compare::version(key, op, *v),
        CompareTarget::CreateRevision(v) => ec::Compare::create_revision(key, op, *v),
        CompareTarget::ModRevision(v) => ec::Compare::mod_revision(key, op, *v),
        CompareTarget::Lease(v) => ec::Compare::lease(key, op, *v),
    }
}

fn op(op: &Op) -> ec::TxnOp {
    match op {
        Op::Put { key, value, lease } => {
            let options = lease.map(|l| ec::PutOptions::new().with_lease(l.0));
            ec::TxnOp::put(key.as_bytes(), value.to_vec(), options)
        }
        Op::Delete { key } => ec::TxnOp::delete(key.as_bytes(), None),
        Op::Get { key } => ec::TxnOp::get(key.as_bytes(), None),
        Op::Txn(inner) => ec::TxnOp::txn(txn(inner)),
    }
}

pub(super) fn txn(t: &Txn) -> ec::Txn {
    ec::Txn::new()
        .when(t.compares.iter().map(compare).collect::<Vec<_>>())
        .and_then(t.then.iter().map(op).collect::<Vec<_>>())
        .or_else(t.otherwise.iter().map(op).collect::<Vec<_>>())
}

pub(super) fn txn_response(response: &ec::TxnResponse, revision: i64) -> TxnResponse {
    let results = response
        .op_responses()
        .iter()
        .map(|r| match r {
            ec::TxnOpResponse::Put(_) => OpResult::Put,
            ec::TxnOpResponse::Delete(d) => OpResult::Delete {
                deleted: d.deleted(),
            },
            ec::TxnOpResponse::Get(g) => OpResult::Get(g.kvs().first().map(kv)),
            ec::TxnOpResponse::Txn(inner) => OpResult::Txn(txn_response(inner, revision)),
        })
        .collect();
    TxnResponse {
        succeeded: response.succeeded(),
        revision,
        results,
    }
}

/// The first lease a put of `ops` attaches (to name it in a lease-not-found error).
pub(super) fn first_lease(ops: &[Op]) -> Option<i64> {
    ops.iter().find_map(|op| match op {
        Op::Put { lease: Some(l), .. } => Some(l.0),
        Op::Txn(inner) => first_lease(&inner.then).or_else(|| first_lease(&inner.otherwise)),
        _ => None,
    })
}

/// What a failed request was about, to fill the typed error's fields.
#[derive(Debug, Default, Clone)]
pub(super) struct Context<'a> {
    pub key: Option<&'a str>,
    pub lease: Option<i64>,
    pub revision: Option<i64>,
}

/// Maps an `etcd-client` error onto the typed [`Error`].
pub(super) fn error(e: ec::Error, context: Context<'_>) -> Error {
    match e {
        ec::Error::GRpcStatus(status) => status_error(&status, context),
        ec::Error::TransportError(e) => Error::Unavailable {
            reason: format!("transport: {e}"),
        },
        ec::Error::IoError(e) => Error::Unavailable {
            reason: format!("io: {e}"),
        },
        ec::Error::LeaseKeepAliveError(reason) if reason.contains("not found") => {
            Error::LeaseNotFound {
                lease: context.lease.unwrap_or_default(),
            }
        }
        ec::Error::InvalidUri(e) => Error::Config {
            reason: format!("invalid endpoint: {e}"),
        },
        other => Error::Unavailable {
            reason: other.to_string(),
        },
    }
}

fn status_error(status: &tonic::Status, context: Context<'_>) -> Error {
    let message = status.message();
    let key = || context.key.unwrap_or_default().to_owned();
    if message.contains("lease not found") {
        return Error::LeaseNotFound {
            lease: context.lease.unwrap_or_default(),
        };
    }
    if message.contains("required revision has been compacted") {
        let requested = context.revision.unwrap_or_default();
        return Error::Compacted {
            requested,
            compacted: requested,
        };
    }
    if message.contains("duplicate key") {
        return Error::InvalidKey {
            key: key(),
            reason: message.to_owned(),
        };
    }
    if message.contains("too large") {
        return Error::InvalidValue {
            key: key(),
            reason: message.to_owned(),
        };
    }
    match status.code() {
        Code::Unauthenticated | Code::PermissionDenied => Error::Unauthenticated {
            reason: message.to_owned(),
        },
        Code::InvalidArgument
            if message.contains("authentication failed")
                || message.contains("user name is empty")
                || message.contains("invalid auth token") =>
        {
            Error::Unauthenticated {
                reason: message.to_owned(),
            }
        }
        Code::Unavailable | Code::Aborted | Code::Cancelled | Code::Unknown | Code::Internal => {
            Error::Unavailable {
                reason: format!("{:?}: {message}", status.code()),
            }
        }
        Code::DeadlineExceeded => Error::Unavailable {
            reason: format!("deadline exceeded: {message}"),
        },
        _ => Error::Rejected {
            reason: format!("{:?}: {message}", status.code()),
        },
    }
}

/// Whether the request surely never reached a server (the connection could not be made), so
/// that sending it again cannot apply it twice.
pub(super) fn not_sent(e: &ec::Error) -> bool {
    match e {
        ec::Error::TransportError(_) => true,
        ec::Error::GRpcStatus(status) => {
            status.code() == Code::Unavailable
                && (status.message().contains("connect") || status.message().contains("refused"))
        }
        _ => false,
    }
}
