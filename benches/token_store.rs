//! Token store benchmark: get and put latency and throughput of each backend
//! with 100,000 stored tokens. Prints a Markdown table; asserts nothing.
//!
//! `cargo bench --bench token_store` (add `-- --quick` for a short run). The
//! Redis row needs `redis-server` on the PATH; it is started on a loopback port.

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dcr_gateway::store::{
    Backend, ImportEntry, Keyring, RedisPrefix, RedisTopology, ReplicaWait, StoreConfig, TokenKey,
    Tokens, open,
};
use secrecy::SecretString;

const KEYS: &str = "bench=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fn key(i: usize) -> TokenKey {
    TokenKey {
        upstream: "http://127.0.0.1:8080".into(),
        namespace: "default".into(),
        client_id: format!("shark_dcr_{i:021}"),
    }
}

fn token(i: usize) -> SecretString {
    SecretString::from(format!("{i:064x}"))
}

struct Row {
    backend: &'static str,
    get: Summary,
    put: Summary,
}

struct Summary {
    ops_per_sec: f64,
    p50: Duration,
    p99: Duration,
}

fn summarise(mut samples: Vec<Duration>, wall: Duration) -> Summary {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    Summary {
        ops_per_sec: samples.len() as f64 / wall.as_secs_f64(),
        p50: at(0.5),
        p99: at(0.99),
    }
}

async fn measure(
    store: &Arc<dyn Tokens>,
    entries: usize,
    gets: usize,
    puts: usize,
) -> (Summary, Summary) {
    let fill: Vec<ImportEntry> = (0..entries)
        .map(|i| ImportEntry {
            key: key(i),
            token: token(i),
            registration_client_uri: String::new(),
        })
        .collect();
    store.import(fill, false).await.expect("fill");
    let mut samples = Vec::with_capacity(gets);
    let start = Instant::now();
    for n in 0..gets {
        let i = (n * 7919) % entries;
        let t = Instant::now();
        store.get(&key(i)).await.expect("get").expect("present");
        samples.push(t.elapsed());
    }
    let get = summarise(samples, start.elapsed());
    let mut samples = Vec::with_capacity(puts);
    let start = Instant::now();
    for n in 0..puts {
        let i = (n * 104_729) % entries;
        let t = Instant::now();
        let current = store.get(&key(i)).await.expect("get").map(|s| s.generation);
        store
            .compare_and_set(&key(i), current, &token(n), "")
            .await
            .expect("put");
        samples.push(t.elapsed());
    }
    (get, summarise(samples, start.elapsed()))
}

async fn redis_server(dir: &std::path::Path) -> Option<(tokio::process::Child, String)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let child = tokio::process::Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .ok()?;
    for _ in 0..500 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Some((child, format!("redis://127.0.0.1:{port}")));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

#[tokio::main]
async fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (entries, gets, puts) = if quick {
        (10_000, 2_000, 100)
    } else {
        (100_000, 50_000, 1_000)
    };
    let dir = std::env::temp_dir().join(format!("dcr-bench-store-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let keyring = Some(Arc::new(Keyring::parse(&SecretString::from(KEYS)).unwrap()));
    let redis = redis_server(&dir).await;
    let mut backends = vec![
        (
            "memory",
            Backend::Memory {
                max_entries: entries + 1,
            },
        ),
        (
            "file (redb, fsync per write, encrypted)",
            Backend::File {
                path: dir.join("bench.redb"),
            },
        ),
    ];
    match &redis {
        Some((_, url)) => backends.push((
            "redis (loopback, Lua CAS, encrypted)",
            Backend::Redis {
                url: SecretString::from(url.clone()),
                topology: RedisTopology::Node,
                wait: ReplicaWait::default(),
                prefix: RedisPrefix::parse("bench").expect("a valid prefix"),
            },
        )),
        None => eprintln!(
            "redis-server not found on PATH: skipping the redis row (apt-get install redis-server)"
        ),
    }
    let mut rows = Vec::new();
    for (name, backend) in backends {
        let config = StoreConfig {
            backend,
            keyring: keyring.clone(),
        };
        let store = open(&config).await.expect("open");
        let (get, put) = measure(&store.tokens, entries, gets, puts).await;
        rows.push(Row {
            backend: name,
            get,
            put,
        });
    }
    println!(
        "\nToken store, {entries} tokens stored, one task, {gets} gets and {puts} puts (put = get + compare-and-set)\n"
    );
    println!("| backend | get ops/s | get p50 | get p99 | put ops/s | put p50 | put p99 |");
    println!("|---|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {:.0} | {:?} | {:?} | {:.0} | {:?} | {:?} |",
            r.backend,
            r.get.ops_per_sec,
            r.get.p50,
            r.get.p99,
            r.put.ops_per_sec,
            r.put.p50,
            r.put.p99
        );
    }
    drop(redis);
    let _ = std::fs::remove_dir_all(&dir);
}
