//! Scripted faults and request counters, for tests and demos of the gateway's
//! resilience. Dev upstream only: nothing like this exists in the gateway.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use serde::{Deserialize, Serialize};

/// How many `traceparent` headers [`Stats`] keeps.
const TRACEPARENTS_KEPT: usize = 256;

/// The routes faults and counters are kept for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    /// `POST /oauth/register`.
    Register,
    /// `GET /oauth/register/{id}`.
    Get,
    /// `PUT /oauth/register/{id}`.
    Update,
    /// `DELETE /oauth/register/{id}`.
    Delete,
    /// `POST /oauth/register/{id}/secret`.
    RotateSecret,
    /// `DELETE /oauth/register/{id}/registration-token`.
    RotateToken,
    /// `POST /oauth/token`.
    Token,
    /// `POST /oauth/introspect`.
    Introspect,
    /// Matches every route (in a fault only).
    Any,
}

/// What a fault does.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultKind {
    /// Answer `status` without processing the request, with `Retry-After` when
    /// given (seconds or an HTTP-date) and `body` (default: a JSON error).
    Status {
        /// The HTTP status.
        status: u16,
        /// The `Retry-After` header value.
        #[serde(default)]
        retry_after: Option<String>,
        /// The body.
        #[serde(default)]
        body: Option<String>,
    },
    /// Wait this long, then process and answer normally.
    Delay {
        /// Milliseconds.
        ms: u64,
    },
    /// Process the request, then close the connection without answering: a lost
    /// response.
    DropAfterProcessing,
    /// Process the request, then answer 200 with a body that is not JSON.
    GarbageBody,
    /// Process the request, send half the answer, stall this long, send the rest.
    StallMidBody {
        /// Milliseconds.
        ms: u64,
    },
}

/// One scripted fault: on `route`, the next `times` requests (all, when unset)
/// get `kind`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Fault {
    /// Where it applies.
    pub route: Route,
    /// How many requests it applies to; unset until cleared.
    #[serde(default)]
    pub times: Option<u32>,
    /// What it does.
    #[serde(flatten)]
    pub kind: FaultKind,
}

/// Counters for assertions.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Requests received per route, faulted ones included.
    pub requests: HashMap<Route, u64>,
    /// Clients ever registered.
    pub clients_created: usize,
    /// Requests being handled now (a dropped connection ends its request).
    pub in_flight: usize,
    /// The most requests handled at once since the start or the last
    /// [`crate::DevUpstream::reset_peak`], recorded as each arrives (no
    /// sampling can miss a short overlap).
    pub peak_in_flight: usize,
    /// Requests that arrived over HTTP/2.
    pub http2_requests: u64,
    /// The `traceparent` headers of the latest DCR requests (up to 256).
    pub traceparents: Vec<String>,
}

/// The fault script and counters.
#[derive(Debug, Default)]
pub struct Faults {
    script: Mutex<Vec<Fault>>,
    requests: Mutex<HashMap<Route, u64>>,
    in_flight: AtomicUsize,
    peak_in_flight: AtomicUsize,
    http2_requests: AtomicU64,
    traceparents: Mutex<VecDeque<String>>,
}

/// Counts a request as in flight until dropped.
pub struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Faults {
    /// Adds a fault after those already scripted (one for zero requests is a
    /// no-op).
    pub fn inject(&self, fault: Fault) {
        if fault.times != Some(0) {
            self.script
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(fault);
        }
    }

    /// Removes every fault.
    pub fn clear(&self) {
        self.script
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Counts a request on `route` and returns the fault it gets, if any.
    pub fn on_request(&self, route: Route) -> (InFlight<'_>, Option<FaultKind>) {
        *self
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(route)
            .or_default() += 1;
        let now = self.in_flight.fetch_add(1, Ordering::AcqRel) + 1;
        self.peak_in_flight.fetch_max(now, Ordering::AcqRel);
        let guard = InFlight(&self.in_flight);
        let mut script = self.script.lock().unwrap_or_else(|e| e.into_inner());
        let Some(i) = script
            .iter()
            .position(|f| f.route == route || f.route == Route::Any)
        else {
            return (guard, None);
        };
        let kind = script[i].kind.clone();
        match &mut script[i].times {
            Some(1) => {
                script.remove(i);
            }
            Some(n) => *n -= 1,
            None => {}
        }
        (guard, Some(kind))
    }

    /// Keeps a request's `traceparent` (the latest 256).
    pub fn record_traceparent(&self, value: &str) {
        let mut seen = self.traceparents.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() == TRACEPARENTS_KEPT {
            seen.pop_front();
        }
        seen.push_back(value.to_owned());
    }

    /// Starts the peak again from the requests in flight now.
    pub fn reset_peak(&self) {
        let now = self.in_flight.load(Ordering::Acquire);
        self.peak_in_flight.store(now, Ordering::Release);
    }

    /// Counts a request that arrived over HTTP/2.
    pub fn count_http2(&self) {
        self.http2_requests.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn stats(&self, clients_created: usize) -> Stats {
        Stats {
            requests: self
                .requests
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            clients_created,
            in_flight: self.in_flight.load(Ordering::Acquire),
            peak_in_flight: self.peak_in_flight.load(Ordering::Acquire),
            http2_requests: self.http2_requests.load(Ordering::Relaxed),
            traceparents: self
                .traceparents
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .cloned()
                .collect(),
        }
    }
}
