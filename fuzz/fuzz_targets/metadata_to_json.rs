//! A caller's `ClientMetadata` (arbitrary protobuf: huge and odd strings, deep
//! `Struct` nesting) → checked domain metadata → request JSON, never a panic.
#![no_main]

use dcr_gateway::api::metadata_from_proto;
use dcr_gateway::dcr::json::metadata_to_json;
use dcr_gateway::pb::v1 as pb;
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let Ok(message) = pb::ClientMetadata::decode(data) else {
        return;
    };
    if let Ok(metadata) = metadata_from_proto(message, "metadata") {
        let json = metadata_to_json(&metadata);
        serde_json::to_vec(&json).expect("checked metadata always serialises");
    }
});
