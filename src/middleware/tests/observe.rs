//! The observe layer tells its observer of a new secret on an existing
//! client and of a deleted client, and of nothing else.

use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;
use secrecy::SecretString;
use tower::{Layer, ServiceExt};

use super::{get, scripted, target};
use crate::dcr::{Client, ClientMetadata, DcrCall, DcrRequest, DcrResponse};
use crate::middleware::observe::{ClientObserver, ObserveLayer};

/// What the observer was told, as `secret <id>` or `deleted <id>`.
#[derive(Default)]
struct Told(Mutex<Vec<String>>);

impl ClientObserver for Told {
    fn secret_issued<'a>(&'a self, _: &'a str, client: &'a Client) -> BoxFuture<'a, ()> {
        self.0
            .lock()
            .unwrap()
            .push(format!("secret {}", client.client_id));
        Box::pin(async {})
    }

    fn client_deleted<'a>(&'a self, _: &'a str, client_id: &'a str) -> BoxFuture<'a, ()> {
        self.0.lock().unwrap().push(format!("deleted {client_id}"));
        Box::pin(async {})
    }
}

fn with_secret() -> Result<DcrResponse, crate::dcr::DcrError> {
    Ok(DcrResponse::Client(Box::new(Client {
        client_id: "c1".into(),
        client_secret: Some(SecretString::from("s")),
        ..Client::default()
    })))
}

#[tokio::test]
async fn a_new_secret_on_an_existing_client_and_a_deletion_are_told() {
    let told = Arc::new(Told::default());
    let layer = ObserveLayer::new(told.clone());
    let register = DcrRequest::new(DcrCall::Register {
        metadata: ClientMetadata::default(),
        initial_access_token: None,
    });
    let calls = [
        (register, with_secret as super::Answer),
        (get("c1", None), with_secret),
        (get("c1", None), || Ok(super::client("c1", None))),
        (DcrRequest::new(DcrCall::Delete(target("c1", None))), || {
            Ok(DcrResponse::Deleted)
        }),
    ];
    for (req, answer) in calls {
        let (inner, _) = scripted(vec![answer]);
        layer.layer(inner).oneshot(req).await.unwrap();
    }
    // A registration's client is new to everyone; an answer without a
    // secret changes no secret.
    assert_eq!(*told.0.lock().unwrap(), ["secret c1", "deleted c1"]);
}
