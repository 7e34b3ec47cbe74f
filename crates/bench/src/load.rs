//! The load generator: one loop per concurrent caller, each with its own
//! client, for a fixed time, recording every call's latency.

use std::time::{Duration, Instant};

use dcr_gateway::Operation as Op;
use dcr_gateway::pb::v1 as pb;
use dcr_gateway::pb::v1::dynamic_client_registration_client::DynamicClientRegistrationClient;
use serde_json::{Value, json};
use tonic::transport::Channel;
use tower::util::rng::{HasherRng, Rng};

/// Where calls go: the upstream's HTTP API directly, or a gRPC server.
#[derive(Clone)]
pub enum Target {
    /// Direct HTTP/JSON calls, as an HTTP SDK would make them.
    Http { http: reqwest::Client, base: String },
    /// dcr.v1 over gRPC (echo, minimal translation, or the gateway).
    Grpc(DynamicClientRegistrationClient<Channel>),
}

/// The operation mix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mix {
    /// 80% GetClient, 12% UpdateClient, 4% RegisterClient, 2% each rotation.
    Realistic,
    /// GetClient only.
    GetOnly,
    /// 80% GetClient, 12% UpdateClient, 4% each rotation: no new clients, so
    /// the gateway's state keeps its size and any growth is a leak (the soak).
    Steady,
}

/// What one cell's callers do: an operation mix, each caller on a client of
/// its own or all of them on one.
#[derive(Clone, Copy, Debug)]
pub struct Workload {
    /// The name used in reports.
    pub name: &'static str,
    pub mix: Mix,
    /// Every caller works on the same client (a service reading its own).
    pub one_client: bool,
}

/// The workloads a comparison runs: the mixed one over many clients, and
/// GetClient over one client, where the per-client lock shows.
pub const WORKLOADS: [Workload; 2] = [
    Workload {
        name: "mixed, many clients",
        mix: Mix::Realistic,
        one_client: false,
    },
    Workload {
        name: "GetClient, one client",
        mix: Mix::GetOnly,
        one_client: true,
    },
];

/// The next operation of `mix` (the gateway's own operation table names
/// them, and gives the direct HTTP path its SharkAuth routes).
fn pick(mix: Mix, rng: &mut HasherRng) -> Op {
    if mix == Mix::GetOnly {
        return Op::Get;
    }
    let register = match mix {
        Mix::Steady => 0.0,
        _ => 0.04,
    };
    match rng.next_f64() {
        x if x < 0.80 => Op::Get,
        x if x < 0.92 => Op::Update,
        x if x < 0.92 + register => Op::Register,
        x if x < 0.96 + register / 2.0 => Op::RotateSecret,
        _ => Op::RotateToken,
    }
}

/// One registered client a caller works on.
#[derive(Clone, Debug)]
pub struct Seed {
    pub id: String,
    pub rat: String,
}

/// What one measurement produced.
#[derive(Default)]
pub struct Sample {
    pub latencies_us: Vec<u64>,
    pub errors: u64,
    pub elapsed: Duration,
}

fn metadata(name: &str) -> pb::ClientMetadata {
    pb::ClientMetadata {
        client_name: Some(name.into()),
        grant_types: vec!["client_credentials".into()],
        ..Default::default()
    }
}

/// A JSON request body.
fn with_json(req: reqwest::RequestBuilder, body: &Value) -> reqwest::RequestBuilder {
    req.header("content-type", "application/json")
        .body(body.to_string())
}

/// A JSON response body (a 204's empty body reads as null).
async fn read_json(resp: reqwest::Response) -> Result<Value, String> {
    let bytes = resp.bytes().await.map_err(|e| e.to_string())?;
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&bytes).map_err(|e| e.to_string())
}

/// Registers a client through `target`.
pub async fn register(target: &Target) -> Result<Seed, String> {
    match target {
        Target::Http { http, base } => {
            let body = json!({"client_name": "bench", "grant_types": ["client_credentials"]});
            let resp = with_json(http.post(format!("{base}/oauth/register")), &body)
                .send()
                .await;
            let v = read_json(resp.map_err(|e| e.to_string())?).await?;
            let text = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
            Ok(Seed {
                id: text("client_id"),
                rat: text("registration_access_token"),
            })
        }
        Target::Grpc(client) => {
            let req = pb::RegisterClientRequest {
                metadata: Some(metadata("bench")),
                initial_access_token: None,
            };
            let c = client
                .clone()
                .register_client(req)
                .await
                .map_err(|e| e.to_string())?
                .into_inner()
                .client
                .unwrap_or_default();
            Ok(Seed {
                id: c.client_id,
                rat: c.registration_access_token.unwrap_or_default(),
            })
        }
    }
}

async fn call(target: &Target, op: Op, seed: &mut Seed) -> Result<(), String> {
    match target {
        Target::Http { http, base } => call_http(http, base, op, seed).await,
        Target::Grpc(client) => call_grpc(client, op, seed).await,
    }
}

/// One call straight to the upstream's HTTP API.
async fn call_http(
    http: &reqwest::Client,
    base: &str,
    op: Op,
    seed: &mut Seed,
) -> Result<(), String> {
    let spec = op.spec();
    let url = format!(
        "{}{}",
        base.trim_end_matches('/'),
        spec.path.under_base.replace("{client_id}", &seed.id)
    );
    let method = reqwest::Method::from_bytes(spec.method.as_str().as_bytes()).expect("a method");
    let auth = format!("Bearer {}", seed.rat);
    let req = http.request(method, url);
    let req = match op {
        Op::Update => with_json(
            req,
            &json!({"client_name": "bench2", "grant_types": ["client_credentials"]}),
        ),
        Op::Register => with_json(
            req,
            &json!({"client_name": "bench", "grant_types": ["client_credentials"]}),
        ),
        _ => req,
    };
    let resp = req
        .header("authorization", auth)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("HTTP {}", resp.status()));
    }
    let v = read_json(resp).await?;
    if let (Op::RotateToken, Some(rat)) = (op, v["registration_access_token"].as_str()) {
        seed.rat = rat.to_owned();
    }
    Ok(())
}

/// One call through a gateway's gRPC API.
async fn call_grpc(
    client: &DynamicClientRegistrationClient<Channel>,
    op: Op,
    seed: &mut Seed,
) -> Result<(), String> {
    let mut c = client.clone();
    let (id, rat) = (seed.id.clone(), Some(seed.rat.clone()));
    let e = |s: tonic::Status| s.message().to_owned();
    match op {
        Op::Get => drop(
            c.get_client(pb::GetClientRequest {
                client_id: id,
                registration_access_token: rat,
            })
            .await
            .map_err(e)?,
        ),
        Op::Update => {
            let req = pb::UpdateClientRequest {
                client_id: id,
                registration_access_token: rat,
                metadata: Some(metadata("bench2")),
                update_mask: None,
            };
            drop(c.update_client(req).await.map_err(e)?)
        }
        Op::Register => {
            let req = pb::RegisterClientRequest {
                metadata: Some(metadata("bench")),
                initial_access_token: None,
            };
            drop(c.register_client(req).await.map_err(e)?)
        }
        Op::RotateSecret => drop(
            c.rotate_client_secret(pb::RotateClientSecretRequest {
                client_id: id,
                registration_access_token: rat,
            })
            .await
            .map_err(e)?,
        ),
        Op::Delete => drop(
            c.delete_client(pb::DeleteClientRequest {
                client_id: id,
                registration_access_token: rat,
            })
            .await
            .map_err(e)?,
        ),
        Op::RotateToken => {
            let req = pb::RotateRegistrationTokenRequest {
                client_id: id,
                registration_access_token: rat,
            };
            let client = c
                .rotate_registration_token(req)
                .await
                .map_err(e)?
                .into_inner()
                .client
                .unwrap_or_default();
            if let Some(new) = client.registration_access_token {
                seed.rat = new;
            }
        }
        // Asked by a managed name, which a seed does not have.
        Op::Token => return Err("GetAccessToken is not in a registration mix".into()),
    }
    Ok(())
}

/// Drives `target` with `seeds.len()` concurrent callers for `duration`; each
/// seed's token is updated when a rotation replaces it.
pub async fn run(target: &Target, mix: Mix, seeds: &mut [Seed], duration: Duration) -> Sample {
    let start = Instant::now();
    let stop = start + duration;
    let mut tasks = Vec::new();
    for seed in seeds.iter() {
        let (target, mut seed) = (target.clone(), seed.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = HasherRng::new();
            let mut sample = Sample::default();
            while Instant::now() < stop {
                let op = pick(mix, &mut rng);
                let t = Instant::now();
                match call(&target, op, &mut seed).await {
                    Ok(()) => sample.latencies_us.push(t.elapsed().as_micros() as u64),
                    Err(_) => sample.errors += 1,
                }
            }
            (sample, seed)
        }));
    }
    let mut total = Sample::default();
    for (task, slot) in tasks.into_iter().zip(seeds.iter_mut()) {
        if let Ok((s, seed)) = task.await {
            total.latencies_us.extend(s.latencies_us);
            total.errors += s.errors;
            *slot = seed;
        }
    }
    total.elapsed = start.elapsed();
    total
}
