//! The dev upstream speaks SharkAuth's exact HTTP contract (raw HTTP, no gateway):
//! statuses, key order and presence per route, encoding, errors and routing.

use dcr_dev_upstream::DevUpstream;
use reqwest::{Client, Method, StatusCode};
use serde_json::Value;

async fn dev_upstream() -> DevUpstream {
    DevUpstream::start("127.0.0.1:0".parse().unwrap(), None)
        .await
        .expect("dev upstream starts")
}

fn http() -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::new()
}

async fn send(
    method: Method,
    url: String,
    rat: Option<&str>,
    body: Option<&str>,
) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let mut req = http().request(method, url);
    if let Some(rat) = rat {
        req = req.header("Authorization", format!("Bearer {rat}"));
    }
    if let Some(body) = body {
        req = req
            .header("Content-Type", "application/json")
            .body(body.to_owned());
    }
    let resp = req.send().await.unwrap();
    let (status, headers) = (resp.status(), resp.headers().clone());
    (status, headers, resp.text().await.unwrap())
}

fn keys(text: &str) -> Vec<String> {
    // serde_json without preserve_order sorts keys, so read the order from the text.
    let v: Value = serde_json::from_str(text).unwrap();
    let mut found: Vec<(usize, String)> = v
        .as_object()
        .unwrap()
        .keys()
        .map(|k| (text.find(&format!("\"{k}\":")).unwrap(), k.clone()))
        .collect();
    found.sort();
    found.into_iter().map(|(_, k)| k).collect()
}

#[tokio::test]
async fn register_then_every_route_matches_the_contract() {
    let dev = dev_upstream().await;
    let base = dev.base_url();
    let body = r#"{"client_name":" Shop ","redirect_uris":["https://shop.example/cb?a=1&b=2"],"scope":"  a   b ","jwks_uri":"https://x/jwks","CONTACTS":["o@x"]} trailing garbage"#;
    let (status, headers, text) = send(
        Method::POST,
        format!("{base}/oauth/register"),
        None,
        Some(body),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    assert_eq!(headers["content-type"], "application/json");
    assert!(text.ends_with('\n'));
    assert!(text.contains(r"\u0026"), "Go escapes & in strings: {text}");
    assert_eq!(
        keys(&text),
        [
            "client_id",
            "client_secret",
            "client_id_issued_at",
            "client_secret_expires_at",
            "registration_access_token",
            "registration_client_uri",
            "client_name",
            "redirect_uris",
            "grant_types",
            "response_types",
            "token_endpoint_auth_method",
            "scope",
            "contacts",
        ]
    );
    let v: Value = serde_json::from_str(&text).unwrap();
    let id = v["client_id"].as_str().unwrap().to_owned();
    let rat = v["registration_access_token"].as_str().unwrap().to_owned();
    assert!(id.starts_with("shark_dcr_") && id.len() == 31);
    assert!(
        rat.len() == 64
            && rat
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    assert_eq!(v["client_name"], " Shop ", "echoed untrimmed");
    assert_eq!(v["scope"], "a b", "register normalises the scope");
    assert_eq!(v["client_secret_expires_at"], 0);
    assert_eq!(
        v["registration_client_uri"],
        format!("{base}/oauth/register/{id}")
    );
    assert!(v.get("jwks_uri").is_none(), "unknown members are dropped");

    let url = format!("{base}/oauth/register/{id}");
    let (status, _, text) = send(Method::GET, url.clone(), Some(&rat), None).await;
    assert_eq!(status, StatusCode::OK);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["scope"], "  a   b ", "GET returns the raw stored scope");
    assert_eq!(v["registration_access_token"], "", "GET shows an empty RAT");
    assert!(v.get("client_secret").is_none());

    let (status, _, text) = send(
        Method::PUT,
        url.clone(),
        Some(&rat),
        Some(r#"{"client_name":"x"}"#),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "PUT re-applies the authorization_code default"
    );
    assert_eq!(
        text,
        "{\"error\":\"invalid_redirect_uri\",\"error_description\":\"redirect_uris is required for authorization_code grant\"}\n"
    );
    let put = r#"{"client_name":"x","grant_types":["client_credentials"],"token_endpoint_auth_method":"magic"}"#;
    let (status, _, text) = send(Method::PUT, url.clone(), Some(&rat), Some(put)).await;
    assert_eq!(
        (status, text.contains("failed to update client")),
        (StatusCode::INTERNAL_SERVER_ERROR, true)
    );

    let (status, _, text) = send(Method::POST, format!("{url}/secret"), Some(&rat), None).await;
    assert_eq!(status, StatusCode::OK);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (v["client_name"].clone(), v["grant_types"].clone()),
        (Value::from(""), Value::Null)
    );
    assert_eq!(v["registration_access_token"], "");
    assert_eq!(v["client_secret"].as_str().unwrap().len(), 64);

    let (status, _, text) = send(
        Method::DELETE,
        format!("{url}/registration-token"),
        Some(&rat),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let v: Value = serde_json::from_str(&text).unwrap();
    let rat2 = v["registration_access_token"].as_str().unwrap().to_owned();
    assert!(v.get("client_secret").is_none());
    let (status, _, text) = send(Method::GET, url.clone(), Some(&rat), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(text.contains("invalid registration access token"));

    let (status, _, text) = send(Method::DELETE, url.clone(), Some(&rat2), None).await;
    assert_eq!((status, text.as_str()), (StatusCode::NO_CONTENT, ""));
    let (status, _, text) = send(Method::DELETE, url.clone(), Some(&rat2), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(text.contains("client not found"));
}

#[tokio::test]
async fn rat_check_order_and_routing_quirks() {
    let dev = dev_upstream().await;
    let base = dev.base_url();
    let missing = "missing or malformed Authorization Bearer token";
    let (status, _, text) = send(Method::GET, format!("{base}/oauth/register/x"), None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(text.contains(missing));
    let lower = http()
        .get(format!("{base}/oauth/register/x"))
        .header("Authorization", "bearer abc")
        .send()
        .await
        .unwrap();
    assert!(
        lower.text().await.unwrap().contains(missing),
        "the Bearer prefix is case-sensitive"
    );
    // Bad token and bad body on PUT: the RAT check runs first, so 401 not 400.
    let (status, _, _) = send(
        Method::PUT,
        format!("{base}/oauth/register/x"),
        Some("t"),
        Some("{"),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (status, _, text) = send(Method::GET, format!("{base}/oauth/register/"), None, None).await;
    assert_eq!(
        (status, text.as_str()),
        (StatusCode::NOT_FOUND, "404 page not found\n")
    );
    let (status, _, _) = send(Method::GET, format!("{base}/oauth/register/x/"), None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, text) = send(
        Method::POST,
        format!("{base}/oauth/register//secret"),
        None,
        None,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "an empty id mid-path reaches the handler: {text}"
    );

    let (status, headers, text) =
        send(Method::GET, format!("{base}/oauth/register"), None, None).await;
    assert_eq!(
        (status, text.as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, "")
    );
    assert_eq!(headers.get_all("allow").iter().count(), 1);
    let (status, headers, _) =
        send(Method::POST, format!("{base}/oauth/register/x"), None, None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(headers.get_all("allow").iter().count(), 3);
}

#[tokio::test]
async fn validation_messages_are_sharkauths() {
    let dev = dev_upstream().await;
    let url = format!("{}/oauth/register", dev.base_url());
    for (body, code, description) in [
        ("", "invalid_client_metadata", "invalid JSON body"),
        (
            r#"{"client_name":5}"#,
            "invalid_client_metadata",
            "invalid JSON body",
        ),
        ("null", "invalid_client_metadata", "client_name is required"),
        (
            r#"{"client_name":"x","grant_types":["implicit"]}"#,
            "invalid_client_metadata",
            r#"unsupported grant_type "implicit""#,
        ),
        (
            r#"{"client_name":"x","redirect_uris":["not-a-url"]}"#,
            "invalid_redirect_uri",
            r#""not-a-url" is not an absolute URI"#,
        ),
        (
            r#"{"client_name":"x","redirect_uris":["ftp://x/cb"]}"#,
            "invalid_redirect_uri",
            r#""ftp://x/cb": scheme "ftp" is not allowed (use https or http://localhost)"#,
        ),
    ] {
        let (status, _, text) = send(Method::POST, url.clone(), None, Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            (
                v["error"].as_str().unwrap(),
                v["error_description"].as_str().unwrap()
            ),
            (code, description),
            "{body}"
        );
    }
    let huge = format!(r#"{{"client_name":"{}"}}"#, "x".repeat(2 << 20));
    let (status, _, text) = send(Method::POST, url.clone(), None, Some(&huge)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        text.contains("invalid JSON body"),
        "the 1 MiB cap reads as invalid JSON"
    );
    let bad_method = r#"{"client_name":"x","grant_types":["client_credentials"],"token_endpoint_auth_method":"magic"}"#;
    let (status, _, text) = send(Method::POST, url, None, Some(bad_method)).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(text.contains("failed to store client registration"));
    assert_eq!(dev.clients_created(), 0);
}

#[tokio::test]
async fn admin_api_scripts_faults_and_counts_requests() {
    let dev = dev_upstream().await;
    let base = dev.base_url();
    let fault = r#"{"route":"register","times":1,"kind":"status","status":503,"retry_after":"2"}"#;
    let (status, _, _) = send(
        Method::POST,
        format!("{base}/_dev/faults"),
        None,
        Some(fault),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, text) = send(
        Method::POST,
        format!("{base}/_dev/faults"),
        None,
        Some(r#"{"route":"nowhere"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");

    let body = r#"{"client_name":"x","grant_types":["client_credentials"]}"#;
    let (status, headers, _) = send(
        Method::POST,
        format!("{base}/oauth/register"),
        None,
        Some(body),
    )
    .await;
    assert_eq!(
        (status, headers["retry-after"].to_str().unwrap()),
        (StatusCode::SERVICE_UNAVAILABLE, "2")
    );
    let (status, _, _) = send(
        Method::POST,
        format!("{base}/oauth/register"),
        None,
        Some(body),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "the fault applied once");

    let (status, _, text) = send(Method::GET, format!("{base}/_dev/stats"), None, None).await;
    assert_eq!(status, StatusCode::OK);
    let stats: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(stats["requests"]["register"], 2);
    assert_eq!(stats["clients_created"], 1);

    let every = r#"{"route":"any","kind":"status","status":500}"#;
    send(
        Method::POST,
        format!("{base}/_dev/faults"),
        None,
        Some(every),
    )
    .await;
    let (status, _, _) = send(
        Method::POST,
        format!("{base}/oauth/register"),
        None,
        Some(body),
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    let (status, _, _) = send(Method::DELETE, format!("{base}/_dev/faults"), None, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, _) = send(
        Method::POST,
        format!("{base}/oauth/register"),
        None,
        Some(body),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
}
