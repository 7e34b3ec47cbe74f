//! The README's retry and token tables say what the code's operation table
//! says, row by row, so the documentation cannot drift from the behaviour.

use dcr_gateway::{
    Answer, Authority, Body, CLIENT_ID_SEGMENT, GoneAfterLostAnswer, Operation, Place, StoreEffect,
};

const README: &str = include_str!("../README.md");

/// The rows of the first Markdown table after the line `header`, as cells.
fn table_after(header: &str) -> Vec<Vec<String>> {
    let start = README
        .find(header)
        .unwrap_or_else(|| panic!("README has no {header:?}"));
    README[start..]
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_owned())
                .collect()
        })
        .collect()
}

/// The row naming `op` (a row may name several, comma-separated).
fn row(rows: &[Vec<String>], op: Operation) -> &[String] {
    rows.iter()
        .find(|r| r[0].split(',').any(|name| name.trim() == op.rpc_name()))
        .unwrap_or_else(|| panic!("no README row for {}", op.rpc_name()))
}

#[test]
fn the_retry_table_matches_the_operation_table() {
    let rows = table_after("## Retries, deadlines and load");
    for op in Operation::ALL {
        let cells = row(&rows, op);
        assert_eq!(
            cells[1],
            "yes",
            "{}: every operation is retried when nothing left",
            op.rpc_name()
        );
        let retried_after_arrival = !cells[2].starts_with("**never**");
        assert_eq!(
            retried_after_arrival,
            op.spec().idempotent,
            "{}: README says {:?}",
            op.rpc_name(),
            cells[2]
        );
    }
}

#[test]
fn the_token_table_matches_the_operation_table() {
    let rows = table_after("## Registration access tokens");
    for op in Operation::ALL {
        let text = row(&rows, op)[1].to_lowercase();
        let documented = if text.starts_with("stores the new") {
            StoreEffect::Store
        } else if text.starts_with("stores a new one if") {
            StoreEffect::StoreIfPresent
        } else if text.starts_with("unchanged") {
            StoreEffect::Keep
        } else if text.starts_with("replaced") {
            StoreEffect::Replace
        } else if text.starts_with("forgotten") {
            StoreEffect::Forget
        } else {
            panic!("{}: README says {text:?}", op.rpc_name())
        };
        assert_eq!(documented, op.spec().on_success, "{}", op.rpc_name());
    }
}

#[test]
fn every_operation_has_its_own_rpc_span_and_route() {
    let mut names: Vec<&str> = Operation::ALL.iter().map(|o| o.rpc_name()).collect();
    names.dedup();
    assert_eq!(names.len(), Operation::ALL.len());
    for op in Operation::ALL {
        let spec = op.spec();
        assert!(spec.span.ends_with(spec.rpc), "{spec:?}");
        assert!(spec.path.under_base.starts_with("/oauth/"), "{spec:?}");
        let suffix = match spec.path.place {
            Place::Client { suffix } => suffix,
            Place::Registration | Place::Token => None,
        };
        assert_eq!(
            suffix.is_some(),
            !spec.path.in_rfc7592,
            "only SharkAuth's rotations have a suffix: {spec:?}"
        );
        // Both routes end the same way: the suffix, the client, or the
        // registration endpoint.
        match (spec.path.place, suffix) {
            (_, Some(suffix)) => {
                assert!(spec.path.under_base.ends_with(&format!("/{suffix}")));
                assert!(spec.path.at_endpoint.ends_with(&format!("/{suffix}")));
            }
            (Place::Client { .. }, None) => {
                assert!(spec.path.under_base.ends_with(CLIENT_ID_SEGMENT));
                assert_eq!(spec.path.at_endpoint, "{registration_client_uri}");
            }
            (Place::Registration, None) => {
                assert!(!spec.path.under_base.contains(CLIENT_ID_SEGMENT));
                assert_eq!(spec.path.at_endpoint, "{registration_endpoint}");
            }
            (Place::Token, None) => {
                assert!(!spec.path.under_base.contains(CLIENT_ID_SEGMENT));
                assert_eq!(spec.path.at_endpoint, "{token_endpoint}");
            }
        }
        // A client's route names the client and is authorised by its token;
        // a registration by the initial access token; a token request by
        // the client's own credentials, in a form, answered by a token.
        let authority = match spec.path.place {
            Place::Client { .. } => Authority::RegistrationAccessToken,
            Place::Registration => Authority::InitialAccessToken,
            Place::Token => Authority::ClientCredentials,
        };
        assert_eq!(spec.authority, authority, "{spec:?}");
        assert_eq!(
            spec.path.place == Place::Token,
            spec.body == Body::TokenForm && spec.answer == Answer::AccessToken,
            "{spec:?}"
        );
        // Only an answer with nothing to read makes "gone" after a lost
        // answer mean done, and it forgets the token.
        assert_eq!(
            spec.answer == Answer::Nothing,
            spec.gone_after_lost_answer == GoneAfterLostAnswer::Done,
            "{spec:?}"
        );
        if spec.answer == Answer::Nothing {
            assert_eq!(spec.on_success, StoreEffect::Forget, "{spec:?}");
        }
    }
}
