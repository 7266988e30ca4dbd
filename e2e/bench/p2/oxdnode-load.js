'use strict';
// Load generator for benchmark P2: calls get_authorization_url through
// oxd-node@3.1.4 in socket mode (one TCP connection per command, as the
// package does) with a number of concurrent callers for a fixed time, and
// writes two JSON lines to the results descriptor: {"phase":"measure"}
// when the measured phase starts (after the warm-up), then the result
//   {"calls":N,"errors":E,"elapsed_ms":T,"cpu_ms":C,"first_error":"…"}
// where cpu_ms is the CPU time (user + system) of this process during the
// measured phase.
//
// Usage:
//   node oxdnode-load.js --dir e2e/oxdnode --addr 127.0.0.1:PORT \
//     --callers 8 --duration-ms 5000 --warmup-ms 500 --params '{"oxd_id":"…"}' \
//     [--logs off|on] [--results-fd 3]
//
// --dir is the npm project that holds oxd-node (its node_modules). The
// warm-up (JIT, first connections) is not counted. Only calls whose answer
// is {"status":"ok","data":{"authorization_url":<string>}} count; anything
// else is an error. oxd-node logs every request and answer with
// console.log (four lines per command, secrets included): with --logs off
// (the default) console.log is silenced, which makes oxd-node faster than
// as shipped; with --logs on it is left alone, as shipped, and stdout
// should go to /dev/null. Results go to --results-fd (default 1, stdout).

const fs = require('fs');
const path = require('path');
const { createRequire } = require('module');

function arg(name, def) {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0 || i + 1 >= process.argv.length) {
    if (def === undefined) throw new Error(`missing --${name}`);
    return def;
  }
  return process.argv[i + 1];
}

const dir = path.resolve(arg('dir'));
const [host, portStr] = arg('addr').split(':');
const callers = parseInt(arg('callers', '8'), 10);
const durationMs = parseInt(arg('duration-ms', '5000'), 10);
const warmupMs = parseInt(arg('warmup-ms', '500'), 10);
const params = JSON.parse(arg('params', '{}'));
const logs = arg('logs', 'off');
const resultsFd = parseInt(arg('results-fd', '1'), 10);
const CALL_TIMEOUT_MS = 5000;

if (logs !== 'on') {
  console.log = () => {};
  console.error = () => {};
}

function emit(obj) {
  fs.writeSync(resultsFd, `${JSON.stringify(obj)}\n`);
}

const oxd = createRequire(path.join(dir, 'package.json'))('oxd-node')({
  https_extension: false,
  host,
  port: parseInt(portStr, 10),
});

let errors = 0;
let firstError = '';
function fail(msg) {
  errors += 1;
  if (!firstError) firstError = String(msg).slice(0, 200);
}

// oxd-node parses the first data chunk inside an event handler; a throw
// there would otherwise end the process. The affected call times out.
process.on('uncaughtException', (e) => fail(`uncaught: ${e && e.message}`));

// one call; resolves true for a good answer. oxd-node may call back twice
// (data, then error): only the first counts.
function one() {
  return new Promise((resolve) => {
    let done = false;
    const timer = setTimeout(() => finish(new Error('timeout')), CALL_TIMEOUT_MS);
    function finish(err, resp) {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err) {
        fail(err.message || err);
        resolve(false);
      } else if (!resp || resp.status !== 'ok' || !resp.data || typeof resp.data.authorization_url !== 'string') {
        fail(`bad answer: ${JSON.stringify(resp).slice(0, 150)}`);
        resolve(false);
      } else {
        resolve(true);
      }
    }
    try {
      oxd.get_authorization_url(Object.assign({}, params), finish);
    } catch (e) {
      finish(e);
    }
  });
}

// phase runs `callers` loops until the deadline; each loop issues its next
// call when the previous one has answered. Returns completed good calls.
async function phase(ms) {
  const end = Date.now() + ms;
  let good = 0;
  async function loop() {
    while (Date.now() < end) {
      if (await one()) good += 1;
    }
  }
  const loops = [];
  for (let i = 0; i < callers; i += 1) loops.push(loop());
  await Promise.all(loops);
  return good;
}

(async () => {
  if (warmupMs > 0) await phase(warmupMs);
  errors = 0;
  firstError = '';
  emit({ phase: 'measure' });
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const calls = await phase(durationMs);
  const elapsedMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const cpu = process.cpuUsage(cpu0);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  emit({
    calls, errors, elapsed_ms: elapsedMs, cpu_ms: cpuMs, first_error: firstError,
  });
  process.exit(0);
})();
