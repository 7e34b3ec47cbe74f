//! A declared client's token files: each token asked for by its loop, kept
//! fresh by the token cache while the loop lives, and written whenever the
//! cache holds a new one (the cache wakes the loop), never rewritten
//! unchanged.

use std::time::Instant;

use super::follower::{Follower, STEP_DEADLINE};
use crate::managed::deliver::{self, Written};

impl Follower {
    /// Writes each token file with the token held now (asking for one when
    /// none is held); `false` when one could not be delivered.
    pub(super) async fn deliver_tokens(&mut self) -> bool {
        let shared = self.shared().clone();
        let client = self.client().clone();
        let Some(dir) = shared.credentials.clone() else {
            return true;
        };
        if client.tokens.is_empty() {
            return true;
        }
        let managed = &shared.managed;
        let metrics = shared.metrics.managed();
        managed.delivers_token_files(&client.namespace, &client.name);
        let mut delivered = true;
        for token in &client.tokens {
            let deadline = Instant::now() + STEP_DEADLINE;
            let issued = match managed
                .access_token(&client.namespace, &client.name, token.ask.clone(), deadline)
                .await
            {
                Ok(issued) => issued,
                Err(e) => {
                    metrics.delivered("error");
                    tracing::warn!(name = client.name, label = token.label, error = %e, "getting a token file's access token failed");
                    delivered = false;
                    continue;
                }
            };
            managed.watch_token(
                &client.namespace,
                &client.name,
                &token.ask,
                &self.token_wake,
            );
            let (dir, file) = (dir.clone(), token.file_name(&client.name));
            match deliver::bounded(move || deliver::write_token(&dir, &file, &issued.token)).await {
                Ok(Written::Unchanged(_)) => metrics.delivered("unchanged"),
                Ok(Written::Replaced(_)) => metrics.delivered("written"),
                Err(e) => {
                    metrics.delivered("error");
                    tracing::warn!(name = client.name, label = token.label, error = %e, "writing a token file failed");
                    delivered = false;
                }
            }
        }
        delivered
    }
}
