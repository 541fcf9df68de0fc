// A real OpenID provider (panva's `oidc-provider`) for consentry's integration
// tests. TEST USE ONLY: development login/consent forms accept any login and
// any password, keys are throwaway development keys, state is in memory.
//
// Started by `tests/support/oidc.rs`; can be run by hand (see README.md).
// Prints exactly one line `LISTENING <port>` on stdout once it accepts
// connections on 127.0.0.1; everything else goes to stderr.

import * as fs from 'node:fs';
import * as http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

import Provider, { errors } from 'oidc-provider';

const HOST = '127.0.0.1';

function fail(message) {
  process.stderr.write(`provider.mjs: ${message}\n`);
  process.exit(2);
}

function envInt(name, fallback, { min = 0 } = {}) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) fail(`${name} must be an integer >= ${min}, got ${JSON.stringify(raw)}`);
  return value;
}

function envBool(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  if (['1', 'true', 'yes', 'on'].includes(raw.toLowerCase())) return true;
  if (['0', 'false', 'no', 'off'].includes(raw.toLowerCase())) return false;
  return fail(`${name} must be a boolean (1/0/true/false), got ${JSON.stringify(raw)}`);
}

function envList(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  return raw.split(/[\s,]+/).filter(Boolean);
}

// ---------------------------------------------------------------- settings

const PORT = envInt('PORT', 0);
if (PORT > 65535) fail('PORT must be <= 65535');
let ISSUER_PATH = process.env.ISSUER_PATH ?? '';
if (ISSUER_PATH === '/') ISSUER_PATH = '';
if (ISSUER_PATH && (!ISSUER_PATH.startsWith('/') || ISSUER_PATH.endsWith('/') || /[?#\s]/.test(ISSUER_PATH))) {
  fail(`ISSUER_PATH must look like "/tenant" (leading slash, no trailing slash), got ${JSON.stringify(ISSUER_PATH)}`);
}
const ACCESS_TOKEN_TTL = envInt('ACCESS_TOKEN_TTL', 5, { min: 1 });
const REFRESH_TOKEN_TTL = envInt('REFRESH_TOKEN_TTL', 24 * 60 * 60, { min: 1 });
const ROTATE_REFRESH_TOKEN = envBool('ROTATE_REFRESH_TOKEN', true);
const TOKEN_DELAY_MS = envInt('TOKEN_DELAY_MS', 0);
const EXIT_ON_STDIN_CLOSE = envBool('EXIT_ON_STDIN_CLOSE', true);
const REDIRECT_URIS = envList('REDIRECT_URIS', ['http://127.0.0.1/cb']);

const ALL_GRANTS = ['authorization_code', 'refresh_token'];

const DEFAULT_CLIENTS = [
  {
    client_id: 'client-basic',
    client_secret: 'client-basic-secret',
    token_endpoint_auth_method: 'client_secret_basic',
  },
  {
    client_id: 'client-post',
    client_secret: 'client-post-secret',
    token_endpoint_auth_method: 'client_secret_post',
  },
  {
    client_id: 'client-public',
    token_endpoint_auth_method: 'none',
  },
].map((client) => ({
  grant_types: ALL_GRANTS,
  response_types: ['code'],
  redirect_uris: REDIRECT_URIS,
  ...client,
}));

function loadClients() {
  let raw;
  let source;
  if (process.env.OIDC_CLIENTS_FILE) {
    source = `OIDC_CLIENTS_FILE=${process.env.OIDC_CLIENTS_FILE}`;
    try {
      raw = fs.readFileSync(process.env.OIDC_CLIENTS_FILE, 'utf8');
    } catch (err) {
      fail(`cannot read ${source}: ${err.message}`);
    }
  } else if (process.env.OIDC_CLIENTS) {
    source = 'OIDC_CLIENTS';
    raw = process.env.OIDC_CLIENTS;
  } else {
    return DEFAULT_CLIENTS;
  }
  let clients;
  try {
    clients = JSON.parse(raw);
  } catch (err) {
    fail(`${source} is not valid JSON: ${err.message}`);
  }
  if (!Array.isArray(clients) || clients.length === 0) fail(`${source} must be a non-empty JSON array of client metadata`);
  return clients.map((client) => ({
    grant_types: ALL_GRANTS,
    response_types: ['code'],
    redirect_uris: REDIRECT_URIS,
    ...client,
  }));
}

const CLIENTS = loadClients();

// ------------------------------------------------------------------- stats
// Counted in process, from the provider's own events, so a test can assert
// what the provider actually served (e.g. "exactly one refresh_token grant").

function emptyStats() {
  return {
    // Token endpoint, by grant_type: successes, failures, failures by OAuth
    // error code and by oidc-provider's detail ("refresh token already used",
    // "refresh token not found", "grant request is invalid", ...).
    grants: {},
    // Every grant the provider destroyed (`grant.revoked`), in order:
    // reuse of a rotated refresh token (route "token") or revocation of a
    // refresh token at the revocation endpoint (route "revocation").
    revoked_grants: [],
    // Refresh-token grants refused because the token had already been rotated.
    refresh_token_reuse: 0,
    // Per client: { [client_id]: { [grant_type]: { success, error } } }.
    by_client: {},
    // HTTP responses by route name and status: { token: { "200": 3, "400": 1 }, ... }.
    responses: {},
    server_errors: 0,
  };
}

let stats = emptyStats();

function grantBucket(grantType) {
  const key = grantType ?? 'unknown';
  stats.grants[key] ??= { success: 0, error: 0, errors: {}, details: {} };
  return stats.grants[key];
}

function clientBucket(clientId, grantType) {
  const c = (stats.by_client[clientId ?? 'unknown'] ??= {});
  return (c[grantType ?? 'unknown'] ??= { success: 0, error: 0 });
}

// ------------------------------------------------------------ the provider

// Every login name is an account; claims are derived from it.
async function findAccount(_ctx, id) {
  return {
    accountId: id,
    async claims(_use, _scope) {
      return {
        sub: id,
        email: `${id}@example.test`,
        email_verified: true,
        name: `Test User ${id}`,
        preferred_username: id,
      };
    },
  };
}

function start(port) {
  const issuer = `http://${HOST}:${port}${ISSUER_PATH}`;
  const provider = new Provider(issuer, {
    clients: CLIENTS,
    findAccount,
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'preferred_username'],
    },
    scopes: ['openid', 'offline_access', 'email', 'profile'],
    // Exact expiry, as the library's expiry tests need.
    clockTolerance: 0,
    rotateRefreshToken: ROTATE_REFRESH_TOKEN,
    // Refresh tokens only for grants that include offline_access (the default
    // policy, spelled out). offline_access itself is dropped by the
    // authorization endpoint unless the request has prompt=consent.
    issueRefreshToken: async (_ctx, client, code) => client.grantTypeAllowed('refresh_token') && code.scopes.has('offline_access'),
    ttl: {
      AccessToken: ACCESS_TOKEN_TTL,
      RefreshToken: REFRESH_TOKEN_TTL,
      AuthorizationCode: 60,
      IdToken: 3600,
      Interaction: 600,
      Session: 3600,
      Grant: Math.max(REFRESH_TOKEN_TTL, 3600),
    },
    cookies: { keys: ['consentry-test-cookie-key-not-secret'] },
    pkce: {
      // S256 is the only method oidc-provider 9 accepts. Required for public
      // clients (token_endpoint_auth_method "none"), optional (but verified
      // when sent) for confidential ones.
      required: (_ctx, client) => client.clientAuthMethod === 'none',
    },
    features: {
      devInteractions: { enabled: true },
      revocation: { enabled: true },
      introspection: { enabled: true },
      userinfo: { enabled: true },
      // RFC 8707; without a `resource` parameter tokens stay opaque and are
      // accepted by userinfo. With one, the resource must be an http(s) URL
      // on 127.0.0.1 and the access token is an opaque token for it.
      resourceIndicators: {
        enabled: true,
        defaultResource: async (_ctx, _client, oneOf) => oneOf,
        useGrantedResource: async () => false,
        getResourceServerInfo: async (_ctx, resource) => {
          const url = new URL(resource);
          if (url.hostname !== HOST) throw new errors.InvalidTarget();
          return { scope: 'api:read api:write', accessTokenFormat: 'opaque', accessTokenTTL: ACCESS_TOKEN_TTL };
        },
      },
    },
  });
  // RFC 9207 `iss` in authorization responses is always on in oidc-provider 9
  // (discovery: authorization_response_iss_parameter_supported = true).

  provider.on('grant.success', (ctx) => {
    const gty = ctx.oidc.params?.grant_type;
    grantBucket(gty).success += 1;
    clientBucket(ctx.oidc.client?.clientId, gty).success += 1;
  });
  provider.on('grant.error', (ctx, err) => {
    const gty = ctx.oidc?.params?.grant_type;
    const bucket = grantBucket(gty);
    bucket.error += 1;
    const code = err.error ?? 'unknown';
    bucket.errors[code] = (bucket.errors[code] ?? 0) + 1;
    const detail = err.error_detail ?? err.error_description ?? code;
    bucket.details[detail] = (bucket.details[detail] ?? 0) + 1;
    clientBucket(ctx.oidc?.client?.clientId, gty).error += 1;
    if (gty === 'refresh_token' && err.error_detail === 'refresh token already used') {
      stats.refresh_token_reuse += 1;
    }
    process.stderr.write(`provider.mjs: token error grant_type=${gty} ${code}: ${err.error_detail ?? err.error_description ?? ''}\n`);
  });
  provider.on('grant.revoked', (ctx, grantId) => {
    stats.revoked_grants.push({
      grant_id: grantId,
      route: ctx.oidc?.route ?? null,
      client_id: ctx.oidc?.client?.clientId ?? null,
    });
  });
  provider.on('server_error', (ctx, err) => {
    stats.server_errors += 1;
    process.stderr.write(`provider.mjs: server_error on ${ctx.path}: ${err.stack ?? err}\n`);
  });

  // Outermost middleware: count responses per route and status, and delay
  // token responses when TOKEN_DELAY_MS is set (widens race windows in
  // concurrency tests: the grant is processed, the answer comes later).
  provider.use(async (ctx, next) => {
    await next();
    const route = ctx._matchedRouteName ?? 'unmatched';
    const byStatus = (stats.responses[route] ??= {});
    byStatus[ctx.status] = (byStatus[ctx.status] ?? 0) + 1;
    if (route === 'token' && TOKEN_DELAY_MS > 0) await sleep(TOKEN_DELAY_MS);
  });

  return provider;
}

// ------------------------------------------------------------- HTTP server

let handler = null;
const RFC8414_WITH_PATH = ISSUER_PATH ? `/.well-known/oauth-authorization-server${ISSUER_PATH}` : null;

function sendJson(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(text);
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://placeholder');
  if (url.pathname === '/__test/stats' && req.method === 'GET') {
    sendJson(res, 200, stats);
    return;
  }
  if (url.pathname === '/__test/stats/reset' && req.method === 'POST') {
    stats = emptyStats();
    sendJson(res, 200, stats);
    return;
  }
  if (url.pathname === '/__test/health') {
    sendJson(res, 200, { ok: true });
    return;
  }
  if (ISSUER_PATH) {
    // RFC 8414 §3.1 path insertion: /.well-known/oauth-authorization-server/<path>.
    // Mounted like express's `app.use(ISSUER_PATH, provider.callback())`:
    // `req.url` loses the prefix and `req.originalUrl` keeps it, which is how
    // oidc-provider finds its mount path when it builds endpoint URLs.
    if (url.pathname === RFC8414_WITH_PATH) {
      req.url = `/.well-known/oauth-authorization-server${url.search}`;
      req.originalUrl = `${ISSUER_PATH}${req.url}`;
    } else if (url.pathname === ISSUER_PATH || url.pathname.startsWith(`${ISSUER_PATH}/`)) {
      req.originalUrl = req.url;
      req.url = req.url.slice(ISSUER_PATH.length) || '/';
    } else {
      sendJson(res, 404, { error: 'not_found', error_description: `outside issuer path ${ISSUER_PATH}` });
      return;
    }
  }
  handler(req, res);
});

let shuttingDown = false;
function shutdown(reason) {
  if (shuttingDown) return;
  shuttingDown = true;
  process.stderr.write(`provider.mjs: shutting down (${reason})\n`);
  server.close(() => process.exit(0));
  server.closeAllConnections();
  // Never linger.
  setTimeout(() => process.exit(0), 1000).unref();
}

process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
if (EXIT_ON_STDIN_CLOSE) {
  // The test harness holds our stdin; when the test process dies (even by
  // SIGKILL) the pipe closes and we exit instead of becoming an orphan.
  process.stdin.on('end', () => shutdown('stdin closed'));
  process.stdin.on('close', () => shutdown('stdin closed'));
  process.stdin.on('error', () => shutdown('stdin error'));
  process.stdin.resume();
}

server.on('error', (err) => fail(`cannot listen on ${HOST}:${PORT}: ${err.message}`));
server.listen(PORT, HOST, () => {
  const { port } = server.address();
  const provider = start(port);
  handler = provider.callback();
  process.stderr.write(`provider.mjs: issuer ${provider.issuer}, clients ${CLIENTS.map((c) => c.client_id).join(', ')}, `
    + `access token TTL ${ACCESS_TOKEN_TTL}s, refresh token TTL ${REFRESH_TOKEN_TTL}s, rotation ${ROTATE_REFRESH_TOKEN}\n`);
  process.stdout.write(`LISTENING ${port}\n`);
});
