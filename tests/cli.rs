//! The binary as an operator uses it: `--help`, configuration errors, `serve
//! --dev-upstream` with `call`, and SIGTERM.

mod support;

use std::time::Duration;

use support::process::{gateway, serve, serve_with};
use tokio::process::Command;

#[tokio::test]
async fn help_documents_every_option_and_its_default() {
    let out = gateway().args(["serve", "--help"]).output().await.unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--config",
        "--listen",
        "--upstream",
        "--dev-upstream",
        "--upstream-timeout",
        "--connect-timeout",
        "--max-response-bytes",
        "--max-request-bytes",
        "--shutdown-delay",
        "--shutdown-grace",
        "--token-store-max-entries",
        "--upstream-http2",
        "--upstream-pool-max-idle",
        "--upstream-pool-idle-timeout",
        "--default-deadline",
        "--max-attempts",
        "--retry-backoff-base",
        "--retry-backoff-max",
        "--retry-after-max",
        "--retry-budget-percent",
        "--retry-budget-min-per-second",
        "--max-in-flight",
        "--max-queue",
        "--queue-timeout",
        "--callers-file",
        "--token-store",
        "--token-store-path",
        "--token-store-redis-url",
        "--token-store-redis-url-file",
        "--token-store-redis-prefix",
        "--token-store-keys-file",
        "--allow-plaintext-store",
        "--admin-listen",
        "--log-format",
        "--otlp-endpoint",
        "--otlp-protocol",
        "--service-name",
        "--upstream-profile",
        "--registration-endpoint",
        "--allowed-client-uri-origins",
        "--sharkauth-use-client-uri",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
        let env = format!(
            "DCR_GATEWAY_{}",
            flag.trim_start_matches("--")
                .replace('-', "_")
                .to_uppercase()
        );
        assert!(help.contains(&env), "--help lacks {env}");
    }
    use dcr_gateway::config::*;
    for default in [
        format!("[default: {DEFAULT_LISTEN}]"),
        format!("[default: {}]", format_duration(DEFAULT_UPSTREAM_TIMEOUT)),
        format!("[default: {}]", format_duration(DEFAULT_CONNECT_TIMEOUT)),
        format!("[default: {DEFAULT_MAX_RESPONSE_BYTES}]"),
        format!("[default: {DEFAULT_MAX_REQUEST_BYTES}]"),
        format!("[default: {}]", format_duration(DEFAULT_SHUTDOWN_DELAY)),
        format!("[default: {}]", format_duration(DEFAULT_SHUTDOWN_GRACE)),
        format!("[default: {DEFAULT_TOKEN_STORE_MAX_ENTRIES}]"),
        format!("[default: {DEFAULT_UPSTREAM_HTTP2}]"),
        format!("[default: {DEFAULT_UPSTREAM_POOL_MAX_IDLE}]"),
        format!(
            "[default: {}]",
            format_duration(DEFAULT_UPSTREAM_POOL_IDLE_TIMEOUT)
        ),
        format!("[default: {}]", format_duration(DEFAULT_DEADLINE)),
        format!("[default: {DEFAULT_MAX_ATTEMPTS}]"),
        format!("[default: {}]", format_duration(DEFAULT_RETRY_BACKOFF_BASE)),
        format!("[default: {}]", format_duration(DEFAULT_RETRY_BACKOFF_MAX)),
        format!("[default: {}]", format_duration(DEFAULT_RETRY_AFTER_MAX)),
        format!("[default: {DEFAULT_RETRY_BUDGET_PERCENT}]"),
        format!("[default: {DEFAULT_RETRY_BUDGET_MIN_PER_SECOND}]"),
        format!("[default: {DEFAULT_MAX_IN_FLIGHT}]"),
        format!("[default: {DEFAULT_MAX_QUEUE}]"),
        format!("[default: {}]", format_duration(DEFAULT_QUEUE_TIMEOUT)),
        format!("[default: {DEFAULT_STORE_PATH}]"),
        format!("[default: {DEFAULT_REDIS_PREFIX}]"),
        format!("[default: {DEFAULT_ADMIN_LISTEN}]"),
    ] {
        assert!(help.contains(&default), "--help does not say {default}");
    }
}

async fn fails_with(args: &[&str], env: &[(&str, &str)], needle: &str) {
    let (ok, _, err) = support::process::run_with(args, env).await;
    assert!(!ok, "{args:?} should fail");
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.contains(needle),
        "{args:?}: expected {needle:?} in {err:?}"
    );
}

#[tokio::test]
async fn bad_configuration_is_one_clear_line() {
    fails_with(&["serve"], &[], "--upstream: required").await;
    fails_with(&["serve", "--upstream", "not a url"], &[], "--upstream").await;
    fails_with(
        &["serve", "--upstream", "ftp://x"],
        &[],
        "http:// or https://",
    )
    .await;
    fails_with(
        &["serve", "--upstream", "https://user:pw@auth.example"],
        &[],
        "credentials",
    )
    .await;
    fails_with(
        &["serve", "--dev-upstream", "--upstream-timeout", "10"],
        &[],
        "--upstream-timeout",
    )
    .await;
    fails_with(
        &["serve", "--dev-upstream"],
        &[("DCR_GATEWAY_LISTEN", "nowhere")],
        "--listen",
    )
    .await;
    fails_with(
        &[
            "serve",
            "--dev-upstream",
            "--config",
            "/nonexistent/dcr.toml",
        ],
        &[],
        "cannot read",
    )
    .await;

    let dir = support::temp_dir("cli");
    let file = dir.join("bad.toml");
    std::fs::write(&file, "dev_upstream = true\nupstream_timout = \"5s\"\n").unwrap();
    fails_with(
        &["serve", "--config", file.to_str().unwrap()],
        &[],
        "upstream_timout",
    )
    .await;

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    fails_with(
        &["serve", "--dev-upstream", "--listen", &addr],
        &[],
        "cannot bind",
    )
    .await;
}

#[tokio::test]
async fn secret_values_have_no_flag_only_a_file_or_the_environment() {
    let out = gateway().args(["serve", "--help"]).output().await.unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for (flag, env) in [
        ("--callers", "DCR_GATEWAY_CALLERS"),
        ("--token-store-keys", "DCR_GATEWAY_TOKEN_STORE_KEYS"),
        ("--initial-access-token", "DCR_GATEWAY_INITIAL_ACCESS_TOKEN"),
    ] {
        assert!(!help.contains(&format!("{flag} <")), "--help offers {flag}");
        assert!(
            help.contains(&format!("{flag}-file <")),
            "--help lacks {flag}-file"
        );
        let mentioned = help
            .split_whitespace()
            .any(|w| w.trim_end_matches(['.', ',']) == env);
        assert!(mentioned, "--help does not mention {env}");
        let args = ["serve", "--dev-upstream", flag, "a=b0123456789abcdef"];
        let out = gateway().args(args).output().await.unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(
            err.contains(&format!("unexpected argument '{flag}' found")),
            "{err}"
        );
    }
    let out = gateway()
        .args(["tokens", "--token-store-keys", "k1=x", "list"])
        .output()
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("unexpected argument '--token-store-keys' found"),
        "{err}"
    );

    // The variable still works, and is never a flag's value.
    let callers = "billing=billing-token-0123456789";
    let served = serve_with(&["--dev-upstream"], &[("DCR_GATEWAY_CALLERS", callers)]).await;
    let mut client = support::Client::new(support::channel(served.addr.parse().unwrap()).await);
    let reg = || dcr_gateway::pb::v1::RegisterClientRequest {
        metadata: Some(support::machine_client("env-callers")),
        initial_access_token: None,
    };
    let err = client.register_client(reg()).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated, "{err:?}");
    let mut req = tonic::Request::new(reg());
    req.metadata_mut().insert(
        "authorization",
        "Bearer billing-token-0123456789".parse().unwrap(),
    );
    client
        .register_client(req)
        .await
        .expect("the caller from DCR_GATEWAY_CALLERS is known");

    let dir = support::temp_dir("cli-secrets");
    let file = dir.join("callers");
    std::fs::write(&file, callers).unwrap();
    fails_with(
        &[
            "serve",
            "--dev-upstream",
            "--callers-file",
            file.to_str().unwrap(),
        ],
        &[("DCR_GATEWAY_CALLERS", callers)],
        "give --callers-file or DCR_GATEWAY_CALLERS, not both",
    )
    .await;
}

#[tokio::test]
async fn call_refuses_a_unix_socket_address_by_name() {
    let out = gateway()
        .args(["call", "health", "--addr", "unix:/run/dcr-gateway/dcr.sock"])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--addr") && err.contains("TCP only"), "{err}");
}

async fn call(addr: &str, args: &[&str]) -> serde_json::Value {
    let out = gateway()
        .arg("call")
        .args(args)
        .args(["--addr", &format!("http://{addr}")])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "call {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn serve_dev_upstream_and_call_every_rpc() {
    let (mut child, addr) = serve(&["--dev-upstream"]).await;
    let created = call(
        &addr,
        &[
            "register",
            "--metadata",
            r#"{"client_name":"cli","grant_types":["client_credentials"]}"#,
        ],
    )
    .await;
    let id = created["client_id"].as_str().unwrap().to_owned();
    assert_eq!(
        created["registration_access_token"].as_str().unwrap().len(),
        64
    );
    let got = call(&addr, &["get", "--client-id", &id]).await;
    assert_eq!(got["client_name"], "cli");
    let updated = call(
        &addr,
        &[
            "update",
            "--client-id",
            &id,
            "--metadata",
            r#"{"client_name":"cli2"}"#,
            "--mask",
            "client_name",
        ],
    )
    .await;
    assert_eq!(updated["client_name"], "cli2");
    assert_eq!(updated["grant_types"][0], "client_credentials");
    let rotated = call(&addr, &["rotate-secret", "--client-id", &id]).await;
    assert_eq!(rotated["client_secret"].as_str().unwrap().len(), 64);
    let rotated = call(&addr, &["rotate-token", "--client-id", &id]).await;
    assert_ne!(
        rotated["registration_access_token"],
        created["registration_access_token"]
    );
    let deleted = call(&addr, &["delete", "--client-id", &id]).await;
    assert_eq!(deleted, serde_json::json!({}));

    let out = gateway()
        .args([
            "call",
            "get",
            "--client-id",
            &id,
            "--addr",
            &format!("http://{addr}"),
        ])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Unauthenticated"));

    // A managed client's token: the secret never leaves the gateway.
    let ensured = call(
        &addr,
        &[
            "ensure",
            "--name",
            "cli-svc",
            "--metadata",
            r#"{"client_name":"svc","grant_types":["client_credentials"],"scope":"a b"}"#,
        ],
    )
    .await;
    assert_eq!(ensured["outcome"], "CREATED");
    let token = call(&addr, &["token", "--name", "cli-svc", "--scope", "b"]).await;
    assert_eq!(token["access_token"].as_str().unwrap().len(), 64);
    assert_eq!(token["scope"], "b");
    assert!(token["expires_at"].as_i64().unwrap() > 0);
    let listed = call(&addr, &["list"]).await;
    assert_eq!(listed["clients"][0]["access_tokens"]["held"], 1);

    // health and list as the helm test pod calls them: the address from
    // DCR_GATEWAY_ADDR, bare HOST:PORT as the manifests give it to the app.
    for (rpc, field) in [("health", "status"), ("list", "clients")] {
        let out = gateway()
            .args(["call", rpc])
            .env("DCR_GATEWAY_ADDR", &addr)
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "call {rpc}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let reply: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(reply.get(field).is_some(), "call {rpc}: {reply}");
        if rpc == "health" {
            assert_eq!(reply["status"], "SERVING");
            assert_eq!(reply["service"], "dcr.v1.DynamicClientRegistration");
        }
    }

    // SIGTERM: a clean, prompt exit.
    let pid = child.id().unwrap().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("exits after SIGTERM")
        .unwrap();
    assert!(status.success(), "{status:?}");
}
