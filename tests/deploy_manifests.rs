//! The deployment artifacts under `deploy/` (Dockerfile, kustomize base and
//! overlay, Helm chart) pass `deploy/validate.sh`: rendered by real kustomize and
//! Helm, validated against the Kubernetes JSON schemas, and checked for what the
//! gateway needs (a native sidecar, gRPC health probes, hardened security
//! contexts, config keys that `serve --config` accepts). Its validators are pinned
//! in `deploy/tools/requirements.txt` and installed with pip into a virtualenv
//! under `target/`, as `tests/examples.rs` does for the Python example.

mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

#[tokio::test]
async fn deploy_manifests_pass_validate_sh() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    match Command::new("python3").arg("--version").output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "python3 --version failed ({}): deploy/validate.sh needs python3 with venv",
            out.status
        ),
        Err(e) => panic!(
            "cannot run python3 ({e}): deploy/validate.sh needs it (apt-get install python3 python3-venv)"
        ),
    }
    let out = Command::new("bash")
        .arg("deploy/validate.sh")
        .current_dir(&root)
        .output()
        .unwrap_or_else(|e| panic!("cannot run bash deploy/validate.sh ({e}): install bash"));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "deploy/validate.sh failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains("all checks passed"),
        "deploy/validate.sh exited 0 without finishing:\n{stdout}\n{stderr}"
    );
    // In the same test: validate.sh rewrites the folder the configs are in.
    rendered_config_files_are_accepted_by_the_gateway();
    the_gateway_runs_as_the_chart_configures_it().await;
}

/// The chart's declared-clients render, run: the sidecar's own args, the
/// image's environment and the rendered config.toml, with every mount path
/// moved under a temporary folder, the Secret's files written there, and only
/// the addresses (loopback, port 0) and the upstream (the dev upstream) given
/// as flags. The credentials volume's mount is left `0777` without the sticky
/// bit, as an emptyDir is, so the gateway must create its own folder in it
/// (`credentials_dir_create`). The metrics listener then serves /metrics and
/// nothing else, the folder is the gateway's (`0750`, not reported unsafe), and
/// each declared client's credentials file appears in it, group-readable, with
/// a secret the upstream accepts.
async fn the_gateway_runs_as_the_chart_configures_it() {
    let rendered = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/deploy-rendered");
    let sidecar: serde_json::Value = serde_json::from_slice(
        &std::fs::read(rendered.join("sidecar-helm-declared-clients.json")).unwrap(),
    )
    .unwrap();
    let pod = tempfile::tempdir().unwrap();
    let local = |path: &str| pod.path().join(path.trim_start_matches('/'));
    let mounts: Vec<&str> = sidecar["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    // Longest first, so a mount inside another maps to its own folder.
    let mut by_length = mounts.clone();
    by_length.sort_by_key(|m| std::cmp::Reverse(m.len()));
    let relocate = |text: &str| {
        by_length.iter().fold(text.to_owned(), |t, m| {
            t.replace(&format!("\"{m}"), &format!("\"{}", local(m).display()))
        })
    };
    for m in &mounts {
        std::fs::create_dir_all(local(m)).unwrap();
    }
    // What the Secret volume holds (kubectl create secret --from-file keeps
    // the final newline).
    let secrets = local("/var/run/secrets/dcr-gateway");
    for (key, value) in [
        (
            "token-store-keys",
            "k1=MDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDA=\n",
        ),
        ("initial-access-token", "dev-initial-access-token\n"),
    ] {
        std::fs::write(secrets.join(key), value).unwrap();
        std::fs::set_permissions(secrets.join(key), std::fs::Permissions::from_mode(0o440))
            .unwrap();
    }
    let config = relocate(
        &std::fs::read_to_string(rendered.join("config-helm-declared-clients.toml")).unwrap(),
    );
    let args: Vec<String> = sidecar["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(args[..2], ["serve", "--config"], "{args:?}");
    std::fs::write(local(&args[2]), &config).unwrap();
    let cfg: toml::Table = config.parse().unwrap();
    let credentials = PathBuf::from(cfg["credentials_dir"].as_str().unwrap());
    // The folder is not there yet: the gateway creates it directly inside
    // the credentials volume's mount, which every container could write.
    let volume = credentials.parent().unwrap();
    assert!(
        mounts.iter().any(|m| local(m) == volume) && !credentials.exists(),
        "credentials_dir {} must be a new folder directly inside a mount of the sidecar",
        credentials.display()
    );
    std::fs::set_permissions(volume, std::fs::Permissions::from_mode(0o777)).unwrap();

    let dev = support::dev_upstream().await;
    let base = dev.base_url();
    let config_file = local(&args[2]).display().to_string();
    let env: Vec<(String, String)> = [&sidecar["image_env"], &sidecar["env"]]
        .into_iter()
        .flat_map(|e| e.as_object().unwrap().clone())
        .map(|(k, v)| {
            let v = v.as_str().unwrap();
            let moved = relocate(&format!("\"{v}"))
                .trim_start_matches('"')
                .to_owned();
            (k, moved)
        })
        .collect();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let served = support::process::serve_with(
        &[
            "--config",
            &config_file,
            "--upstream",
            &base,
            "--require-upstream-tls=false",
            "--health-listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
        ],
        &env,
    )
    .await;

    let mut secrets = vec![
        "MDAwMDAwMDAwMDAwMDAw".to_owned(),
        "dev-initial-access-token".to_owned(),
    ];
    for client in cfg["clients"].as_array().unwrap() {
        let name = client["name"].as_str().unwrap();
        let file = credentials.join(format!("{name}.json"));
        let text = support::eventually(Duration::from_secs(30), || {
            let file = file.clone();
            async move { std::fs::read_to_string(&file).ok() }
        })
        .await;
        let creds: serde_json::Value = serde_json::from_str(&text).unwrap();
        let (id, secret) = (
            creds["client_id"].as_str().unwrap_or_default(),
            creds["client_secret"].as_str().unwrap_or_default(),
        );
        assert!(!id.is_empty() && !secret.is_empty(), "{name}.json: {creds}");
        secrets.push(secret.to_owned());
        assert!(
            support::secret_works(&base, id, secret).await,
            "{name}: the upstream refuses its secret"
        );
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(
            mode, 0o640,
            "{name}.json is {mode:o}, the chart asks for 0640"
        );
    }

    let metrics = support::eventually(Duration::from_secs(10), || async {
        served.logged_addr("metrics")
    })
    .await;
    let page = support::http_get(format!("http://{metrics}/metrics"))
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let body = page.text().await.unwrap();
    assert!(body.contains("dcr_"), "no dcr_ series on /metrics:\n{body}");
    // The folder the gateway made is its own, inside the open volume.
    let folder = std::fs::symlink_metadata(&credentials).unwrap();
    let mode = folder.permissions().mode() & 0o777;
    assert!(
        folder.is_dir() && mode == 0o750,
        "credentials_dir is {mode:o}, not a 0750 folder"
    );
    let unsafe_dir = body
        .lines()
        .find(|l| l.starts_with("dcr_managed_credentials_dir_unsafe"))
        .and_then(|l| l.split_whitespace().last())
        .unwrap_or_else(|| panic!("no dcr_managed_credentials_dir_unsafe on /metrics:\n{body}"));
    assert_eq!(unsafe_dir, "0", "the gateway reports its own folder unsafe");
    // Readiness stays private to the pod: the scrape port serves /metrics only.
    for path in ["/readyz", "/healthz"] {
        let other = support::http_get(format!("http://{metrics}{path}"))
            .await
            .unwrap();
        assert_eq!(other.status(), 404, "{path} on the metrics listener");
    }
    // Neither the keyring, the initial access token nor a client secret
    // reaches the log.
    let log = served.log.lock().unwrap().clone();
    for secret in &secrets {
        assert!(!log.contains(secret.as_str()), "a secret reached the log");
    }
}

/// Every render's `config.toml` (written by validate.sh) loads with the
/// gateway's own parser, and validates once the files it names are swapped
/// for local ones: its keys, and its declared clients' tables, are settings
/// the gateway accepts, not only names the Python checks know.
fn rendered_config_files_are_accepted_by_the_gateway() {
    let rendered = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/deploy-rendered");
    let mut configs: Vec<PathBuf> = std::fs::read_dir(&rendered)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with("config-") && name.ends_with(".toml")
        })
        .collect();
    configs.sort();
    assert!(configs.len() >= 9, "validate.sh wrote {configs:?}");
    let mut declared = 0;
    for path in &configs {
        let raw = dcr_gateway::config::RawConfig::from_file(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let credentials = tempfile::tempdir().unwrap();
        declared += raw.clients.len();
        let local = dcr_gateway::config::RawConfig {
            // The mounted files and the Secret-fed settings are the cluster's;
            // what is checked here is everything else.
            initial_access_token_file: None,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            tls_reload_interval: None,
            upstream_ca_file: None,
            upstream_client_cert: None,
            upstream_client_key: None,
            listen: Some("127.0.0.1:0".into()),
            health_listen: Some("127.0.0.1:0".into()),
            credentials_dir: raw
                .credentials_dir
                .as_ref()
                .map(|_| credentials.path().display().to_string()),
            token_store: dcr_gateway::config::RawStoreConfig {
                backend: Some("memory".into()),
                keys_file: None,
                ..raw.token_store
            },
            ..raw
        };
        local
            .validate()
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
    assert_eq!(
        declared, 4,
        "[[clients]]: two in the declared-clients render, one in each team example"
    );
}
