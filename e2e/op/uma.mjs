// UMA 2.0 authorization server (UMA Grant + Federated Authorization) on top of
// oidc-provider, for the end-to-end tests of oxd for Go.
//
// Endpoints (issuer-relative):
//   GET  /.well-known/uma2-configuration
//   POST /uma/resource_set            create   (PAT)  -> 201 {_id}
//   GET  /uma/resource_set            list     (PAT)  -> 200 [_id, ...]
//   GET|PUT|DELETE /uma/resource_set/:id      (PAT)
//   POST /uma/permission              {resource_id, resource_scopes} or an array (PAT) -> 201 {ticket}
//   GET  /uma/gather_claims           claims interaction page (requesting party)
//   POST /uma/gather_claims           -> 303 claims_redirect_uri?ticket=<new>&state=<state>
//   POST /token grant_type=urn:ietf:params:oauth:grant-type:uma-ticket -> RPT
//   POST /token/introspection         RPTs come back with "permissions"
//
// A PAT is any valid access token (client_credentials or code flow) whose scope
// includes uma_protection. Resources belong to the client of the PAT that
// registered them; other clients neither see nor use them.
//
// Policy of the uma-ticket grant (test knobs, comma-separated lists where an
// entry ending in "*" is a prefix):
//   OP_UMA_DENY_SCOPES       deny*    any requested scope matching -> 403 request_denied
//   OP_UMA_NEED_INFO_SCOPES  claims*  any requested scope matching -> 403 need_info unless
//                                     a claim_token is pushed or the email claim was
//                                     gathered at /uma/gather_claims
//   OP_UMA_TICKET_TTL        300      seconds
//   OP_UMA_RPT_TTL           600      seconds
// Everything else is granted. Tickets are single use.
import { randomBytes } from 'node:crypto';
import { errors } from 'oidc-provider';

export const UMA_GRANT = 'urn:ietf:params:oauth:grant-type:uma-ticket';
export const UMA_SCOPES = ['uma_protection', 'uma_authorization'];
export const ID_TOKEN_FORMAT = 'http://openid.net/specs/openid-connect-core-1_0.html#IDToken';

const PERMISSIONS = Symbol('uma-permissions');
const MAX_BODY = 64 * 1024;

// extraTokenClaims hook: an RPT carries its permissions into introspection.
export function umaExtraTokenClaims(ctx, token) {
  return token[PERMISSIONS] ? { permissions: token[PERMISSIONS] } : undefined;
}

const newId = () => randomBytes(18).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function matcher(spec) {
  const patterns = String(spec).split(',').map((s) => s.trim()).filter(Boolean);
  return (scope) => patterns.some((p) => (p.endsWith('*') ? scope.startsWith(p.slice(0, -1)) : scope === p));
}

function positiveInt(name, def) {
  const v = process.env[name];
  if (v === undefined || v === '') return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer`);
  return n;
}

async function readBody(ctx) {
  const chunks = [];
  let size = 0;
  for await (const c of ctx.req) {
    size += c.length;
    if (size > MAX_BODY) {
      const err = new Error('request body too large');
      err.status = 413;
      throw err;
    }
    chunks.push(c);
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function readJSON(ctx) {
  const s = await readBody(ctx);
  if (!s) return undefined;
  try {
    return JSON.parse(s);
  } catch {
    return Symbol.for('invalid');
  }
}

function json(ctx, status, body) {
  ctx.status = status;
  ctx.set('Cache-Control', 'no-store');
  ctx.type = 'application/json';
  ctx.body = body;
}

function html(ctx, status, title, body) {
  ctx.status = status;
  ctx.set('Cache-Control', 'no-store');
  ctx.type = 'html';
  ctx.body = `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>${esc(title)}</title></head>
<body><main id="uma-page"><h1>${esc(title)}</h1>${body}</main></body></html>`;
}

export function addUMA(provider, issuer, opts = {}) {
  const ticketTTL = opts.ticketTTL ?? positiveInt('OP_UMA_TICKET_TTL', 300);
  const rptTTL = opts.rptTTL ?? positiveInt('OP_UMA_RPT_TTL', 600);
  const denied = matcher(opts.denyScopes ?? process.env.OP_UMA_DENY_SCOPES ?? 'deny*');
  const needsInfo = matcher(opts.needInfoScopes ?? process.env.OP_UMA_NEED_INFO_SCOPES ?? 'claims*');
  // The UMA metadata mirrors the OP's: no registration_endpoint when
  // registration is off (the static profile), and the token endpoint's
  // authentication methods.
  const registration = opts.registration ?? true;
  const tokenAuthMethods = opts.tokenEndpointAuthMethods ?? ['client_secret_basic', 'client_secret_post'];

  const resources = new Map(); // _id -> { desc, clientId }
  const tickets = new Map(); // ticket -> { permissions, clientId (RS), exp, claims }
  const gatherPath = '/uma/gather_claims';

  function issueTicket(record) {
    const t = now();
    for (const [k, v] of tickets) if (v.exp <= t) tickets.delete(k);
    const ticket = newId();
    tickets.set(ticket, { ...record, exp: t + ticketTTL });
    return ticket;
  }

  function liveTicket(ticket) {
    const rec = typeof ticket === 'string' ? tickets.get(ticket) : undefined;
    if (!rec) return undefined;
    if (rec.exp <= now()) {
      tickets.delete(ticket);
      return undefined;
    }
    return rec;
  }

  async function protectionToken(ctx) {
    const m = /^Bearer\s+(\S+)$/i.exec(ctx.get('authorization') || '');
    if (!m) return undefined;
    const t = (await provider.AccessToken.find(m[1])) || (await provider.ClientCredentials.find(m[1]));
    if (!t || !t.isValid) return undefined;
    if (!String(t.scope || '').split(' ').includes('uma_protection')) return undefined;
    return t;
  }

  function validDescription(desc) {
    return desc && typeof desc === 'object' && !Array.isArray(desc)
      && Array.isArray(desc.resource_scopes) && desc.resource_scopes.length > 0
      && desc.resource_scopes.every((s) => typeof s === 'string' && s !== '');
  }

  async function claimsRedirectAllowed(clientId, uri) {
    if (typeof clientId !== 'string' || typeof uri !== 'string') return undefined;
    const client = await provider.Client.find(clientId);
    if (!client) return undefined;
    const registered = [...(client.redirectUris || []), ...(client.metadata().claims_redirect_uri || [])];
    return registered.includes(uri) ? client : undefined;
  }

  function gatherForm(q, message) {
    return `${message ? `<p id="error" class="error">${esc(message)}</p>` : ''}
<p>The resource you asked for needs your e-mail address.</p>
<form method="post" action="${esc(`${issuer}${gatherPath}`)}">
  <input type="hidden" name="client_id" value="${esc(q.client_id)}">
  <input type="hidden" name="ticket" value="${esc(q.ticket)}">
  <input type="hidden" name="claims_redirect_uri" value="${esc(q.claims_redirect_uri)}">
  <input type="hidden" name="state" value="${esc(q.state ?? '')}">
  <label>E-mail <input type="email" name="email" id="email" required></label>
  <button type="submit" id="submit-claims">Submit</button>
</form>`;
  }

  async function gatherClaims(ctx) {
    const isPost = ctx.method === 'POST';
    const q = isPost
      ? Object.fromEntries(new URLSearchParams(await readBody(ctx)))
      : Object.fromEntries(new URLSearchParams(ctx.querystring));
    // Never redirect anywhere before the client and its claims_redirect_uri are known.
    if (!(await claimsRedirectAllowed(q.client_id, q.claims_redirect_uri))) {
      return html(ctx, 400, 'Invalid request', '<p id="error">unknown client_id or unregistered claims_redirect_uri</p>');
    }
    if (!liveTicket(q.ticket)) {
      return html(ctx, 400, 'Invalid request', '<p id="error">invalid or expired ticket</p>');
    }
    if (!isPost) return html(ctx, 200, 'Claims required', gatherForm(q));
    const email = String(q.email ?? '').trim();
    if (!/^[^@\s]+@[^@\s]+$/.test(email)) {
      return html(ctx, 400, 'Claims required', gatherForm(q, 'a valid e-mail address is required'));
    }
    const rec = tickets.get(q.ticket);
    tickets.delete(q.ticket); // single use: the client gets a new one
    const ticket = issueTicket({ permissions: rec.permissions, clientId: rec.clientId, claims: { ...rec.claims, email } });
    const target = new URL(q.claims_redirect_uri);
    target.searchParams.set('ticket', ticket);
    if (q.state !== undefined && q.state !== '') target.searchParams.set('state', q.state);
    ctx.status = 303;
    ctx.set('Cache-Control', 'no-store');
    ctx.redirect(target.href);
    return undefined;
  }

  provider.use(async (ctx, next) => {
    const p = ctx.path;
    if (p === '/.well-known/uma2-configuration' && ctx.method === 'GET') {
      const doc = {
        issuer,
        authorization_endpoint: `${issuer}/auth`,
        token_endpoint: `${issuer}/token`,
        jwks_uri: `${issuer}/jwks`,
        registration_endpoint: `${issuer}/reg`,
        introspection_endpoint: `${issuer}/token/introspection`,
        revocation_endpoint: `${issuer}/token/revocation`,
        end_session_endpoint: `${issuer}/session/end`,
        resource_registration_endpoint: `${issuer}/uma/resource_set`,
        permission_endpoint: `${issuer}/uma/permission`,
        claims_interaction_endpoint: `${issuer}${gatherPath}`,
        grant_types_supported: ['authorization_code', 'refresh_token', 'client_credentials', UMA_GRANT],
        response_types_supported: ['code'],
        token_endpoint_auth_methods_supported: tokenAuthMethods,
        scopes_supported: ['openid', ...UMA_SCOPES],
        uma_profiles_supported: [],
      };
      if (!registration) delete doc.registration_endpoint;
      return json(ctx, 200, doc);
    }
    if (p === gatherPath && (ctx.method === 'GET' || ctx.method === 'POST')) {
      return gatherClaims(ctx);
    }
    if (!p.startsWith('/uma/')) return next();

    const pat = await protectionToken(ctx);
    if (!pat) {
      ctx.set('WWW-Authenticate', 'Bearer error="invalid_token"');
      return json(ctx, 401, { error: 'invalid_token', error_description: 'a valid PAT (scope uma_protection) is required' });
    }
    const owner = pat.clientId;

    if (p === '/uma/permission') {
      if (ctx.method !== 'POST') return json(ctx, 405, { error: 'unsupported_method_type' });
      const body = await readJSON(ctx);
      const reqs = Array.isArray(body) ? body : [body];
      if (reqs.length === 0) return json(ctx, 400, { error: 'invalid_request', error_description: 'no permission requested' });
      for (const r of reqs) {
        if (!r || typeof r !== 'object') return json(ctx, 400, { error: 'invalid_request' });
        const res = resources.get(r.resource_id);
        if (!res || res.clientId !== owner) return json(ctx, 400, { error: 'invalid_resource_id' });
        const scopes = r.resource_scopes;
        if (!Array.isArray(scopes) || scopes.length === 0
          || !scopes.every((s) => res.desc.resource_scopes.includes(s))) {
          return json(ctx, 400, { error: 'invalid_scope' });
        }
      }
      const permissions = reqs.map((r) => ({ resource_id: r.resource_id, resource_scopes: [...new Set(r.resource_scopes)] }));
      return json(ctx, 201, { ticket: issueTicket({ permissions, clientId: owner }) });
    }

    const m = /^\/uma\/resource_set(?:\/([^/]+))?$/.exec(p);
    if (!m) return json(ctx, 404, { error: 'not_found' });
    const rid = m[1];
    if (!rid) {
      if (ctx.method === 'GET') {
        return json(ctx, 200, [...resources].filter(([, v]) => v.clientId === owner).map(([k]) => k));
      }
      if (ctx.method === 'POST') {
        const desc = await readJSON(ctx);
        if (!validDescription(desc)) return json(ctx, 400, { error: 'invalid_request', error_description: 'resource_scopes is required' });
        const id = newId();
        resources.set(id, { desc, clientId: owner });
        ctx.set('Location', `${issuer}/uma/resource_set/${id}`);
        return json(ctx, 201, { _id: id });
      }
      return json(ctx, 405, { error: 'unsupported_method_type' });
    }
    const res = resources.get(rid);
    if (!res || res.clientId !== owner) return json(ctx, 404, { error: 'not_found' });
    switch (ctx.method) {
      case 'GET':
        return json(ctx, 200, { ...res.desc, _id: rid });
      case 'PUT': {
        const desc = await readJSON(ctx);
        if (!validDescription(desc)) return json(ctx, 400, { error: 'invalid_request', error_description: 'resource_scopes is required' });
        res.desc = desc;
        return json(ctx, 200, { _id: rid });
      }
      case 'DELETE':
        resources.delete(rid);
        ctx.status = 204;
        return undefined;
      default:
        return json(ctx, 405, { error: 'unsupported_method_type' });
    }
  });

  provider.registerGrantType(UMA_GRANT, async (ctx) => {
    const { ticket, claim_token: claimToken, rpt: oldRPT } = ctx.oidc.params;
    const client = ctx.oidc.client;
    if (!ticket) throw new errors.InvalidRequest('missing required parameter ticket');
    const rec = liveTicket(ticket);
    if (!rec) throw new errors.InvalidGrant('invalid or expired ticket');
    tickets.delete(ticket); // single use, whatever the outcome

    const scopes = rec.permissions.flatMap((x) => x.resource_scopes);
    if (scopes.some(denied)) {
      return json(ctx, 403, { error: 'request_denied', error_description: 'the policy denies this request' });
    }
    if (scopes.some(needsInfo) && !claimToken && !rec.claims?.email) {
      // Keys as oxAuth's UmaNeedInfoResponse (strict parsers reject others).
      return json(ctx, 403, {
        error: 'need_info',
        ticket: issueTicket({ permissions: rec.permissions, clientId: rec.clientId, claims: rec.claims }),
        required_claims: [{
          claim_token_format: [ID_TOKEN_FORMAT],
          claim_type: 'string',
          friendly_name: 'email',
          issuer: [issuer],
          name: 'email',
        }],
        redirect_user: `${issuer}${gatherPath}`,
      });
    }

    const exp = now() + rptTTL;
    // One permission per resource; an upgraded RPT keeps the scopes of the
    // RPT it upgrades (UMA Grant §3.3.5) that have not expired.
    const byResource = new Map();
    const add = (x) => {
      const p = byResource.get(x.resource_id) ?? { resource_id: x.resource_id, resource_scopes: [], exp };
      p.resource_scopes = [...new Set([...p.resource_scopes, ...x.resource_scopes])];
      byResource.set(x.resource_id, p);
    };
    let upgraded = false;
    if (oldRPT) {
      const prev = await provider.ClientCredentials.find(oldRPT);
      if (prev && prev.isValid && prev.clientId === client.clientId && Array.isArray(prev.extra?.permissions)) {
        prev.extra.permissions.filter((x) => x.exp > now()).forEach(add);
        upgraded = true;
      }
    }
    rec.permissions.forEach(add);
    const permissions = [...byResource.values()];
    const token = new provider.ClientCredentials({ client, expiresIn: rptTTL });
    token[PERMISSIONS] = permissions;
    const value = await token.save();
    return json(ctx, 200, {
      access_token: value, token_type: 'Bearer', expires_in: token.expiration, upgraded,
    });
  }, ['ticket', 'rpt', 'claim_token', 'claim_token_format', 'pct', 'scope']);
}
