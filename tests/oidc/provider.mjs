// A real OpenID provider for the resource-server tests: node-oidc-provider
// (OpenID Certified) on plain http on loopback, started by
// tests/support/oidc_provider.rs.
//
//   node tests/oidc/provider.mjs [--port N]      (or OIDC_PORT; default 0)
//
// Prints one line `listening http://127.0.0.1:PORT` on stdout once it serves;
// the issuer is that URL. Everything lives in memory and dies with the process.
//
// Environment:
//   OIDC_PORT            port to listen on (0: any free port)
//   OIDC_REDIRECT_URIS   space-separated redirect URIs of the public `spa`
//                        client (authorization code + PKCE); default
//                        http://127.0.0.1/callback
//   OIDC_EXIT_ON_EOF=1   exit when standard input closes
//   OIDC_TLS_CERT, OIDC_TLS_KEY
//                        PEM files: serve https (the issuer is then
//                        https://127.0.0.1:PORT), e.g. tests/keys/tls/
//
// Clients (client_secret_basic unless noted):
//   cc-admin / cc-admin-secret    client credentials; Keycloak- and
//                                 Auth0-shaped role claims name `admin`
//   cc-reader / cc-reader-secret  client credentials; roles name only `reader`
//   introspector / introspector-secret  a resource server: introspection only
//   spa (public, PKCE)            authorization code, dev login page (any
//                                 login and password)
//
// Resources (resource indicators, RFC 8707; the audience is the indicator):
//   https://api.test        RFC 9068 JWT, RS256 (the default resource)
//   https://api-es.test     RFC 9068 JWT, ES256
//   https://typ-jwt.test    JWT, RS256, header typ `JWT` (as many IdPs send)
//   https://short.test      JWT, RS256, valid for 1 second
//   https://opaque.test     opaque tokens (check them by introspection)
// Scopes of every resource: notes:read notes:write admin
//
// Test-only admin routes (outside the provider's own routes):
//   POST /admin/rotate   new RS256 and ES256 keys sign from now on; the old
//                        ones stay published in the JWKS
//   POST /admin/retire   withdraw every key but the current ones
//   GET  /admin/keys     the public keys as PEM, by kid (for attack tests)
//   GET  /mismatch/.well-known/openid-configuration
//                        the real discovery document served from another
//                        path: its issuer does not match the URL it came from
//   GET  /.well-known/oauth-authorization-server
//                        the same metadata at the RFC 8414 location
import { generateKeyPairSync, createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';

const { values: args } = parseArgs({ options: { port: { type: 'string' } } });
const port = Number(args.port ?? process.env.OIDC_PORT ?? 0);
const redirectUris = (process.env.OIDC_REDIRECT_URIS ?? 'http://127.0.0.1/callback')
  .split(' ')
  .filter(Boolean);

const SCOPES = 'notes:read notes:write admin';
const ROLES_CLAIM = 'https://example.com/roles';

let generation = 0;
function newKeys() {
  generation += 1;
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
  return {
    rs: { ...rsa, kid: `rs-${generation}`, alg: 'RS256', use: 'sig' },
    es: { ...ec, kid: `es-${generation}`, alg: 'ES256', use: 'sig' },
  };
}

let current = newKeys();
let retained = [];

function resourceServer(indicator) {
  const jwt = (alg, extra = {}) => ({
    scope: SCOPES,
    audience: indicator,
    accessTokenFormat: 'jwt',
    accessTokenTTL: 300,
    jwt: { sign: { alg, kid: alg === 'ES256' ? current.es.kid : current.rs.kid } },
    ...extra,
  });
  switch (indicator) {
    case 'https://api.test':
    case 'https://typ-jwt.test':
      return jwt('RS256');
    case 'https://api-es.test':
      return jwt('ES256');
    case 'https://short.test':
      return jwt('RS256', { accessTokenTTL: 1 });
    case 'https://opaque.test':
      return { scope: SCOPES, audience: indicator, accessTokenFormat: 'opaque', accessTokenTTL: 300 };
    default:
      return undefined;
  }
}

// Keycloak-shaped (realm_access, resource_access.<client>) and Auth0-shaped
// (a namespaced roles claim, permissions) claims, by client.
function extraClaims(clientId) {
  const admin = clientId === 'cc-admin';
  return {
    realm_access: { roles: admin ? ['admin', 'offline_access'] : ['reader'] },
    resource_access: {
      [clientId]: { roles: admin ? ['notes-admin'] : ['notes-reader'] },
      account: { roles: ['view-profile'] },
    },
    [ROLES_CLAIM]: admin ? ['admin', 'editor'] : ['reader'],
    permissions: admin ? ['notes:delete', 'notes:read'] : ['notes:read'],
  };
}

function build(issuer) {
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: 'cc-admin',
        client_secret: 'cc-admin-secret',
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        scope: SCOPES,
      },
      {
        client_id: 'cc-reader',
        client_secret: 'cc-reader-secret',
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        scope: SCOPES,
      },
      {
        client_id: 'introspector',
        client_secret: 'introspector-secret',
        grant_types: [],
        response_types: [],
        redirect_uris: [],
      },
      {
        client_id: 'spa',
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code'],
        response_types: ['code'],
        redirect_uris: redirectUris,
        scope: `openid ${SCOPES}`,
      },
    ],
    jwks: { keys: [current.rs, current.es, ...retained] },
    scopes: ['openid', ...SCOPES.split(' ')],
    cookies: { keys: ['poem-secure-test-cookie-key'] },
    // Any origin may call the token endpoint (Swagger UI on a random port).
    clientBasedCORS: () => true,
    pkce: { required: () => true },
    findAccount: async (_ctx, sub) => ({
      accountId: sub,
      claims: async () => ({ sub }),
    }),
    features: {
      devInteractions: { enabled: true },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async (_ctx, _client, oneOf) => oneOf ?? 'https://api.test',
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx, indicator) => {
          const info = resourceServer(indicator);
          if (!info) throw new Provider.errors.InvalidTarget();
          return info;
        },
      },
    },
    formats: {
      customizers: {
        jwt: async (_ctx, token, jwt) => {
          if (token.resourceServer?.audience === 'https://typ-jwt.test') {
            jwt.header = { typ: 'JWT' };
          }
        },
      },
    },
    extraTokenClaims: async (_ctx, token) => extraClaims(token.clientId),
    ttl: {
      ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? 300,
      AccessToken: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? 300,
    },
  });
  provider.on('server_error', (_ctx, err) => console.error('server_error', err));
  return provider;
}

const publicPem = (jwk) => createPublicKey({ key: jwk, format: 'jwk' })
  .export({ format: 'pem', type: 'spki' });

let provider;
let handler;
const tls = process.env.OIDC_TLS_CERT && process.env.OIDC_TLS_KEY
  ? { cert: readFileSync(process.env.OIDC_TLS_CERT), key: readFileSync(process.env.OIDC_TLS_KEY) }
  : undefined;
const listener = (req, res) => {
  const url = new URL(req.url, 'http://x');
  const json = (status, body) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  if (req.method === 'POST' && url.pathname === '/admin/rotate') {
    retained = [current.rs, current.es, ...retained];
    current = newKeys();
    provider = build(provider.issuer);
    handler = provider.callback();
    return json(200, { rs: current.rs.kid, es: current.es.kid });
  }
  if (req.method === 'POST' && url.pathname === '/admin/retire') {
    retained = [];
    provider = build(provider.issuer);
    handler = provider.callback();
    return json(200, { rs: current.rs.kid, es: current.es.kid });
  }
  if (req.method === 'GET' && url.pathname === '/admin/keys') {
    const keys = {};
    for (const k of [current.rs, current.es, ...retained]) keys[k.kid] = publicPem(k);
    return json(200, { current: { rs: current.rs.kid, es: current.es.kid }, pem: keys });
  }
  if (
    req.method === 'GET'
    && (url.pathname === '/mismatch/.well-known/openid-configuration'
      || url.pathname === '/.well-known/oauth-authorization-server')
  ) {
    req.url = '/.well-known/openid-configuration';
  }
  return handler(req, res);
};
const server = tls ? createTlsServer(tls, listener) : createServer(listener);

server.listen(port, '127.0.0.1', () => {
  const issuer = `${tls ? 'https' : 'http'}://127.0.0.1:${server.address().port}`;
  provider = build(issuer);
  handler = provider.callback();
  console.log(`listening ${issuer}`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => process.exit(0));
}
// With OIDC_EXIT_ON_EOF=1 the provider also ends when its standard input
// closes: the test process that started it is gone, even if it never ran its
// clean-up (a provider shared by the tests of one binary).
if (process.env.OIDC_EXIT_ON_EOF === '1') {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));
  process.stdin.resume();
}
