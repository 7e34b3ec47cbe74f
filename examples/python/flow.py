"""Manages OAuth clients through dcr-gateway from Python, printing each step.

First the way without a secret: the service asks the sidecar for an access
token by its client's name (GetAccessToken) and presents it, never holding the
client's secret. Then the managed way: EnsureClient names the client the
service needs (the sidecar registers it once and keeps its secret), and a
WatchClient stream delivers every new secret. Then each plain RPC, one by one.

Stubs are generated from ../../proto by grpcio-tools into ./gen on every run,
so they always match the contract.
"""

import argparse
import json
import pathlib
import sys
import urllib.request

import grpc
from grpc_tools import protoc

HERE = pathlib.Path(__file__).resolve().parent
PROTO = HERE.parent.parent / "proto"
GEN = HERE / "gen"


def generate_stubs():
    GEN.mkdir(exist_ok=True)
    well_known = pathlib.Path(protoc.__file__).parent / "_proto"
    args = ["protoc", f"-I{PROTO}", f"-I{well_known}", f"--python_out={GEN}", f"--grpc_python_out={GEN}", "dcr/v1/dcr.proto"]
    if protoc.main(args) != 0:
        sys.exit("could not generate the stubs from proto/")
    sys.path.insert(0, str(GEN))


def tokens(stub, pb, resource):
    """Get an access token for a managed client and present it; no secret here."""
    want = pb.ClientMetadata(client_name="python-tokens", grant_types=["client_credentials"], scope="reports:read")
    stub.EnsureClient(pb.EnsureClientRequest(name="python-tokens", metadata=want), timeout=10)
    ask = pb.GetAccessTokenRequest(name="python-tokens", scopes=["reports:read"])
    token = stub.GetAccessToken(ask, timeout=10)
    print(f"got an access token for python-tokens: {token.token_type}, scope {token.scope!r}, expires at {token.expires_at.seconds}")
    again = stub.GetAccessToken(ask, timeout=10)
    print(f"asked again, the sidecar's held token: {again.access_token == token.access_token}")
    if resource:
        request = urllib.request.Request(resource, headers={"Authorization": f"Bearer {token.access_token}"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            about = json.load(answer)
        print(f"the resource accepted the token: active {about['active']}, scope {about['scope']!r}")
    stub.ForgetClient(pb.ForgetClientRequest(name="python-tokens", delete_upstream=True), timeout=10)


def managed(stub, pb):
    """Ensure a named client, follow it, and see a rotation arrive."""
    want = pb.ClientMetadata(client_name="python-managed", grant_types=["client_credentials"])
    ensure = pb.EnsureClientRequest(name="python-example", metadata=want)
    ensured = stub.EnsureClient(ensure, timeout=10)
    outcome = pb.EnsureOutcome.Name(ensured.outcome)
    print(f"ensured python-example: {outcome} {ensured.client.client_id} (secret received: {ensured.client.HasField('client_secret')})")
    again = stub.EnsureClient(ensure, timeout=10)
    print(f"ensured it again: {pb.EnsureOutcome.Name(again.outcome)}, same client: {again.client.client_id == ensured.client.client_id}")

    watch = stub.WatchClient(pb.WatchClientRequest(name="python-example"), timeout=30)
    first = next(watch)
    print(f"watching: {pb.ClientChange.Name(first.change)}")
    stub.RotateClientSecret(pb.RotateClientSecretRequest(client_id=ensured.client.client_id), timeout=10)
    change = next(watch)
    fresh = change.client.client_secret != ensured.client.client_secret
    print(f"the watcher saw the new secret: {pb.ClientChange.Name(change.change)} (a new one: {fresh})")
    watch.cancel()

    stub.ForgetClient(pb.ForgetClientRequest(name="python-example", delete_upstream=True), timeout=10)
    print("forgot python-example and deleted its client")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--addr", default="127.0.0.1:50051", help="the gateway's gRPC address")
    parser.add_argument("--resource", help="a URL that takes the access token as Authorization: Bearer")
    args = parser.parse_args()
    addr = args.addr

    generate_stubs()
    from dcr.v1 import dcr_pb2 as pb
    from dcr.v1 import dcr_pb2_grpc as rpc
    from google.protobuf import field_mask_pb2

    with grpc.insecure_channel(addr) as channel:
        stub = rpc.DynamicClientRegistrationStub(channel)
        tokens(stub, pb, args.resource)
        managed(stub, pb)
        metadata = pb.ClientMetadata(client_name="python-example", grant_types=["client_credentials"])
        client = stub.RegisterClient(pb.RegisterClientRequest(metadata=metadata), timeout=10).client
        print(f"registered {client.client_id} (secret and registration access token received)")

        got = stub.GetClient(pb.GetClientRequest(client_id=client.client_id), timeout=10).client
        print(f"read {got.client_id}: name {got.metadata.client_name!r}")

        update = pb.UpdateClientRequest(
            client_id=client.client_id,
            metadata=pb.ClientMetadata(client_name="python-example-renamed"),
            update_mask=field_mask_pb2.FieldMask(paths=["client_name"]),
        )
        updated = stub.UpdateClient(update, timeout=10).client
        print(f"updated name to {updated.metadata.client_name!r}, grant types kept: {list(updated.metadata.grant_types)}")

        rotated = stub.RotateClientSecret(pb.RotateClientSecretRequest(client_id=client.client_id), timeout=10).client
        print(f"rotated the client secret (new one received: {rotated.HasField('client_secret')})")

        rotated = stub.RotateRegistrationToken(pb.RotateRegistrationTokenRequest(client_id=client.client_id), timeout=10).client
        print(f"rotated the registration access token (stored by the gateway: {rotated.HasField('registration_access_token')})")

        stub.DeleteClient(pb.DeleteClientRequest(client_id=client.client_id), timeout=10)
        print(f"deleted {client.client_id}")

        try:
            stub.GetClient(pb.GetClientRequest(client_id=client.client_id), timeout=10)
            sys.exit("the deleted client can still be read")
        except grpc.RpcError as err:
            print(f"reading it again: {err.code().name}")
    print("flow complete")


if __name__ == "__main__":
    main()
