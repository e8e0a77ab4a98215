//! Typed values on top of the byte store: serde JSON and prost messages. A stored value that
//! does not decode gives [`Error::Decode`] naming the key, never a panic.

use async_trait::async_trait;
use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::types::{Compare, KeyValue, LeaseId, Op, Txn};
use super::{Error, Result, Store};

/// Decodes a key-value's bytes as JSON.
pub fn decode_json<T: DeserializeOwned>(kv: &KeyValue) -> Result<T> {
    serde_json::from_slice(&kv.value).map_err(|e| Error::Decode {
        key: kv.key.clone(),
        reason: e.to_string(),
    })
}

/// Decodes a key-value's bytes as a protobuf message.
pub fn decode_proto<M: prost::Message + Default>(kv: &KeyValue) -> Result<M> {
    M::decode(kv.value.as_ref()).map_err(|e| Error::Decode {
        key: kv.key.clone(),
        reason: e.to_string(),
    })
}

/// Encodes a value as JSON bytes.
pub fn encode_json<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<Bytes> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| Error::InvalidValue {
            key: key.to_owned(),
            reason: e.to_string(),
        })
}

/// Typed reads and writes, and create-if-absent, for every [`Store`].
#[async_trait]
pub trait StoreExt: Store {
    /// Reads and decodes a JSON value.
    async fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        self.get(key).await?.map(|kv| decode_json(&kv)).transpose()
    }

    /// Encodes and writes a JSON value; answers the revision.
    async fn put_json<T: Serialize + Sync + ?Sized>(
        &self,
        key: &str,
        value: &T,
        lease: Option<LeaseId>,
    ) -> Result<i64> {
        let bytes = encode_json(key, value)?;
        self.put(key, bytes, lease).await
    }

    /// Reads and decodes a protobuf message.
    async fn get_proto<M: prost::Message + Default>(&self, key: &str) -> Result<Option<M>> {
        self.get(key).await?.map(|kv| decode_proto(&kv)).transpose()
    }

    /// Encodes and writes a protobuf message; answers the revision.
    async fn put_proto<M: prost::Message>(
        &self,
        key: &str,
        message: &M,
        lease: Option<LeaseId>,
    ) -> Result<i64> {
        self.put(key, Bytes::from(message.encode_to_vec()), lease)
            .await
    }

    /// Writes `key` only if it does not exist; [`Error::CompareFailed`] if it does. Answers the
    /// revision (the key's create revision).
    async fn create(&self, key: &str, value: Bytes, lease: Option<LeaseId>) -> Result<i64> {
        let txn = Txn::new().when(Compare::absent(key)).and_then(Op::Put {
            key: key.to_owned(),
            value,
            lease,
        });
        let response = self.txn(txn).await?;
        if response.succeeded {
            Ok(response.revision)
        } else {
            Err(Error::CompareFailed {
                key: key.to_owned(),
            })
        }
    }
}

impl<S: Store + ?Sized> StoreExt for S {}
