// A real, OpenID Certified provider (oidc-provider) for the end-to-end tests of
// oxd for Go, with the UMA 2.0 authorization server of uma.mjs on top.
//
// Usage:
//   node provider.mjs [--port N] [--issuer URL] [--profile open|static]
//
// --port 0 (the default) lets the kernel pick a free loopback port; the issuer
// is then http://127.0.0.1:<port>. The process prints exactly one ready line,
//   listening on http://127.0.0.1:<port>
// once it answers requests, and exits cleanly on SIGTERM or SIGINT.
//
// It listens on 127.0.0.1 only, over plain http. Everything lives in memory:
// a fresh process is a fresh provider.
//
// Environment (all optional):
//   OP_PORT, OP_ISSUER                 same as --port, --issuer
//   OP_TTL_ACCESS_TOKEN      600       seconds
//   OP_TTL_ID_TOKEN          600
//   OP_TTL_REFRESH_TOKEN     3600
//   OP_TTL_CODE              60
//   OP_TTL_CLIENT_CREDENTIALS 600
//   OP_TTL_INTERACTION       600
//   OP_TTL_SESSION           3600
//   OP_TTL_GRANT             3600
//   OP_STORE_SIZE            1000      entries of the in-memory store (clients,
//                            sessions, grants, codes, tokens share it; the
//                            least recently used go first, registered clients
//                            included): load tests need more
//   OP_ROTATE_REFRESH_TOKEN  unset     1: every refresh_token grant rotates the
//                            refresh token (the old one stops working)
//   OP_CLIENTS               JSON array of static client metadata, added to
//                            dynamically registered ones
//   OP_CLIENTS_FILE          path of a file with the same JSON array (for
//                            client secrets, which do not belong in the
//                            environment); its clients come after those of OP_CLIENTS
//   OP_PROFILE               same as --profile
//   OP_SECRETS_FILE          unset     path of a ledger: every secret the OP issues
//                            or receives (client secrets, codes, access, refresh
//                            and ID tokens, RPTs, registration access tokens,
//                            client assertions), one per line, appended; the
//                            secrets audit of the e2e suite looks for them in
//                            the logs of our processes
//
// Profiles:
//   open (default)  open dynamic registration (RFC 7591/7592) plus any static
//                   clients.
//   static          the way most production OPs are set up: no registration
//                   endpoint (registration and registrationManagement off),
//                   only the static clients of OP_CLIENTS / OP_CLIENTS_FILE,
//                   which may use any token_endpoint_auth_method
//                   (client_secret_basic, client_secret_post,
//                   client_secret_jwt, private_key_jwt with their jwks or
//                   jwks_uri, none with PKCE). At least one static client is
//                   required. Introspection, revocation, RP-initiated logout
//                   and RFC 9207 iss are on in both profiles.
//   OP_UMA_*                 see uma.mjs
//
// Demo accounts: devInteractions accepts any login and any password; the login
// is the account id (the sub). alice, bob and carol have fixed claims (see
// DEMO_USERS); any other login gets claims derived from it.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { appendFileSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import Provider, { errors } from 'oidc-provider';
import MemoryAdapter from 'oidc-provider/lib/adapters/memory_adapter.js';
import LRU from 'oidc-provider/lib/helpers/lru.js';

import { addUMA, umaExtraTokenClaims, UMA_SCOPES } from './uma.mjs';

function arg(name) {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0 && i + 1 < process.argv.length) return process.argv[i + 1];
  const eq = process.argv.find((a) => a.startsWith(`--${name}=`));
  return eq ? eq.slice(name.length + 3) : undefined;
}

function intEnv(name, def) {
  const v = process.env[name];
  if (v === undefined || v === '') return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) {
    console.error(`${name} must be a positive integer, got ${JSON.stringify(v)}`);
    process.exit(2);
  }
  return n;
}

const HOST = '127.0.0.1';
const requestedPort = Number(arg('port') ?? process.env.OP_PORT ?? 0);
if (!Number.isInteger(requestedPort) || requestedPort < 0 || requestedPort > 65535) {
  console.error(`invalid port ${JSON.stringify(arg('port') ?? process.env.OP_PORT)}`);
  process.exit(2);
}

const DEMO_USERS = {
  alice: {
    sub: 'alice', name: 'Alice Example', given_name: 'Alice', family_name: 'Example',
    preferred_username: 'alice', email: 'alice@example.test', email_verified: true,
  },
  bob: {
    sub: 'bob', name: 'Bob Example', given_name: 'Bob', family_name: 'Example',
    preferred_username: 'bob', email: 'bob@example.test', email_verified: false,
  },
  carol: {
    sub: 'carol', name: 'Carol Example', given_name: 'Carol', family_name: 'Example',
    preferred_username: 'carol', email: 'carol@example.test', email_verified: true,
  },
};

function accountClaims(id) {
  return DEMO_USERS[id] ?? {
    sub: id, name: `User ${id}`, given_name: 'User', family_name: id,
    preferred_username: id, email: `${id}@example.test`, email_verified: false,
  };
}

// Token endpoint client authentication (oidc-provider's default set, made
// explicit so the UMA metadata can repeat it).
const CLIENT_AUTH_METHODS = ['client_secret_basic', 'client_secret_jwt', 'client_secret_post', 'private_key_jwt', 'none'];

const SCOPES = ['openid', 'profile', 'email', 'offline_access', 'oxd', ...UMA_SCOPES];

// Small pages without external resources (the browser in the tests has no
// network besides loopback).
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const page = (title, body) => `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>${esc(title)}</title></head>
<body><main id="op-page"><h1>${esc(title)}</h1>${body}</main></body></html>`;

function clientList(name, text) {
  try {
    const list = JSON.parse(text);
    if (!Array.isArray(list)) throw new TypeError('not an array');
    return list;
  } catch (err) {
    // The message names the problem, never the content (it holds secrets).
    console.error(`${name} must be a JSON array of client metadata: ${err.name}`);
    process.exit(2);
  }
  return [];
}

function staticClients() {
  const out = [];
  if (process.env.OP_CLIENTS) out.push(...clientList('OP_CLIENTS', process.env.OP_CLIENTS));
  if (process.env.OP_CLIENTS_FILE) {
    let text;
    try {
      text = readFileSync(process.env.OP_CLIENTS_FILE, 'utf8');
    } catch (err) {
      console.error(`OP_CLIENTS_FILE cannot be read: ${err.code || err.message}`);
      process.exit(2);
    }
    out.push(...clientList('OP_CLIENTS_FILE', text));
  }
  return out;
}

const PROFILE = arg('profile') ?? process.env.OP_PROFILE ?? 'open';
if (PROFILE !== 'open' && PROFILE !== 'static') {
  console.error(`unknown profile ${JSON.stringify(PROFILE)} (open or static)`);
  process.exit(2);
}

async function main() {
  const server = createServer();
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(requestedPort, HOST, resolve);
  });
  const { port } = server.address();
  const issuer = (arg('issuer') ?? process.env.OP_ISSUER ?? `http://${HOST}:${port}`).replace(/\/$/, '');

  // Keys are made at start: nothing on disk, nothing shared between runs.
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: `k-${randomBytes(4).toString('hex')}`, use: 'sig', alg: 'RS256' };

  const clients = staticClients();
  if (PROFILE === 'static' && clients.length === 0) {
    console.error('the static profile needs static clients (OP_CLIENTS or OP_CLIENTS_FILE)');
    process.exit(2);
  }
  const registration = PROFILE === 'open';

  const configuration = {
    clients,
    clientAuthMethods: CLIENT_AUTH_METHODS,
    // The library's in-memory store (a quick-start, development-only adapter),
    // with a size of our choosing. Passing it in also keeps the library from
    // printing its warning about it.
    adapter: (() => {
      const store = new LRU({ maxSize: intEnv('OP_STORE_SIZE', 1000) });
      return (model) => new MemoryAdapter(model, store);
    })(),
    jwks: { keys: [jwk] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    scopes: SCOPES,
    claims: {
      openid: ['sub'],
      profile: ['name', 'given_name', 'family_name', 'preferred_username'],
      email: ['email', 'email_verified'],
    },
    // id_token carries the claims of the requested scopes (name, email, ...)
    // even when an access token is issued alongside it.
    conformIdTokenClaims: false,
    async findAccount(ctx, id) {
      return {
        accountId: id,
        async claims() { return { ...accountClaims(id) }; },
      };
    },
    extraClientMetadata: {
      // UMA claims redirect URIs may be registered separately from redirect_uris.
      properties: ['claims_redirect_uri'],
      validator(ctx, key, value) {
        if (key !== 'claims_redirect_uri' || value === undefined) return;
        if (!Array.isArray(value) || !value.every((u) => typeof u === 'string' && /^https?:\/\//.test(u))) {
          throw new errors.InvalidClientMetadata('claims_redirect_uri must be an array of http(s) URIs');
        }
      },
    },
    extraTokenClaims: umaExtraTokenClaims,
    // The test applications listen on loopback only: outgoing requests to
    // loopback (back-channel logout, client JWKS) skip the provider's
    // protection against special-use addresses; any other target keeps it.
    fetch: (url, options) => {
      const host = new URL(url).hostname;
      if (host === '127.0.0.1' || host === '[::1]' || host === 'localhost') delete options.dispatcher;
      return fetch(url, options);
    },
    features: {
      devInteractions: { enabled: true },
      // open profile: open registration (no initial access token); static
      // profile: none at all, as at OPs with pre-registered clients only.
      registration: { enabled: registration },
      registrationManagement: { enabled: registration, rotateRegistrationAccessToken: false },
      clientCredentials: { enabled: true },
      introspection: {
        enabled: true,
        // Any authenticated confidential client may introspect (resource servers
        // introspect tokens issued to other clients, e.g. RPTs).
        allowedPolicy: async (ctx, client, token) => client.clientAuthMethod !== 'none' || token.clientId === client.clientId,
      },
      revocation: {
        enabled: true,
        // A client revokes its own tokens only.
        allowedPolicy: async (ctx, client, token) => token.clientId === client.clientId,
      },
      userinfo: { enabled: true },
      // OpenID Connect Back-Channel Logout: at end_session the provider
      // POSTs a logout token to the backchannel_logout_uri of every client
      // of the session.
      backchannelLogout: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: async (ctx, form) => {
          ctx.body = page('Sign out', `${form}
<p>Do you want to sign out from ${esc(ctx.host)}?</p>
<button id="logout-yes" type="submit" form="op.logoutForm" value="yes" name="logout">Yes, sign me out</button>
<button id="logout-no" type="submit" form="op.logoutForm">No, stay signed in</button>`);
        },
        postLogoutSuccessSource: async (ctx) => {
          ctx.body = page('Signed out', '<p id="signed-out">You are signed out.</p>');
        },
      },
    },
    // PKCE (S256 only) is accepted from every client and required from public ones.
    pkce: { required: (ctx, client) => client.clientAuthMethod === 'none' },
    // A refresh token for every client allowed the refresh_token grant, without
    // the offline_access + prompt=consent dance.
    issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
    ...(process.env.OP_ROTATE_REFRESH_TOKEN === '1' ? { rotateRefreshToken: () => true } : {}),
    ttl: {
      AccessToken: intEnv('OP_TTL_ACCESS_TOKEN', 600),
      IdToken: intEnv('OP_TTL_ID_TOKEN', 600),
      RefreshToken: intEnv('OP_TTL_REFRESH_TOKEN', 3600),
      AuthorizationCode: intEnv('OP_TTL_CODE', 60),
      ClientCredentials: intEnv('OP_TTL_CLIENT_CREDENTIALS', 600),
      Interaction: intEnv('OP_TTL_INTERACTION', 600),
      Session: intEnv('OP_TTL_SESSION', 3600),
      Grant: intEnv('OP_TTL_GRANT', 3600),
    },
    renderError: async (ctx, out) => {
      ctx.type = 'html';
      ctx.body = page('Error', Object.entries(out)
        .map(([k, v]) => `<p class="op-error" data-key="${esc(k)}"><strong>${esc(k)}</strong>: ${esc(v)}</p>`).join(''));
    },
  };

  const provider = new Provider(issuer, configuration);
  if (process.env.OP_SECRETS_FILE) provider.use(secretsLedger(process.env.OP_SECRETS_FILE));
  addUMA(provider, issuer, registration ? {} : { registration: false, tokenEndpointAuthMethods: CLIENT_AUTH_METHODS });
  provider.on('server_error', (ctx, err) => console.error('server_error', err));
  provider.on('backchannel.success', (ctx, client) => console.error(`backchannel.success: ${client.clientId}`));
  // The reasons behind 4xx answers (their descriptions are generic on purpose)
  // go to the log, which the test harness shows when a test fails.
  for (const ev of ['authorization.error', 'grant.error', 'userinfo.error', 'introspection.error',
    'revocation.error', 'end_session.error', 'registration_create.error', 'registration_update.error',
    'registration_delete.error', 'jwks.error', 'discovery.error', 'check_session.error', 'backchannel.error']) {
    provider.on(ev, (ctx, err) => {
      console.error(`${ev}: ${err.error || err.name}: ${err.error_description || err.message}${err.error_detail ? ` (${err.error_detail})` : ''}${err.cause ? ` (cause: ${err.cause.code || err.cause.message})` : ''}`);
    });
  }

  server.on('request', provider.callback());

  const stop = () => {
    server.close(() => process.exit(0));
    server.closeAllConnections?.();
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);

  if (PROFILE !== 'open') console.error(`profile ${PROFILE}: ${clients.length} static clients, no registration endpoint`);
  console.log(`listening on ${issuer}`);
}

// secretsLedger is a middleware that appends every secret of a request and
// of its answer to the file at path (see OP_SECRETS_FILE). It runs first, so
// it sees every endpoint, UMA's included.
function secretsLedger(path) {
  const PARAMS = ['code', 'refresh_token', 'client_secret', 'client_assertion', 'token', 'rpt', 'claim_token',
    'id_token_hint', 'code_verifier', 'pct'];
  const ANSWER = ['access_token', 'refresh_token', 'id_token', 'client_secret', 'registration_access_token', 'pct',
    'code'];
  return async (ctx, next) => {
    const found = [];
    const add = (v) => { if (typeof v === 'string' && v.length > 0) found.push(v); };
    try {
      await next();
    } finally {
      const auth = ctx.get('authorization') || '';
      if (/^basic /i.test(auth)) {
        const dec = Buffer.from(auth.slice(6).trim(), 'base64').toString('utf8');
        const i = dec.indexOf(':');
        if (i >= 0) {
          add(dec.slice(i + 1));
          try { add(decodeURIComponent(dec.slice(i + 1))); } catch { /* not URL-encoded */ }
        }
      } else if (/^(bearer|dpop) /i.test(auth)) {
        add(auth.replace(/^\S+\s+/, ''));
      }
      const params = ctx.oidc?.params || {};
      for (const k of PARAMS) add(params[k]);
      let body = ctx.body;
      if (typeof body === 'string' && body.startsWith('{')) {
        try { body = JSON.parse(body); } catch { body = undefined; }
      }
      if (body && typeof body === 'object' && !Buffer.isBuffer(body) && typeof body.pipe !== 'function') {
        for (const k of ANSWER) add(body[k]);
      }
      const loc = ctx.response.get('location');
      if (loc) {
        try {
          const u = new URL(loc, 'http://x');
          const frag = new URLSearchParams(u.hash.replace(/^#/, ''));
          for (const k of ['code', 'access_token', 'id_token']) {
            add(u.searchParams.get(k));
            add(frag.get(k));
          }
        } catch { /* not a URL */ }
      }
      if (found.length > 0) appendFileSync(path, `${found.join('\n')}\n`, { mode: 0o600 });
    }
  };
}

main().catch((err) => {
  console.error('provider failed to start:', err);
  process.exit(1);
});

