//! Admission at the gRPC edge: how much one caller, one connection, or a crowd
//! of silent sockets can hold, so that no caller starves another.

use std::time::Duration;

use super::ConfigError;
use super::check::{count, duration};

/// Default most RPCs served at once; beyond, RESOURCE_EXHAUSTED at once.
pub const DEFAULT_MAX_CONCURRENT_CALLS: usize = 1024;
/// Default most concurrent HTTP/2 streams (calls) on one connection.
pub const DEFAULT_MAX_STREAMS_PER_CONNECTION: u32 = 128;
/// Default longest deadline honoured; a longer `grpc-timeout` is cut to it.
pub const DEFAULT_MAX_DEADLINE: Duration = Duration::from_secs(300);
/// Default most sent credential-bearing exchanges in flight (each may outlive
/// its caller until its credential is stored).
pub const DEFAULT_MAX_DETACHED: usize = 64;
/// Default time a new connection has to send its first bytes (the HTTP/2
/// preface, a TLS hello, or an admin request's headers).
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default interval of HTTP/2 keepalive pings; a peer that does not answer
/// one within [`KEEPALIVE_TIMEOUT`] is disconnected.
pub const DEFAULT_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// How long a keepalive ping may go unanswered.
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default age after which a gRPC connection is closed gracefully (GOAWAY),
/// and longest an admin connection is kept, so no idle connection is held
/// forever.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(600);

/// The validated edge limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EdgeLimits {
    /// Most RPCs served at once.
    pub max_concurrent_calls: usize,
    /// Most concurrent streams per HTTP/2 connection.
    pub max_streams_per_connection: u32,
    /// Longest deadline honoured.
    pub max_deadline: Duration,
    /// Most sent credential-bearing exchanges in flight.
    pub max_detached: usize,
    /// Time a new connection has to send its first bytes.
    pub header_read_timeout: Duration,
    /// HTTP/2 keepalive ping interval.
    pub keepalive_interval: Duration,
    /// Connection lifetime bound (gRPC: graceful close; admin: closed).
    pub idle_timeout: Duration,
}

/// The edge settings as given (see `RawConfig` for each one's meaning).
pub(super) struct RawEdge {
    pub(super) max_concurrent_calls: Option<usize>,
    pub(super) max_streams_per_connection: Option<u32>,
    pub(super) max_deadline: Option<String>,
    pub(super) max_detached: Option<usize>,
    pub(super) header_read_timeout: Option<String>,
    pub(super) keepalive_interval: Option<String>,
    pub(super) idle_timeout: Option<String>,
}

impl RawEdge {
    /// Applies defaults and bounds; `default_deadline` must fit under the cap.
    pub(super) fn validate(self, default_deadline: Duration) -> Result<EdgeLimits, ConfigError> {
        let ms = Duration::from_millis;
        Ok(EdgeLimits {
            max_concurrent_calls: count(
                "--max-concurrent-calls",
                self.max_concurrent_calls,
                DEFAULT_MAX_CONCURRENT_CALLS,
                1..=1_000_000,
            )?,
            max_streams_per_connection: count(
                "--max-streams-per-connection",
                self.max_streams_per_connection,
                DEFAULT_MAX_STREAMS_PER_CONNECTION,
                1..=100_000,
            )?,
            max_deadline: duration(
                "--max-deadline",
                self.max_deadline,
                DEFAULT_MAX_DEADLINE.max(default_deadline),
                default_deadline,
            )?,
            max_detached: count(
                "--max-detached",
                self.max_detached,
                DEFAULT_MAX_DETACHED,
                1..=100_000,
            )?,
            header_read_timeout: duration(
                "--header-read-timeout",
                self.header_read_timeout,
                DEFAULT_HEADER_READ_TIMEOUT,
                ms(100),
            )?,
            keepalive_interval: duration(
                "--keepalive-interval",
                self.keepalive_interval,
                DEFAULT_KEEPALIVE_INTERVAL,
                ms(100),
            )?,
            idle_timeout: duration(
                "--idle-timeout",
                self.idle_timeout,
                DEFAULT_IDLE_TIMEOUT,
                Duration::from_secs(1),
            )?,
        })
    }
}
