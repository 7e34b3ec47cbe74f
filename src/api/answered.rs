//! A call's answer, and what the caller must know of its writes.

use tonic::Response;
use tonic::metadata::MetadataValue;

/// Response header set when a credential the call stored reached fewer
/// replicas than the store asks for: it is stored, and the call's answer
/// holds it, but a failover may lose the stored copy.
const DURABILITY_HEADER: &str = "dcr-durability";
/// [`DURABILITY_HEADER`]'s value then.
const MAY_NOT_SURVIVE_FAILOVER: &str = "may-not-survive-failover";

/// What a call's work gave back, and whether a credential it stored may
/// not survive a failover of the store.
pub(super) struct Answered<T> {
    pub(super) value: T,
    pub(super) short: bool,
}

impl<T> Answered<T> {
    /// The reply `reply` makes of the value, with [`DURABILITY_HEADER`]
    /// when a write fell short.
    pub(super) fn respond<R>(self, reply: impl FnOnce(T) -> R) -> Response<R> {
        let mut response = Response::new(reply(self.value));
        if self.short {
            response.metadata_mut().insert(
                DURABILITY_HEADER,
                MetadataValue::from_static(MAY_NOT_SURVIVE_FAILOVER),
            );
        }
        response
    }
}
