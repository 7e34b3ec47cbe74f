// node-oidc-provider as a real RFC 7591/7592 peer for the gateway's tests.
// Listens on an ephemeral loopback port and prints "listening <port>".
// INITIAL_ACCESS_TOKEN set: registration requires that initial access token.
// CLIENT_CREDENTIALS_TTL set: client credentials tokens live that many seconds.
import http from 'node:http';
import Provider from 'oidc-provider';

const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const { port } = server.address();
const iat = process.env.INITIAL_ACCESS_TOKEN;

const provider = new Provider(`http://127.0.0.1:${port}`, {
  features: {
    devInteractions: { enabled: false },
    registration: { enabled: true, initialAccessToken: iat || false },
    registrationManagement: { enabled: true, rotateRegistrationAccessToken: true },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
  },
  scopes: ['openid', 'offline_access', 'api:read', 'api:write'],
  ttl: { ClientCredentials: Number(process.env.CLIENT_CREDENTIALS_TTL || 600) },
});
provider.on('server_error', (ctx, err) => console.error('server_error', err));
server.on('request', provider.callback());
console.log(`listening ${port}`);
