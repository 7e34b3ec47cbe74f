// Manages OAuth clients through dcr-gateway from Node.js, printing each step:
// first the way without a secret (the service asks the sidecar for an access
// token by its client's name and presents it), then the managed way
// (EnsureClient names the client the service needs, and a WatchClient stream
// delivers every new secret), then each plain RPC.
// The contract is loaded from ../../proto at run time, so it always matches.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';

const here = path.dirname(fileURLToPath(import.meta.url));
const addrFlag = process.argv.indexOf('--addr');
const addr = addrFlag > 0 ? process.argv[addrFlag + 1] : '127.0.0.1:50051';
// A URL that takes the access token as `Authorization: Bearer`, if given.
const resourceFlag = process.argv.indexOf('--resource');
const resource = resourceFlag > 0 ? process.argv[resourceFlag + 1] : undefined;

const definition = protoLoader.loadSync('dcr/v1/dcr.proto', {
  includeDirs: [path.join(here, '..', '..', 'proto')],
  keepCase: true,
  enums: String,
  defaults: true,
  oneofs: true,
});
const dcr = grpc.loadPackageDefinition(definition).dcr.v1;
const client = new dcr.DynamicClientRegistration(addr, grpc.credentials.createInsecure());
const deadline = () => ({ deadline: Date.now() + 10_000 });
const call = (method, request) => promisify(client[method].bind(client))(request, deadline());

// Tokens: get an access token for a managed client and present it; no secret here.
const reports = { client_name: 'node-tokens', grant_types: ['client_credentials'], scope: 'reports:read' };
await call('EnsureClient', { name: 'node-tokens', metadata: reports });
const ask = { name: 'node-tokens', scopes: ['reports:read'] };
const issued = await call('GetAccessToken', ask);
console.log(`got an access token for node-tokens: ${issued.token_type}, scope '${issued.scope}', expires at ${issued.expires_at.seconds}`);
const held = await call('GetAccessToken', ask);
console.log(`asked again, the sidecar's held token: ${held.access_token === issued.access_token}`);
if (resource) {
  const answer = await fetch(resource, { headers: { Authorization: `Bearer ${issued.access_token}` } });
  const about = await answer.json();
  console.log(`the resource accepted the token: active ${about.active}, scope '${about.scope}'`);
}
await call('ForgetClient', { name: 'node-tokens', delete_upstream: true });

// Managed: ensure a named client, follow it, and see a rotation arrive.
const want = { client_name: 'node-managed', grant_types: ['client_credentials'] };
const ensured = await call('EnsureClient', { name: 'node-example', metadata: want });
console.log(`ensured node-example: ${ensured.outcome} ${ensured.client.client_id} (secret received: ${Boolean(ensured.client.client_secret)})`);
const again = await call('EnsureClient', { name: 'node-example', metadata: want });
console.log(`ensured it again: ${again.outcome}, same client: ${again.client.client_id === ensured.client.client_id}`);

const watch = client.WatchClient({ name: 'node-example' }, { deadline: Date.now() + 30_000 });
const messages = watch[Symbol.asyncIterator]();
const first = (await messages.next()).value;
console.log(`watching: ${first.change}`);
await call('RotateClientSecret', { client_id: ensured.client.client_id });
const change = (await messages.next()).value;
const fresh = change.client.client_secret !== ensured.client.client_secret;
console.log(`the watcher saw the new secret: ${change.change} (a new one: ${fresh})`);
watch.cancel();

await call('ForgetClient', { name: 'node-example', delete_upstream: true });
console.log('forgot node-example and deleted its client');

const registered = (await call('RegisterClient', {
  metadata: { client_name: 'node-example', grant_types: ['client_credentials'] },
})).client;
const id = registered.client_id;
console.log(`registered ${id} (secret and registration access token received)`);

const read = (await call('GetClient', { client_id: id })).client;
console.log(`read ${id}: name '${read.metadata.client_name}'`);

const updated = (await call('UpdateClient', {
  client_id: id,
  metadata: { client_name: 'node-example-renamed' },
  update_mask: { paths: ['client_name'] },
})).client;
console.log(`updated name to '${updated.metadata.client_name}', grant types kept: ${updated.metadata.grant_types}`);

const secret = (await call('RotateClientSecret', { client_id: id })).client;
console.log(`rotated the client secret (new one received: ${Boolean(secret.client_secret)})`);

const token = (await call('RotateRegistrationToken', { client_id: id })).client;
console.log(`rotated the registration access token (stored by the gateway: ${Boolean(token.registration_access_token)})`);

await call('DeleteClient', { client_id: id });
console.log(`deleted ${id}`);

try {
  await call('GetClient', { client_id: id });
  console.error('the deleted client can still be read');
  process.exit(1);
} catch (err) {
  console.log(`reading it again: ${grpc.status[err.code]}`);
}
client.close();
console.log('flow complete');
