'use strict';
// Calls every command of oxd-node@3.1.4 against an oxd server, over the
// socket protocol and over the HTTPS extension, and prints one JSON line per
// call on stdout: {"t":"<transport>","step":"<name>","err":…,"resp":…}.
//
// Usage: node interop.js --socket 127.0.0.1:PORT --https https://127.0.0.1:PORT --op ISSUER
//
// The login needs a browser: the script prints {"t":…,"step":"login","url":…}
// and reads one line {"code":…,"state":…} from stdin (the Go test drives the
// OP's login form and answers). The script ends with {"done":true}.
//
// oxd-node writes nothing for a frame of 1000 characters or more and then
// waits forever, so requests stay short and every call has a timeout.
// oxd-node logs every request and response with console.log, secrets
// included: that output is silenced.

const readline = require('readline');

console.log = () => {};
console.error = () => {};

function arg(name) {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0 || i + 1 >= process.argv.length) {
    throw new Error(`missing --${name}`);
  }
  return process.argv[i + 1];
}

const socketAddr = arg('socket');
const httpsBase = arg('https');
const opHost = arg('op');
const [sockHost, sockPort] = socketAddr.split(':');

const oxdFactory = require('oxd-node');

function emit(obj) {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

const stdinLines = readline.createInterface({ input: process.stdin });
const pendingLines = [];
const lineWaiters = [];
stdinLines.on('line', (l) => {
  if (lineWaiters.length > 0) {
    lineWaiters.shift()(l);
  } else {
    pendingLines.push(l);
  }
});
function readLine() {
  if (pendingLines.length > 0) return Promise.resolve(pendingLines.shift());
  return new Promise((resolve) => lineWaiters.push(resolve));
}

const CALL_TIMEOUT_MS = 15000;

// call runs one oxd-node method and resolves {err, resp}; the callback may
// fire twice in oxd-node (data, then error): only the first counts.
function call(oxd, method, params) {
  return new Promise((resolve) => {
    let settled = false;
    const timer = setTimeout(() => {
      if (!settled) {
        settled = true;
        resolve({ err: 'timeout: oxd-node never called back', resp: null });
      }
    }, CALL_TIMEOUT_MS);
    try {
      oxd[method](params, (err, resp) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        let e = err;
        if (e instanceof Error) e = `${e.name}: ${e.message}`;
        resolve({ err: e === undefined ? null : e, resp: resp === undefined ? null : resp });
      });
    } catch (ex) {
      settled = true;
      clearTimeout(timer);
      resolve({ err: `exception: ${ex.message}`, resp: null });
    }
  });
}

async function run(t, oxd, protect) {
  const results = {};
  const step = async (name, method, params) => {
    const r = await call(oxd, method, params);
    emit({ t, step: name, err: r.err, resp: r.resp });
    results[name] = r;
    return r.resp && r.resp.status === 'ok' ? r.resp.data : null;
  };

  const setup = await step('setup_client', 'setup_client', {
    op_host: opHost,
    authorization_redirect_uri: 'https://rp.example.test/cb',
    post_logout_redirect_uri: 'https://rp.example.test/out',
    claims_redirect_uri: ['https://rp.example.test/claims'],
    scope: ['openid', 'profile', 'email', 'uma_protection'],
    grant_types: ['authorization_code', 'client_credentials', 'refresh_token'],
    client_name: `oxd-node ${t}`,
  });
  if (!setup) return;
  const oxdId = setup.oxd_id;

  const pat = await step('get_client_token', 'get_client_token', {
    op_host: opHost,
    client_id: setup.client_id,
    client_secret: setup.client_secret,
    scope: ['openid', 'oxd', 'uma_protection'],
  });
  if (!pat) return;
  // Over the HTTPS extension oxd-node puts the token in the Authorization
  // header (and the body); over the socket it travels in the params.
  const p = (params) => (protect ? Object.assign({ protection_access_token: pat.access_token }, params) : params);

  // A protected command without a token: the extension answers 403, the
  // socket blank_protection_access_token.
  if (protect) {
    await step('get_authorization_url.no_token', 'get_authorization_url', { oxd_id: oxdId });
  }

  // Login: authorization URL, the Go side drives the OP, code exchange.
  const au = await step('get_authorization_url', 'get_authorization_url', p({ oxd_id: oxdId, scope: ['openid', 'profile', 'email'] }));
  if (!au) return;
  emit({ t, step: 'login', url: au.authorization_url });
  const cb = JSON.parse(await readLine());
  const tokens = await step('get_tokens_by_code', 'get_tokens_by_code', p({ oxd_id: oxdId, code: cb.code, state: cb.state }));
  // A state is single use.
  await step('get_tokens_by_code.replay', 'get_tokens_by_code', p({ oxd_id: oxdId, code: cb.code, state: cb.state }));
  if (tokens) {
    await step('get_user_info', 'get_user_info', p({ oxd_id: oxdId, access_token: tokens.access_token }));
    await step('introspect_access_token', 'introspect_access_token', p({ oxd_id: oxdId, access_token: tokens.access_token }));
    await step('get_access_token_by_refresh_token', 'get_access_token_by_refresh_token', p({ oxd_id: oxdId, refresh_token: tokens.refresh_token }));
  }
  await step('get_logout_uri', 'get_logout_uri', p({ oxd_id: oxdId, post_logout_redirect_uri: 'https://rp.example.test/out', state: 'st1' }));

  // UMA: protect, check (denied + ticket), RPT, check (granted), introspect;
  // a scope that the OP's policy answers with need_info, claims gathering.
  await step('uma_rs_protect', 'uma_rs_protect', p({
    oxd_id: oxdId,
    resources: [{
      path: '/photos',
      conditions: [
        { httpMethods: ['GET'], scopes: ['view'] },
        { httpMethods: ['POST'], scopes: ['claims_upload'] },
      ],
    }],
  }));
  const denied = await step('uma_rs_check_access', 'uma_rs_check_access', p({ oxd_id: oxdId, rpt: '', path: '/photos', http_method: 'GET' }));
  if (denied && denied.ticket) {
    const rpt = await step('uma_rp_get_rpt', 'uma_rp_get_rpt', p({ oxd_id: oxdId, ticket: denied.ticket }));
    if (rpt) {
      await step('uma_rs_check_access.rpt', 'uma_rs_check_access', p({ oxd_id: oxdId, rpt: rpt.access_token, path: '/photos', http_method: 'GET' }));
      await step('introspect_rpt', 'introspect_rpt', p({ oxd_id: oxdId, rpt: rpt.access_token }));
    }
  }
  await step('uma_rs_check_access.not_protected', 'uma_rs_check_access', p({ oxd_id: oxdId, rpt: '', path: '/nothing', http_method: 'GET' }));
  const denied2 = await step('uma_rs_check_access.post', 'uma_rs_check_access', p({ oxd_id: oxdId, rpt: '', path: '/photos', http_method: 'POST' }));
  if (denied2 && denied2.ticket) {
    const r = await call(oxd, 'uma_rp_get_rpt', p({ oxd_id: oxdId, ticket: denied2.ticket }));
    emit({ t, step: 'uma_rp_get_rpt.need_info', err: r.err, resp: r.resp });
    let ticket = denied2.ticket;
    if (r.resp && r.resp.data && r.resp.data.details && r.resp.data.details.ticket) {
      ticket = r.resp.data.details.ticket;
    }
    await step('uma_rp_get_claims_gathering_url', 'uma_rp_get_claims_gathering_url', p({
      oxd_id: oxdId, ticket, claims_redirect_uri: 'https://rp.example.test/claims',
    }));
  }

  // A second site: register, update, remove; then it is gone.
  const site = await step('register_site', 'register_site', p({
    op_host: opHost,
    authorization_redirect_uri: 'https://rp.example.test/cb2',
    scope: ['openid', 'profile'],
    grant_types: ['authorization_code'],
  }));
  if (site) {
    await step('update_site', 'update_site', p({
      oxd_id: site.oxd_id,
      post_logout_redirect_uri: 'https://rp.example.test/out2',
      grant_types: ['authorization_code', 'refresh_token'],
    }));
    await step('remove_site', 'remove_site', p({ oxd_id: site.oxd_id }));
    await step('get_authorization_url.removed', 'get_authorization_url', p({ oxd_id: site.oxd_id }));
  }
}

async function main() {
  await run('socket', oxdFactory({ https_extension: false, host: sockHost, port: Number(sockPort) }), true);
  await run('https', oxdFactory({ https_extension: true, host: httpsBase }), true);
  emit({ done: true });
  stdinLines.close();
}

main().then(() => process.exit(0), (e) => {
  process.stderr.write(`interop.js failed: ${e && e.stack}\n`);
  process.exit(1);
});
