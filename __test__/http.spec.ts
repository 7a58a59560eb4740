import test from 'ava';
import { FRAMEWORKS, engineWith, eventually, get, metricValue, startApp } from './fixtures/http.js';

for (const framework of FRAMEWORKS) {
  test(`${framework}: no matching policy, the app answers`, async (t) => {
    const engine = engineWith([{ name: 'elsewhere', type: 'http', target: '/other/*', error_chance: 1 }]);
    const app = await startApp(framework, engine);
    t.teardown(app.close);
    const res = await get(`${app.url}/hello`);
    t.like(res, { status: 200, body: 'from the app' });
    t.is(app.handled(), 1);
    t.is(await metricValue(engine.metrics.decisions, { protocol: 'http', outcome: 'pass' }), 1);
  });

  test(`${framework}: error answers with the policy's status and JSON body, the app is not called`, async (t) => {
    const engine = engineWith([
      { name: 'teapot', type: 'http', target: '/api/*', error_chance: 1, error_code: 418, error_body: '{"short":"stout"}' },
    ]);
    const app = await startApp(framework, engine);
    t.teardown(app.close);
    const res = await get(`${app.url}/api/tea?cups=2`);
    if (!('status' in res)) return t.fail(`expected a response, got ${res.error}`);
    t.is(res.status, 418);
    t.is(res.body, '{"short":"stout"}');
    t.is(res.headers['content-type'], 'application/json');
    t.is(app.handled(), 0);
    t.is(await metricValue(engine.metrics.faultsInjected, { policy: 'teapot', protocol: 'http', fault: 'error' }), 1);
    t.is(await metricValue(engine.metrics.decisions, { protocol: 'http', outcome: 'error' }), 1);
  });

  test(`${framework}: error without code or body is a 500 with a JSON description`, async (t) => {
    const engine = engineWith([{ name: 'plain', type: 'http', target: 'all', error_chance: 1 }]);
    const app = await startApp(framework, engine);
    t.teardown(app.close);
    const res = await get(`${app.url}/x`);
    if (!('status' in res)) return t.fail(res.error);
    t.is(res.status, 500);
    t.deepEqual(JSON.parse(res.body), { error: 'fault injected by havoc', policy: 'plain', status: 500 });
  });

  test(`${framework}: drop resets the connection, no response`, async (t) => {
    const engine = engineWith([{ name: 'cut', type: 'http', target: '/cut', drop_connection: true }]);
    const app = await startApp(framework, engine);
    t.teardown(app.close);
    const res = await get(`${app.url}/cut`);
    t.true('error' in res, `expected a socket error, got ${JSON.stringify(res)}`);
    if ('error' in res) t.is(res.error, 'ECONNRESET');
    t.is(app.handled(), 0);
    t.is(await metricValue(engine.metrics.faultsInjected, { policy: 'cut', protocol: 'http', fault: 'drop' }), 1);
    // The server keeps serving other requests.
    t.like(await get(`${app.url}/fine`), { status: 200 });
  });

  test(`${framework}: latency delays the request, then the app answers`, async (t) => {
    const engine = engineWith([{ name: 'slow', type: 'http', target: '/slow', latency_chance: 1, latency_duration: '120ms' }]);
    const app = await startApp(framework, engine);
    t.teardown(app.close);
    const res = await get(`${app.url}/slow`);
    t.like(res, { status: 200, body: 'from the app' });
    // The delay was served (timers may fire up to a millisecond early).
    t.true(res.elapsedMs >= 118, `answered after ${res.elapsedMs} ms`);
    t.is(app.handled(), 1);
    t.is(await metricValue(engine.metrics.faultsInjected, { policy: 'slow', protocol: 'http', fault: 'latency' }), 1);
  });

  test(`${framework}: latency then error: the error comes after the delay`, async (t) => {
    const engine = engineWith([
      { name: 'both', type: 'http', target: 'all', latency_chance: 1, latency_duration: '80ms', error_chance: 1, error_code: 503 },
    ]);
    const app = await startApp(framework, engine);
    t.teardown(app.close);
    const res = await get(`${app.url}/`);
    t.like(res, { status: 503 });
    t.true(res.elapsedMs >= 78);
    t.is(app.handled(), 0);
  });

  test(`${framework}: a client gone during the latency is counted as 499 and never reaches the app`, async (t) => {
    const engine = engineWith([{ name: 'slow', type: 'http', target: 'all', latency_chance: 1, latency_duration: '30s' }]);
    const app = await startApp(framework, engine);
    t.teardown(app.close);
    // Gone once the server is serving the delay.
    const delaying = eventually(
      async () => (await metricValue(engine.metrics.faultsInjected, { policy: 'slow', protocol: 'http', fault: 'latency' })) === 1,
    );
    const res = await get(`${app.url}/slow`, { abortWhen: delaying });
    t.true('error' in res);
    t.true(await eventually(async () => (await metricValue(engine.metrics.clientClosed, { policy: 'slow', protocol: 'http' })) === 1));
    t.is(app.handled(), 0);
  });

  test(`${framework}: match_headers and ignored prefixes`, async (t) => {
    const engine = engineWith(
      [{ name: 'canary', type: 'http', target: 'all', error_chance: 1, error_code: 502, match_headers: { 'x-canary': 'yes' } }],
      { ignored_commands: { http: ['/healthz'] } },
    );
    const app = await startApp(framework, engine);
    t.teardown(app.close);
    t.like(await get(`${app.url}/a`), { status: 200 });
    t.like(await get(`${app.url}/a`, { headers: { 'x-canary': 'yes' } }), { status: 502 });
    t.like(await get(`${app.url}/healthz/live`, { headers: { 'x-canary': 'yes' } }), { status: 200 });
  });

  test(`${framework}: no fault during warmup`, async (t) => {
    const engine = engineWith([{ name: 'later', type: 'http', target: 'all', error_chance: 1 }], {}, { warmupMs: 3_600_000 });
    const app = await startApp(framework, engine);
    t.teardown(app.close);
    t.like(await get(`${app.url}/`), { status: 200 });
    t.true(engine.warmupRemainingMs > 0);
  });

  test(`${framework}: halt stops every fault at once`, async (t) => {
    const engine = engineWith([{ name: 'all-fail', type: 'http', target: 'all', error_chance: 1 }]);
    const app = await startApp(framework, engine);
    t.teardown(app.close);
    t.like(await get(`${app.url}/`), { status: 500 });
    engine.halt();
    t.like(await get(`${app.url}/`), { status: 200 });
    engine.resume();
    t.like(await get(`${app.url}/`), { status: 500 });
  });
}
