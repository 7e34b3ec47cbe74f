//! Tower layers over the domain service, one file per layer.
//!
//! The stack, outermost first: [`masked_update`] turns a partial update into a
//! read-merge-write, then [`tokens`] supplies and learns registration access
//! tokens, then the HTTP transport (`crate::upstream`).

pub mod masked_update;
pub mod tokens;

use futures_util::future::BoxFuture;

use crate::dcr::{DcrError, DcrResponse};

/// The future every domain layer returns.
pub type DcrFuture = BoxFuture<'static, Result<DcrResponse, DcrError>>;
