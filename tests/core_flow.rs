//! Every RPC end to end (gRPC client → gateway → dev upstream, all on real
//! loopback sockets) and the full lifecycle of one client.

mod support;

use std::time::Duration;

use dcr_gateway::pb::v1 as pb;
use prost_types::{FieldMask, Struct, Value, value::Kind};
use support::{get_req, machine_client, register, stack};
use tonic::Code;

fn string(s: &str) -> Value {
    Value {
        kind: Some(Kind::StringValue(s.into())),
    }
}

/// Asks the dev upstream's token endpoint whether `secret` authenticates `id`.
#[tokio::test]
async fn full_lifecycle() {
    let (dev, _gw, mut client) = stack().await;

    // Register: a client with a secret and a RAT, which the gateway keeps.
    let mut metadata = pb::ClientMetadata {
        redirect_uris: vec!["https://app.example.com/cb".into()],
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        scope: Some("openid profile".into()),
        contacts: vec!["ops@example.com".into()],
        ..machine_client("lifecycle")
    };
    let reg = pb::RegisterClientRequest {
        metadata: Some(metadata.clone()),
        initial_access_token: None,
    };
    let created = client
        .register_client(reg)
        .await
        .unwrap()
        .into_inner()
        .client
        .unwrap();
    let id = created.client_id.clone();
    assert!(id.starts_with("shark_dcr_") && id.len() == 31, "{id}");
    let secret1 = created
        .client_secret
        .clone()
        .expect("register issues a secret");
    let rat1 = created
        .registration_access_token
        .clone()
        .expect("register issues a RAT");
    assert_eq!(secret1.len(), 64);
    assert_eq!(rat1.len(), 64);
    assert!(created.client_id_issued_at.is_some());
    assert!(
        created.client_secret_expires_at.is_none(),
        "SharkAuth's 0 means never"
    );
    assert!(
        created
            .registration_client_uri
            .ends_with(&format!("/oauth/register/{id}"))
    );
    let m = created.metadata.unwrap();
    assert_eq!(
        m.token_endpoint_auth_method.as_deref(),
        Some("client_secret_basic")
    );
    assert_eq!(m.response_types, vec!["code"]);

    // Get, without a RAT: the gateway supplies the one it learned.
    let got = client
        .get_client(get_req(&id, None))
        .await
        .unwrap()
        .into_inner()
        .client
        .unwrap();
    assert_eq!(got.client_id, id);
    assert_eq!(
        got.registration_access_token, None,
        "SharkAuth's empty RAT means absent"
    );
    assert_eq!(got.client_secret, None);
    assert_eq!(
        got.metadata.as_ref().unwrap().scope.as_deref(),
        Some("openid profile")
    );

    // Full update: replaces everything; contacts left out are cleared.
    metadata.client_name = Some("renamed".into());
    metadata.contacts.clear();
    let full = pb::UpdateClientRequest {
        client_id: id.clone(),
        registration_access_token: None,
        metadata: Some(metadata.clone()),
        update_mask: None,
    };
    let updated = client
        .update_client(full)
        .await
        .unwrap()
        .into_inner()
        .client
        .unwrap();
    let m = updated.metadata.unwrap();
    assert_eq!(m.client_name.as_deref(), Some("renamed"));
    assert!(m.contacts.is_empty());

    // Masked update: only the named field changes; the rest survives.
    let masked = pb::UpdateClientRequest {
        client_id: id.clone(),
        registration_access_token: None,
        metadata: Some(pb::ClientMetadata {
            scope: Some("openid".into()),
            ..Default::default()
        }),
        update_mask: Some(FieldMask {
            paths: vec!["scope".into()],
        }),
    };
    let updated = client
        .update_client(masked)
        .await
        .unwrap()
        .into_inner()
        .client
        .unwrap();
    let m = updated.metadata.unwrap();
    assert_eq!(m.scope.as_deref(), Some("openid"));
    assert_eq!(
        m.client_name.as_deref(),
        Some("renamed"),
        "the mask kept the name"
    );
    assert_eq!(m.redirect_uris, vec!["https://app.example.com/cb"]);

    // Rotate the secret: a new one, and the old one still works in its grace hour.
    assert!(support::secret_works(&dev.base_url(), &id, &secret1).await);
    let rotated = support::rotate_secret(&mut client, &id).await;
    let secret2 = rotated.client_secret.expect("a new secret");
    assert_ne!(secret2, secret1);
    assert_eq!(
        rotated.registration_access_token, None,
        "secret rotation keeps the RAT"
    );
    assert!(support::secret_works(&dev.base_url(), &id, &secret2).await);
    assert!(
        support::secret_works(&dev.base_url(), &id, &secret1).await,
        "old secret in its grace window"
    );
    dev.advance_clock(Duration::from_secs(3601));
    assert!(
        !support::secret_works(&dev.base_url(), &id, &secret1).await,
        "grace window over"
    );
    assert!(support::secret_works(&dev.base_url(), &id, &secret2).await);

    // Rotate the RAT: the old one is dead at once, the new one is stored.
    let rotated = support::rotate_token(&mut client, &id).await;
    let rat2 = rotated.registration_access_token.expect("a new RAT");
    assert_ne!(rat2, rat1);
    let old = client
        .get_client(get_req(&id, Some(&rat1)))
        .await
        .unwrap_err();
    assert_eq!(old.code(), Code::Unauthenticated, "{old:?}");
    client
        .get_client(get_req(&id, Some(&rat2)))
        .await
        .expect("the new RAT works");
    client
        .get_client(get_req(&id, None))
        .await
        .expect("the stored RAT is the new one");

    // Delete, then the client is gone: UNAUTHENTICATED with or without a RAT.
    let delete = pb::DeleteClientRequest {
        client_id: id.clone(),
        registration_access_token: None,
    };
    client.delete_client(delete).await.unwrap();
    let gone = client.get_client(get_req(&id, None)).await.unwrap_err();
    assert_eq!(gone.code(), Code::Unauthenticated);
    let gone = client
        .get_client(get_req(&id, Some(&rat2)))
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::Unauthenticated);
    assert!(
        gone.message().contains("client not found"),
        "{}",
        gone.message()
    );
    assert_eq!(dev.clients_created(), 1);
}

#[tokio::test]
async fn extension_metadata_survives_the_gateway() {
    let (_dev, _gw, mut client) = stack().await;
    let mut additional = Struct::default();
    additional.fields.insert("tenant".into(), string("t1"));
    let reg = pb::RegisterClientRequest {
        metadata: Some(pb::ClientMetadata {
            additional_metadata: Some(additional),
            software_id: Some("4NRB1-0XZABZI9E6-5SM3R".into()),
            ..machine_client("extensions")
        }),
        initial_access_token: None,
    };
    // SharkAuth drops unknown members (quirk 4): the gateway passes them on, and
    // returns exactly what the server kept, without inventing or losing anything.
    let created = client
        .register_client(reg)
        .await
        .unwrap()
        .into_inner()
        .client
        .unwrap();
    let m = created.metadata.unwrap();
    assert_eq!(m.additional_metadata, None);
    assert_eq!(m.software_id, None);
}

#[tokio::test]
async fn explicit_token_is_used_as_given() {
    let (_dev, _gw, mut client) = stack().await;
    let created = register(&mut client, "explicit").await;
    let wrong = "0".repeat(64);
    let err = client
        .get_client(get_req(&created.client_id, Some(&wrong)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(
        err.message().contains("invalid registration access token"),
        "{}",
        err.message()
    );
    // The rejected explicit token was not the stored one, so the stored one survives.
    client
        .get_client(get_req(&created.client_id, None))
        .await
        .expect("stored RAT still works");
}

#[tokio::test]
async fn unknown_client_without_token_asks_for_one() {
    let (_dev, _gw, mut client) = stack().await;
    let err = client
        .get_client(get_req("shark_dcr_never_seen_before_xx", None))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(
        err.message().contains("pass registration_access_token"),
        "{}",
        err.message()
    );
}
