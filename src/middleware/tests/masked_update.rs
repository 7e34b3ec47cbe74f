//! The masked-update layer: read, merge the masked fields, write in full.

use tower::{Layer, ServiceExt};

use super::{scripted, target};
use crate::dcr::{Client, ClientMetadata, DcrCall, DcrError, DcrRequest, DcrResponse};
use crate::middleware::masked_update::MaskedUpdateLayer;

fn current() -> DcrResponse {
    DcrResponse::Client(Box::new(Client {
        client_id: "c1".into(),
        metadata: ClientMetadata {
            client_name: Some("billing".into()),
            scope: Some("invoices:read".into()),
            ..ClientMetadata::default()
        },
        ..Client::default()
    }))
}

fn update(mask: &[&str]) -> DcrRequest {
    DcrRequest::new(DcrCall::Update {
        target: target("c1", Some("rat")),
        metadata: ClientMetadata {
            client_name: Some("billing v2".into()),
            ..ClientMetadata::default()
        },
        mask: mask.iter().map(|m| m.to_string()).collect(),
    })
}

#[tokio::test]
async fn a_masked_update_reads_merges_and_writes_in_full() {
    let (inner, seen) = scripted(vec![|| Ok(current()), || Ok(current())]);
    MaskedUpdateLayer
        .layer(inner)
        .oneshot(update(&["client_name"]))
        .await
        .unwrap();
    let seen = seen.lock().unwrap();
    assert!(matches!(seen[0].call, DcrCall::Get(_)), "read first");
    let DcrCall::Update { metadata, mask, .. } = &seen[1].call else {
        panic!("then a write")
    };
    assert!(mask.is_empty(), "the write is a full replacement");
    assert_eq!(
        metadata.client_name.as_deref(),
        Some("billing v2"),
        "the masked field changed"
    );
    assert_eq!(
        metadata.scope.as_deref(),
        Some("invoices:read"),
        "the others kept"
    );
}

#[tokio::test]
async fn an_update_without_a_mask_passes_straight_through() {
    let (inner, seen) = scripted(vec![|| Ok(current())]);
    MaskedUpdateLayer
        .layer(inner)
        .oneshot(update(&[]))
        .await
        .unwrap();
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_failed_read_writes_nothing() {
    let (inner, seen) = scripted(vec![|| {
        Err(DcrError::Timeout(std::time::Duration::from_secs(1)))
    }]);
    let err = MaskedUpdateLayer
        .layer(inner)
        .oneshot(update(&["client_name"]))
        .await
        .unwrap_err();
    assert!(matches!(err, DcrError::Timeout(_)), "{err}");
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "no write after a failed read"
    );
}
