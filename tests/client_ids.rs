//! Client ids go into URLs as exactly one percent-encoded path segment: ids with
//! `/`, `..`, `%`, spaces or unicode reach the dev upstream as that same id.

mod support;

use support::scripted::{Answer, Scripted};
use support::{TestGateway, dev_upstream, get_req};
use tonic::Code;

const RAT: &str = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

#[tokio::test]
async fn hostile_ids_reach_the_upstream_as_one_id() {
    let dev = dev_upstream().await;
    let gw = TestGateway::start(&dev.base_url()).await;
    let mut client = gw.client().await;
    for id in [
        "a/b",
        "../../admin",
        "..",
        "%2F",
        "100%",
        "with space",
        "ünïcødé/客户",
        "a?b#c",
        "x/secret",
    ] {
        if id == ".." {
            let err = client.get_client(get_req(id, Some(RAT))).await.unwrap_err();
            assert_eq!(
                err.code(),
                Code::InvalidArgument,
                "`..` cannot be one URL segment"
            );
            continue;
        }
        dev.seed_client(id, RAT, "seeded");
        let got = client
            .get_client(get_req(id, Some(RAT)))
            .await
            .unwrap_or_else(|e| panic!("{id:?}: {e:?}"));
        let got = got.into_inner().client.unwrap();
        assert_eq!(got.client_id, id, "the upstream saw exactly {id:?}");
        assert_eq!(got.metadata.unwrap().client_name.as_deref(), Some("seeded"));
    }
}

#[tokio::test]
async fn encoded_path_is_one_segment_on_the_wire() {
    let answer = r#"{"client_id":"a/../b c%"}"#;
    let upstream = Scripted::start(vec![Answer::json(200, answer)]).await;
    let gw = TestGateway::start(&upstream.url()).await;
    let mut client = gw.client().await;
    let rotate = dcr_gateway::pb::v1::RotateClientSecretRequest {
        client_id: "a/../b c%".into(),
        registration_access_token: Some(RAT.into()),
    };
    client.rotate_client_secret(rotate).await.unwrap();
    let sent = &upstream.requests()[0];
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.path, "/oauth/register/a%2F..%2Fb%20c%25/secret");
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Bearer {RAT}").as_str())
    );
}
