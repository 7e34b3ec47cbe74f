//! The gRPC server around the service: health, reflection, graceful shutdown.

mod support;

use std::time::Duration;

use dcr_gateway::config::RawConfig;
use support::scripted::{Answer, Scripted};
use support::{TestGateway, channel, get_req, stack};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

#[tokio::test]
async fn health_reports_serving() {
    let (_dev, gw, _client) = stack().await;
    let mut health = HealthClient::new(channel(gw.addr).await);
    for service in ["", "dcr.v1.DynamicClientRegistration"] {
        let resp = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap();
        assert_eq!(
            resp.into_inner().status(),
            ServingStatus::Serving,
            "service {service:?}"
        );
    }
}

#[tokio::test]
async fn reflection_lists_the_service() {
    let (_dev, gw, _client) = stack().await;
    let mut reflection = ServerReflectionClient::new(channel(gw.addr).await);
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = reflection
        .server_reflection_info(tokio_stream::iter([req]))
        .await
        .unwrap()
        .into_inner();
    let resp = stream.message().await.unwrap().expect("one answer");
    let Some(MessageResponse::ListServicesResponse(list)) = resp.message_response else {
        panic!("unexpected reflection answer: {resp:?}");
    };
    let names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"dcr.v1.DynamicClientRegistration".to_string()),
        "{names:?}"
    );
    assert!(
        names.contains(&"grpc.health.v1.Health".to_string()),
        "{names:?}"
    );
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_call_finish() {
    let body = r#"{"client_id":"c1","registration_access_token":""}"#;
    let upstream = Scripted::start(vec![
        Answer::json(200, body).delayed(Duration::from_millis(800)),
    ])
    .await;
    let mut gw = TestGateway::start(&upstream.url()).await;
    let mut client = gw.client().await;
    let call = tokio::spawn(async move { client.get_client(get_req("c1", Some("tok"))).await });
    // Wait until the call has reached the upstream, then ask the gateway to stop.
    support::eventually(Duration::from_secs(10), || async {
        (!upstream.requests().is_empty()).then_some(())
    })
    .await;
    gw.signal_shutdown();
    let resp = call.await.unwrap().expect("the in-flight call completes");
    assert_eq!(resp.into_inner().client.unwrap().client_id, "c1");
    tokio::time::timeout(Duration::from_secs(10), gw.task)
        .await
        .expect("server stops")
        .unwrap();
}

#[tokio::test]
async fn health_is_not_serving_during_the_shutdown_delay() {
    let dev = support::dev_upstream().await;
    let raw = RawConfig {
        shutdown_delay: Some("30s".into()),
        ..Default::default()
    };
    let mut gw = TestGateway::start_with(&dev.base_url(), raw).await;
    let mut health = HealthClient::new(channel(gw.addr).await);
    let mut client = gw.client().await;
    let check = HealthCheckRequest {
        service: "dcr.v1.DynamicClientRegistration".into(),
    };
    assert_eq!(
        health
            .check(check.clone())
            .await
            .unwrap()
            .into_inner()
            .status(),
        ServingStatus::Serving
    );
    gw.signal_shutdown();
    // The status flips as soon as the signal is handled; wait for that, bounded.
    support::eventually(Duration::from_secs(5), || {
        let (mut health, check) = (health.clone(), check.clone());
        async move {
            let status = health.check(check).await.unwrap().into_inner().status();
            (status == ServingStatus::NotServing).then_some(())
        }
    })
    .await;
    // Calls are still served during the delay.
    let created = support::register(&mut client, "late").await;
    assert!(created.client_id.starts_with("shark_dcr_"));
}
