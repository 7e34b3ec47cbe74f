//! Per-namespace limits on what one caller may hold: managed names (checked
//! when a name is first ensured) and open WatchClient streams (counted here,
//! per process, since streams are).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::Managed;
use crate::dcr::DcrError;
use crate::telemetry::Metrics;

/// Open watch streams by namespace.
#[derive(Clone, Default)]
pub struct WatchCounts(Arc<Mutex<HashMap<String, usize>>>);

/// One open watch stream, counted until dropped.
pub struct WatchSlot {
    counts: WatchCounts,
    namespace: String,
    metrics: Arc<Metrics>,
}

impl Drop for WatchSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = counts.get_mut(&self.namespace) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.namespace);
            }
        }
        self.metrics.managed().watch_open(-1);
    }
}

impl Managed {
    /// Counts one more watch stream in `namespace`, or refuses it when the
    /// namespace holds its limit.
    pub fn watch_slot(&self, namespace: &str) -> Result<WatchSlot, DcrError> {
        let max = self.inner.limits.watches_per_namespace;
        let counts = &self.inner.watches;
        {
            let mut open = counts.0.lock().unwrap_or_else(|e| e.into_inner());
            let n = open.entry(namespace.to_owned()).or_default();
            if *n >= max {
                drop(open);
                self.inner.metrics.managed().refused("watches");
                return Err(DcrError::LimitReached {
                    what: "open WatchClient streams",
                    max,
                    setting: "--max-watches-per-namespace",
                });
            }
            *n += 1;
        }
        self.inner.metrics.managed().watch_open(1);
        Ok(WatchSlot {
            counts: counts.clone(),
            namespace: namespace.to_owned(),
            metrics: self.inner.metrics.clone(),
        })
    }

    /// Refuses a new name in `namespace` when it holds its limit of managed
    /// names (counted from the store's index, no record opened).
    pub(super) async fn check_room_for_name(&self, namespace: &str) -> Result<(), DcrError> {
        let max = self.inner.limits.names_per_namespace;
        let names = self.names_in(namespace).await?;
        if names.len() >= max {
            self.inner.metrics.managed().refused("names");
            return Err(DcrError::LimitReached {
                what: "managed clients",
                max,
                setting: "--max-managed-clients-per-namespace",
            });
        }
        Ok(())
    }
}
