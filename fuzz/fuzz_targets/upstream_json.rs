//! An upstream's response body → `Client`: whatever the authorization server
//! sends, parsing ends in a client or a field error, and a parsed client
//! survives the trip back to JSON and in again.
#![no_main]

use dcr_gateway::dcr::json::{client_from_json, client_to_json_exposing_secrets};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(obj) = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(data) else {
        return;
    };
    if let Ok(client) = client_from_json(obj) {
        let again = client_to_json_exposing_secrets(&client);
        assert!(client_from_json(again).is_ok(), "a parsed client must parse again");
    }
});
