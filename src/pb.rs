//! Code generated from `proto/dcr/v1/dcr.proto` by `build.rs`.
#![allow(missing_docs, clippy::all)]

/// The `dcr.v1` protobuf package: messages, client and server.
pub mod v1 {
    tonic::include_proto!("dcr.v1");
}

/// The encoded file descriptor set of every proto file, served by gRPC reflection
/// so tools such as grpcurl can call the gateway without the `.proto` files.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("dcr_descriptor");
