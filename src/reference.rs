//! Reference servers for the benchmark (`dcr-bench`), compiled only with the
//! `reference-servers` feature: they are the gateway's own gRPC edge with the
//! middleware taken away, so the benchmark can say what each part costs.
//!
//! - [`Reference::Echo`] answers every RPC at once with a fixed client: the
//!   cost of the gRPC edge alone.
//! - [`Reference::Minimal`] is the edge straight over a translation on
//!   reqwest ([`Floor`]), no middleware: the cost of the simplest translation
//!   a user could write.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::util::BoxCloneSyncService;
use url::Url;

use crate::api::{DcrService, EdgeSettings};
use crate::config::{
    DEFAULT_MAX_CONCURRENT_CALLS, DEFAULT_MAX_DEADLINE, DEFAULT_MAX_DETACHED,
    DEFAULT_MAX_MANAGED_CLIENTS_PER_NAMESPACE, DEFAULT_MAX_WATCHES_PER_NAMESPACE,
    DEFAULT_RETIRED_CLIENT_GRACE,
};
use crate::dcr::{
    AccessToken, Answer, Client, ClientMetadata, DcrError, DcrRequest, DcrResponse, SentExchanges,
};
use crate::managed::{Managed, ManagedConfig, ManagedLimits};
use crate::middleware::GatewayService;
use crate::pb::v1::dynamic_client_registration_server::DynamicClientRegistrationServer;
use crate::store::MemoryStore;
use crate::telemetry::Metrics;
use crate::upstream::{Endpoints, Floor, Profile, RegistrationEndpoint};

/// The profile the reference servers speak.
const SHARKAUTH: Profile = Profile::SharkAuth {
    use_client_uri: false,
};

/// Which reference server to run.
#[derive(Debug, Clone)]
pub enum Reference {
    /// Every RPC answered at once with a fixed client.
    Echo,
    /// The gRPC edge over a translation on reqwest to this
    /// SharkAuth-compatible upstream, with no middleware.
    Minimal(Url),
}

/// A fixed client, the echo service's every answer.
fn canned() -> Client {
    Client {
        client_id: "shark_dcr_echo_echo_echo_echo_e".into(),
        client_secret: Some("0".repeat(64).into()),
        registration_access_token: Some("1".repeat(64).into()),
        registration_client_uri: "http://127.0.0.1/oauth/register/shark_dcr_echo_echo_echo_echo_e"
            .into(),
        client_id_issued_at: Some(1_765_000_000),
        metadata: ClientMetadata {
            client_name: Some("echo".into()),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Runs a reference server on an ephemeral loopback port until the process is
/// killed, after printing `reference listening on ADDR` to standard output.
/// Panics on a setup failure: it is a benchmark fixture, not a service.
pub async fn serve(kind: Reference) {
    let stack: GatewayService = match kind {
        Reference::Echo => {
            BoxCloneSyncService::new(tower::service_fn(|req: DcrRequest| async move {
                Ok::<_, DcrError>(match req.operation().spec().answer {
                    Answer::Nothing => DcrResponse::Deleted,
                    Answer::Client => DcrResponse::Client(Box::new(canned())),
                    Answer::AccessToken => DcrResponse::AccessToken(AccessToken {
                        token: "2".repeat(64).into(),
                        token_type: "Bearer".into(),
                        expires_in: Some(Duration::from_secs(3600)),
                        scope: None,
                    }),
                })
            }))
        }
        Reference::Minimal(base) => {
            let endpoints = Endpoints {
                registration: RegistrationEndpoint::new(base.join("oauth/register").expect("URL")),
                base,
                allowed_origins: Vec::new(),
                token: None,
            };
            let config = crate::config::RawConfig {
                dev_upstream: Some(true),
                ..Default::default()
            }
            .validate()
            .expect("defaults")
            .http;
            BoxCloneSyncService::new(Floor::new(SHARKAUTH, endpoints, &config))
        }
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    println!(
        "reference listening on {}",
        listener.local_addr().expect("address")
    );
    let exchanges = SentExchanges::new(DEFAULT_MAX_DETACHED);
    // Managed clients are not benchmarked; they get a store of their own.
    let metrics = Metrics::local();
    let managed = Managed::new(
        stack.clone(),
        MemoryStore::default().into(),
        ManagedConfig {
            upstream: "reference".into(),
            server: SHARKAUTH.capabilities(),
            initial_access_token: None,
            lease_ttl: Duration::from_secs(60),
            exchanges: exchanges.clone(),
            policies: Default::default(),
            limits: ManagedLimits {
                names_per_namespace: DEFAULT_MAX_MANAGED_CLIENTS_PER_NAMESPACE,
                watches_per_namespace: DEFAULT_MAX_WATCHES_PER_NAMESPACE,
            },
            metrics: metrics.clone(),
            retired_grace: DEFAULT_RETIRED_CLIENT_GRACE,
        },
    );
    let edge = EdgeSettings {
        default_deadline: Duration::from_secs(30),
        max_deadline: DEFAULT_MAX_DEADLINE,
        calls: Arc::new(Semaphore::new(DEFAULT_MAX_CONCURRENT_CALLS)),
        callers: None,
        exchanges,
        server: SHARKAUTH.capabilities(),
    };
    let service = DcrService::new(stack, managed, metrics, edge);
    tonic::transport::Server::builder()
        .add_service(DynamicClientRegistrationServer::new(service))
        .serve_with_incoming(
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
        )
        .await
        .expect("serve");
}
