//! Crash safety of the file token store: the gateway is killed with SIGKILL
//! while callers register and rotate, again and again. After every restart
//! each registration access token a caller was given is present and current
//! in the store, and the store file opens and decrypts. The one exception is
//! inherent: a rotation in flight at the kill, which the upstream applied but
//! whose answer died with the process, leaves neither side the new token.
//! Rounds alternate the one-thread runtime (the default) and two workers.

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dcr_gateway::pb::v1 as pb;
use support::process::{run_with, serve_with};
use support::{Client, channel, dev_upstream, get_req, machine_client};

const KEYS: &str = "k1=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const ROUNDS: usize = 5;
const WORKERS: usize = 8;

/// What callers were told: client id → (last RAT returned, a call was in
/// flight for it when the gateway died).
type Seen = Arc<Mutex<HashMap<String, (String, bool)>>>;

async fn worker(addr: String, seen: Seen, worker: usize) {
    let Ok(ch) = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
    else {
        return;
    };
    let mut c = Client::new(ch);
    let mut mine: Vec<String> = Vec::new();
    for i in 0.. {
        // Mostly rotations of an own client, sometimes a new registration.
        if mine.is_empty() || i % 4 == 0 {
            let req = pb::RegisterClientRequest {
                metadata: Some(machine_client(&format!("crash-{worker}-{i}"))),
                initial_access_token: None,
            };
            let Ok(resp) = c.register_client(req).await else {
                return;
            };
            let client = resp.into_inner().client.unwrap();
            let rat = client.registration_access_token.unwrap();
            seen.lock()
                .unwrap()
                .insert(client.client_id.clone(), (rat, false));
            mine.push(client.client_id);
        } else {
            let id = mine[i % mine.len()].clone();
            seen.lock().unwrap().get_mut(&id).unwrap().1 = true;
            let req = pb::RotateRegistrationTokenRequest {
                client_id: id.clone(),
                registration_access_token: None,
            };
            let Ok(resp) = c.rotate_registration_token(req).await else {
                return;
            };
            let rat = resp
                .into_inner()
                .client
                .unwrap()
                .registration_access_token
                .unwrap();
            seen.lock().unwrap().insert(id, (rat, false));
        }
    }
}

#[tokio::test]
async fn kill_9_under_load_never_loses_a_returned_token() {
    let dev = dev_upstream().await;
    let dir = support::temp_dir("crash");
    let path = dir.join("tokens.redb");
    let (path, upstream) = (path.to_str().unwrap(), dev.base_url());
    let args = [
        "--upstream",
        &upstream,
        "--token-store",
        "file",
        "--token-store-path",
        path,
    ];
    // The keyring has no flag: secrets stay off the command line.
    let env = [("DCR_GATEWAY_TOKEN_STORE_KEYS", KEYS)];
    let seen: Seen = Arc::default();
    let (mut kept, mut cut) = (0usize, 0usize);

    for round in 0..ROUNDS {
        // A start decrypts the stored entries: a corrupt file fails here.
        let threads = if round % 2 == 0 { "1" } else { "2" };
        let args = [&args[..], &["--worker-threads", threads]].concat();
        let served = serve_with(&args, &env).await;
        let (mut gw, addr) = (served.child, served.addr);
        let mut c = Client::new(channel(addr.parse().unwrap()).await);
        let snapshot: Vec<(String, (String, bool))> = seen
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (id, (rat, in_flight)) in &snapshot {
            let stored = c.get_client(get_req(id, None)).await;
            match (stored, in_flight) {
                (Ok(_), _) => {}
                // A rotation the upstream applied but whose answer died with
                // the process: the new token never reached the gateway or the
                // caller (SharkAuth invalidates the old one at once). Only a
                // rotation in flight at the kill may end so.
                (Err(e), true) if e.code() == tonic::Code::Unauthenticated => {
                    cut += 1;
                    seen.lock().unwrap().remove(id);
                    continue;
                }
                (Err(e), _) => panic!("round {round}: the stored token of {id} is lost: {e:?}"),
            }
            if !in_flight {
                c.get_client(get_req(id, Some(rat)))
                    .await
                    .unwrap_or_else(|e| {
                        panic!("round {round}: the token returned for {id} is not current: {e:?}")
                    });
                kept += 1;
            }
        }
        // Load, then SIGKILL once enough has happened for this round.
        let tasks: Vec<_> = (0..WORKERS)
            .map(|w| tokio::spawn(worker(addr.clone(), seen.clone(), w + round * WORKERS)))
            .collect();
        let target = (round + 1) * 40;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while seen.lock().unwrap().len() < target {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the load made no progress"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        gw.start_kill().unwrap();
        gw.wait().await.unwrap();
        for t in tasks {
            t.await.unwrap();
        }
    }

    // The file is whole: the operator command lists every token it holds.
    let (ok, out, err) = run_with(&["tokens", "--token-store-path", path, "list"], &env).await;
    assert!(ok, "{err}");
    let count: usize = out
        .split_whitespace()
        .next()
        .unwrap()
        .trim_end_matches("token(s)")
        .parse()
        .unwrap_or(0);
    let seen_count = seen.lock().unwrap().len();
    assert!(
        count >= seen_count,
        "{count} stored, {seen_count} returned to callers: {out}"
    );
    assert!(kept > 0, "no returned token was checked");
    println!(
        "{ROUNDS} kills: {kept} returned tokens checked and present; {cut} rotation(s) cut in flight"
    );
}
