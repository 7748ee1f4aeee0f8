// What the browser tests stand on: a real Linkkit (`linkkit all`, the binary cargo built) with
// its own database, namespace and ports; a webhook receiver that fails on demand; Chromium.
// Everything made here is removed by `stop()`.

import { spawn, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium } from 'playwright-core';

const ROOT = resolve(import.meta.dirname, '../..');
const POSTGRES = 'postgres://postgres@127.0.0.1:5432';

export const BINARY = process.env.LINKKIT_BIN
  ?? join(process.env.CARGO_TARGET_DIR ? resolve(ROOT, process.env.CARGO_TARGET_DIR) : join(ROOT, 'target'), 'debug', 'linkkit');

/** A port nothing listens on right now. */
async function freePort() {
  const server = createServer();
  await new Promise((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address();
  await new Promise((done) => server.close(done));
  return port;
}

/** Polls `check` until it returns something truthy; throws with `what` after `ms`. */
export async function eventually(what, check, ms = 30000) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value) return value;
    } catch (error) {
      last = error;
    }
    await sleep(200);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
}

/** `linkkit all` on free ports with its own database and namespace. */
export async function startLinkkit() {
  if (!existsSync(BINARY)) {
    throw new Error(`${BINARY} is missing: build it with \`cargo build --bin linkkit\` (scripts/browser-test.sh does)`);
  }
  const suffix = randomBytes(6).toString('hex');
  const [api, redirect, admin] = [await freePort(), await freePort(), await freePort()];
  const database = `linkkit_browser_${suffix}`;
  const env = {
    ...process.env,
    LINKKIT_DATABASE_URL: `${POSTGRES}/${database}`,
    LINKKIT_NAMESPACE: `browser${suffix}`,
    LINKKIT_API_ADDR: `127.0.0.1:${api}`,
    LINKKIT_REDIRECT_ADDR: `127.0.0.1:${redirect}`,
    LINKKIT_ADMIN_ADDR: `127.0.0.1:${admin}`,
    LINKKIT_PUBLIC_BASE_URL: `http://127.0.0.1:${redirect}`,
    LINKKIT_ALLOW_PRIVATE_TARGETS: 'true',
    LINKKIT_RETRY_SCHEDULE: '1s',
    LINKKIT_DELIVERY_TIMEOUT: '5s',
    RUST_LOG: process.env.RUST_LOG ?? 'warn',
  };
  const log = [];
  const child = spawn(BINARY, ['all'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  for (const stream of [child.stdout, child.stderr]) {
    stream.on('data', (chunk) => {
      log.push(chunk.toString());
      if (process.env.LINKKIT_BROWSER_LOG) process.stderr.write(chunk);
    });
  }
  const exited = new Promise((done) => child.on('exit', (code, signal) => done({ code, signal })));
  // Interrupted (Ctrl-C, a CI timeout): take Linkkit down too rather than leave it running.
  const interrupted = (signal) => {
    child.kill('SIGKILL');
    dropEverything(database, env.LINKKIT_NAMESPACE);
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  process.once('exit', () => child.kill('SIGKILL'));
  const linkkit = {
    apiUrl: `http://127.0.0.1:${api}`,
    redirectUrl: `http://127.0.0.1:${redirect}`,
    namespace: env.LINKKIT_NAMESPACE,
    database,
    env,
    log,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const stopped = await Promise.race([exited, sleep(20000).then(() => null)]);
        if (!stopped) {
          child.kill('SIGKILL');
          await exited;
        }
      }
      dropEverything(database, env.LINKKIT_NAMESPACE);
    },
  };
  try {
    await eventually('Linkkit to be ready', async () => {
      if (child.exitCode !== null) throw new Error(`linkkit exited: ${log.join('')}`);
      const response = await fetch(`http://127.0.0.1:${admin}/readyz`);
      return response.ok;
    }, 60000);
  } catch (error) {
    await linkkit.stop();
    throw error;
  }
  return linkkit;
}

/** `linkkit workspace create NAME` → `{ workspace_id, api_key }`. */
export function createWorkspace(linkkit, name) {
  const output = execFileSync(BINARY, ['workspace', 'create', name], { env: linkkit.env, encoding: 'utf8' });
  return JSON.parse(output.trim().split('\n').at(-1));
}

/** The database, queues, exchanges and Redis keys of a run; best effort, never throws. */
function dropEverything(database, namespace) {
  const quietly = (command, args) => {
    try {
      return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    } catch {
      return '';
    }
  };
  quietly('psql', ['-U', 'postgres', '-h', '127.0.0.1', '-c', `DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`]);
  for (const queue of quietly('rabbitmqctl', ['list_queues', '-q', '--no-table-headers', 'name']).split('\n')) {
    if (queue.startsWith(`${namespace}.`)) quietly('rabbitmqctl', ['delete_queue', queue]);
  }
  for (const exchange of quietly('rabbitmqctl', ['list_exchanges', '-q', '--no-table-headers', 'name']).split('\n')) {
    if (exchange.startsWith(`${namespace}.`)) {
      // rabbitmqctl has no delete_exchange; the broker's own function does it.
      quietly('rabbitmqctl', ['eval', `rabbit_exchange:delete(rabbit_misc:r(<<"/">>, exchange, <<"${exchange}">>), false, <<"linkkit-browser-test">>).`]);
    }
  }
  const keys = quietly('redis-cli', ['--scan', '--pattern', `${namespace}:*`]).split('\n').filter(Boolean);
  if (keys.length > 0) quietly('redis-cli', ['del', ...keys]);
}

/** A webhook receiver on a free port: records each POST, answers `status` (200 unless told). */
export async function startReceiver() {
  const receiver = { received: [], status: 200 };
  const server = createServer((request, response) => {
    const chunks = [];
    request.on('data', (chunk) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let json = null;
      try { json = JSON.parse(body); } catch { /* recorded as text */ }
      receiver.received.push({ headers: request.headers, body, json, status: receiver.status });
      response.writeHead(receiver.status, { 'content-type': 'text/plain' });
      response.end(receiver.status < 300 ? 'ok, got it' : 'receiver failing on purpose');
    });
  });
  await new Promise((done) => server.listen(0, '127.0.0.1', done));
  receiver.url = `http://127.0.0.1:${server.address().port}/webhooks`;
  receiver.ofType = (type) => receiver.received.filter((r) => r.json?.event === type);
  receiver.stop = () => new Promise((done) => { server.closeAllConnections?.(); server.close(done); });
  return receiver;
}

/**
 * Debian's Chromium, headless, in a fresh profile (`--user-data-dir`, which Playwright passes for
 * a persistent context). Returns the browser context; closing it removes the profile.
 */
export async function launchChromium(options = {}) {
  const profile = mkdtempSync(join(tmpdir(), 'linkkit-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--disable-quic',
    ],
    ...options,
  });
  const close = context.close.bind(context);
  context.close = async () => {
    await close();
    rmSync(profile, { recursive: true, force: true });
  };
  return context;
}
