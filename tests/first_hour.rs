//! The first hour of a new user, as typed: the README's order, the tokens
//! command's advice appended to the command that printed it, messages that
//! say why (a gateway not running, metadata that is not JSON, a mistyped
//! config key, a credentials file written), and reflection for `grpcurl`.

mod support;

use std::time::Duration;

use support::process::{gateway, run, serve_with};
use tokio_stream::StreamExt as _;

const README: &str = include_str!("../README.md");

/// The README's command lines (inside its ```sh blocks), in order.
fn readme_commands() -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut in_block = false;
    for line in README.lines() {
        match (line.trim_start().starts_with("```"), in_block) {
            (true, false) => in_block = line.trim() == "```sh",
            (true, true) => in_block = false,
            (false, true) => out.push(line.trim()),
            (false, false) => {}
        }
    }
    out
}

#[test]
fn the_readme_puts_dcr_gateway_on_path_before_any_bare_use() {
    let commands = readme_commands();
    let install = commands
        .iter()
        .position(|l| l.starts_with("export PATH=\"$PWD/target/release:$PATH\""))
        .expect("a step that puts dcr-gateway on PATH");
    let first_bare = commands
        .iter()
        .position(|l| l.starts_with("dcr-gateway "))
        .expect("the README uses dcr-gateway");
    assert!(
        install < first_bare,
        "{:?} comes before the step that puts dcr-gateway on PATH",
        commands[first_bare]
    );
    // Prose before the step does not name a bare command either.
    let step = README.find("export PATH=").unwrap();
    assert!(
        !README[..step].contains("`dcr-gateway "),
        "the README names a bare `dcr-gateway …` command before the PATH step"
    );
}

#[test]
fn the_readme_says_what_the_commands_need_before_them() {
    let quick = README.find("## Quick start").expect("a Quick start");
    let commands = quick + README[quick..].find("```sh").expect("its commands");
    let before = &README[quick..commands];
    for needed in ["package registries", "minutes", "GB", "redis-server"] {
        assert!(
            before.contains(needed),
            "the quick start does not say {needed:?} before its commands"
        );
    }
}

/// `tokens …` in `dir`, with no settings from the test's environment.
async fn tokens(dir: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = gateway()
        .arg("tokens")
        .args(args)
        .current_dir(dir)
        .output()
        .await
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    (out.status.success(), text)
}

#[tokio::test]
async fn the_tokens_advice_works_as_typed() {
    let dir = support::temp_dir("first-hour-tokens");
    // Where no store exists (the quick start runs on the memory store):
    // said so, and nothing created.
    let (ok, said) = tokens(&dir, &["list"]).await;
    assert!(!ok, "{said}");
    assert!(
        said.contains("no token store at dcr-gateway-tokens.redb"),
        "{said}"
    );
    assert!(said.contains("memory store"), "{said}");
    assert!(!dir.join("dcr-gateway-tokens.redb").exists());

    // A plaintext store, made by an import with the flag appended.
    let export = dir.join("empty.json");
    std::fs::write(&export, r#"{"tokens":[],"managed_clients":[]}"#).unwrap();
    let import = [
        "import",
        "--file",
        export.to_str().unwrap(),
        "--allow-plaintext-store",
    ];
    let (ok, said) = tokens(&dir, &import).await;
    assert!(ok, "{said}");

    // Without a keyring, the advice names a flag; appended as printed, it works.
    let (ok, said) = tokens(&dir, &["list"]).await;
    assert!(!ok, "{said}");
    let flag = said
        .split_whitespace()
        .find(|w| w.trim_end_matches(['.', ',', ')']) == "--allow-plaintext-store")
        .expect("the advice names --allow-plaintext-store")
        .trim_end_matches(['.', ',', ')']);
    let (ok, said) = tokens(&dir, &["list", flag]).await;
    assert!(ok, "`tokens list {flag}`: {said}");
    assert!(said.contains("0 token(s)"), "{said}");
    // Before the subcommand too: a boolean flag never takes `list` as its value.
    let (ok, said) = tokens(&dir, &[flag, "list"]).await;
    assert!(ok, "`tokens {flag} list`: {said}");
}

#[tokio::test]
async fn call_against_nothing_says_the_connection_was_refused_and_where() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap().to_string();
    drop(closed);
    let (ok, _, err) = run(&["call", "health", "--addr", &addr]).await;
    assert!(!ok);
    assert!(err.contains(&addr), "{err}");
    assert!(err.contains("connection refused"), "{err}");
    assert!(err.contains("Is the gateway running"), "{err}");
    assert!(!err.contains("transport error"), "{err}");
}

#[tokio::test]
async fn metadata_that_is_not_json_says_where_and_what() {
    let args = ["call", "register", "--metadata", r#"{"client_name": }"#];
    let (ok, _, err) = run(&args).await;
    assert!(!ok);
    assert!(err.contains("--metadata is not JSON"), "{err}");
    assert!(err.contains("line 1 column"), "{err}");
    let (_, _, err) = run(&["call", "register", "--metadata", "[1]"]).await;
    assert!(err.contains("must be a JSON object"), "{err}");
}

#[tokio::test]
async fn a_mistyped_config_key_gets_the_closest_one() {
    let dir = support::temp_dir("first-hour-config");
    let file = dir.join("gateway.toml");
    std::fs::write(&file, "dev_upstream = true\nupstream_timout = \"5s\"\n").unwrap();
    let (ok, _, err) = run(&["serve", "--config", file.to_str().unwrap()]).await;
    assert!(!ok);
    assert!(err.contains("line 2"), "{err}");
    assert!(err.contains("did you mean `upstream_timeout`?"), "{err}");
    assert!(!err.contains("max_in_flight"), "every key listed: {err}");
}

#[tokio::test]
async fn a_written_credentials_file_is_logged_without_its_secret() {
    let dir = support::temp_dir("first-hour-credentials");
    let config = dir.join("gateway.toml");
    let credentials = dir.join("credentials");
    std::fs::create_dir(&credentials).unwrap();
    std::fs::write(
        &config,
        format!(
            "credentials_dir = {:?}\n\n[[clients]]\nname = \"billing-api\"\n\
             [clients.metadata]\nclient_name = \"billing\"\n\
             grant_types = [\"client_credentials\"]\n",
            credentials.to_str().unwrap()
        ),
    )
    .unwrap();
    let args = ["--dev-upstream", "--config", config.to_str().unwrap()];
    let served = serve_with(&args, &[]).await;
    let file = credentials.join("billing-api.json");
    let line = support::eventually(Duration::from_secs(20), || {
        let log = served.log.lock().unwrap().clone();
        async move {
            log.lines()
                .find(|l| l.contains("wrote the credentials file"))
                .map(str::to_owned)
        }
    })
    .await;
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let id = written["client_id"].as_str().unwrap();
    let secret = written["client_secret"].as_str().unwrap();
    assert!(line.contains(" INFO "), "{line}");
    assert!(line.contains(id), "{line}");
    assert!(line.contains(file.to_str().unwrap()), "{line}");
    let log = served.log.lock().unwrap().clone();
    assert!(!log.contains(secret), "the log shows the secret");
}

#[tokio::test]
async fn reflection_lists_and_describes_the_service() {
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::{ServerReflectionRequest, ServerReflectionResponse};

    let served = serve_with(&["--dev-upstream"], &[]).await;
    let channel = support::channel(served.addr.parse().unwrap()).await;
    let mut reflection = ServerReflectionClient::new(channel);
    let ask = |message: MessageRequest| ServerReflectionRequest {
        host: String::new(),
        message_request: Some(message),
    };
    let asks = vec![
        ask(MessageRequest::ListServices(String::new())),
        ask(MessageRequest::FileContainingSymbol(
            "dcr.v1.DynamicClientRegistration".into(),
        )),
    ];
    let mut answers = reflection
        .server_reflection_info(tokio_stream::iter(asks))
        .await
        .expect("reflection is served")
        .into_inner();
    let mut got = Vec::new();
    while got.len() < 2 {
        let answer: ServerReflectionResponse = answers.next().await.unwrap().unwrap();
        got.push(answer.message_response.unwrap());
    }
    let mut got = got.into_iter();
    let Some(MessageResponse::ListServicesResponse(list)) = got.next() else {
        panic!("not a list of services");
    };
    let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
    assert!(
        names.contains(&"dcr.v1.DynamicClientRegistration"),
        "{names:?}"
    );
    let Some(MessageResponse::FileDescriptorResponse(files)) = got.next() else {
        panic!("not a file descriptor");
    };
    let described = files
        .file_descriptor_proto
        .iter()
        .any(|f| String::from_utf8_lossy(f).contains("RegisterClient"));
    assert!(described, "the descriptor does not describe RegisterClient");
}

#[tokio::test]
async fn help_speaks_of_any_rfc_7591_server() {
    let (_, out, _) = run(&["--help"]).await;
    assert!(out.contains("any RFC 7591/7592"), "{out}");
}
