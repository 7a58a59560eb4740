import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import test from 'ava';
import { request, Agent, getGlobalDispatcher, setGlobalDispatcher } from 'undici';
import { chaosDispatcher, chaosFetch, InjectedNetworkError } from 'havoc';
import { engineWith, metricValue } from './fixtures/http.js';

/** A local upstream that counts what reaches it. */
async function upstream(): Promise<{ url: string; hits: () => number; close: () => Promise<void> }> {
  let hits = 0;
  const server = createServer((_req, res) => {
    hits += 1;
    res.writeHead(200, { 'content-type': 'text/plain' }).end('upstream');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    hits: () => hits,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

test('chaosFetch: a non-matching request goes to the network untouched', async (t) => {
  const up = await upstream();
  t.teardown(up.close);
  const fetch = chaosFetch(engineWith([{ name: 'other', type: 'http', target: '/other', error_chance: 1 }]));
  const res = await fetch(`${up.url}/v1/users`);
  t.is(res.status, 200);
  t.is(await res.text(), 'upstream');
  t.is(up.hits(), 1);
});

test('chaosFetch: a synthetic error response, by path target, without reaching the network', async (t) => {
  const up = await upstream();
  t.teardown(up.close);
  const engine = engineWith([
    { name: 'users-down', type: 'http', target: '/v1/users/*', error_chance: 1, error_code: 503, error_body: '{"down":true}' },
  ]);
  const fetch = chaosFetch(engine);
  const res = await fetch(`${up.url}/v1/users/7?x=1`);
  t.is(res.status, 503);
  t.is(res.headers.get('content-type'), 'application/json');
  t.deepEqual(await res.json(), { down: true });
  t.is(up.hits(), 0);
  t.is(await metricValue(engine.metrics.faultsInjected, { policy: 'users-down', protocol: 'http', fault: 'error' }), 1);
});

test('chaosFetch: a full-URL target matches that host only', async (t) => {
  const up = await upstream();
  t.teardown(up.close);
  const fetch = chaosFetch(engineWith([{ name: 'host', type: 'http', target: `${up.url}/v1/*`, error_chance: 1, error_code: 502 }]));
  t.is((await fetch(`${up.url}/v1/a`)).status, 502);
  t.is((await fetch(`${up.url.replace('127.0.0.1', 'localhost')}/v1/a`)).status, 200);
  t.is((await fetch(`${up.url}/v2/a`)).status, 200);
});

test('chaosFetch: a drop rejects like a network failure', async (t) => {
  const up = await upstream();
  t.teardown(up.close);
  const fetch = chaosFetch(engineWith([{ name: 'cut', type: 'http', target: 'all', drop_connection: true }]));
  const error = await t.throwsAsync(fetch(`${up.url}/x`), { instanceOf: TypeError, message: 'fetch failed' });
  t.true(error?.cause instanceof InjectedNetworkError);
  t.is((error?.cause as InjectedNetworkError | undefined)?.code, 'ECONNRESET');
  t.is(up.hits(), 0);
});

test('chaosFetch: latency, then the real request', async (t) => {
  const up = await upstream();
  t.teardown(up.close);
  const fetch = chaosFetch(engineWith([{ name: 'slow', type: 'http', target: 'all', latency_chance: 1, latency_duration: '60ms' }]));
  const started = performance.now();
  t.is((await fetch(`${up.url}/a`)).status, 200);
  t.true(performance.now() - started >= 58);
  t.is(up.hits(), 1);
});

test('chaosFetch: an abort during the delay rejects with the abort reason and counts a 499', async (t) => {
  const up = await upstream();
  t.teardown(up.close);
  const engine = engineWith([{ name: 'slow', type: 'http', target: 'all', latency_chance: 1, latency_duration: '30s' }]);
  const fetch = chaosFetch(engine);
  // Node 20's DOMException is not an Error subclass: `any` lets ava check it all the same.
  await t.throwsAsync(fetch(`${up.url}/a`, { signal: AbortSignal.timeout(50) }), { any: true, name: 'TimeoutError' });
  t.is(up.hits(), 0);
  t.is(await metricValue(engine.metrics.clientClosed, { policy: 'slow', protocol: 'http' }), 1);
});

test('chaosFetch: uses the given fetch implementation', async (t) => {
  const seen: string[] = [];
  const fake: typeof fetch = async (input) => {
    seen.push(String(input));
    return new Response('fake');
  };
  const wrapped = chaosFetch(engineWith([]), fake);
  t.is(await (await wrapped('http://example.invalid/a')).text(), 'fake');
  t.deepEqual(seen, ['http://example.invalid/a']);
});

test('chaosDispatcher: error, drop and pass-through through undici', async (t) => {
  const up = await upstream();
  t.teardown(up.close);
  const base = new Agent();
  t.teardown(() => base.close());
  const engine = engineWith([
    { name: 'err', type: 'http', target: '/err', error_chance: 1, error_code: 429, error_body: '{"slow":"down"}' },
    { name: 'cut', type: 'http', target: '/cut', drop_connection: true },
    { name: 'canary', type: 'http', target: '/canary', error_chance: 1, match_headers: { 'x-canary': '1' } },
  ]);
  const dispatcher = chaosDispatcher(engine, base);
  const err = await request(`${up.url}/err`, { dispatcher });
  t.is(err.statusCode, 429);
  t.is(err.headers['content-type'], 'application/json');
  t.deepEqual(await err.body.json(), { slow: 'down' });
  const error = await t.throwsAsync(request(`${up.url}/cut`, { dispatcher }));
  t.is((error as Error & { code?: string }).code, 'UND_ERR_SOCKET');
  const ok = await request(`${up.url}/ok`, { dispatcher });
  t.is(ok.statusCode, 200);
  t.is(await ok.body.text(), 'upstream');
  t.is((await request(`${up.url}/canary`, { dispatcher })).statusCode, 200);
  t.is((await request(`${up.url}/canary`, { dispatcher, headers: { 'X-Canary': '1' } })).statusCode, 500);
  t.is(up.hits(), 2);
});

test('chaosDispatcher: latency is served before the error', async (t) => {
  const up = await upstream();
  t.teardown(up.close);
  const base = new Agent();
  t.teardown(() => base.close());
  const dispatcher = chaosDispatcher(
    engineWith([
      { name: 'slow', type: 'http', target: 'all', latency_chance: 1, latency_duration: '60ms', error_chance: 1, error_code: 504 },
    ]),
    base,
  );
  const started = performance.now();
  const res = await request(`${up.url}/a`, { dispatcher });
  t.is(res.statusCode, 504);
  await res.body.dump();
  t.true(performance.now() - started >= 58);
  t.is(up.hits(), 0);
});

test.serial("chaosDispatcher: as the global dispatcher, Node's built-in fetch gets the faults", async (t) => {
  const up = await upstream();
  t.teardown(up.close);
  const previous = getGlobalDispatcher();
  const base = new Agent();
  setGlobalDispatcher(
    chaosDispatcher(engineWith([{ name: 'global', type: 'http', target: '/down', error_chance: 1, error_code: 503 }]), base),
  );
  t.teardown(async () => {
    setGlobalDispatcher(previous);
    await base.close();
  });
  t.is((await fetch(`${up.url}/down`)).status, 503);
  const ok = await fetch(`${up.url}/up`);
  t.is(ok.status, 200);
  t.is(await ok.text(), 'upstream');
});

test('chaosFetch: a streamed request body passes through untouched', async (t) => {
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => res.end(`got ${body}`));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const fetch = chaosFetch(engineWith([{ name: 'other', type: 'http', target: '/other', error_chance: 1 }]));
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new TextEncoder().encode('streamed'));
      controller.close();
    },
  });
  const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/upload`, {
    method: 'POST',
    body,
    duplex: 'half',
  } as RequestInit);
  t.is(await res.text(), 'got streamed');
});
