// The web console in a real browser (Debian's chromium, driven by playwright-core): a policy
// applied through the API shows (its delay logged), halt halts, the editor points at the line of an
// error, hostile policy text renders as text and runs nothing, the CSP header is there, and no
// request leaves loopback. Screenshots of every panel go to bench-results/console/.
//
// Skipped (with a message) only when /usr/bin/chromium is absent outside CI; in CI they run.
import { existsSync, mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { Registry } from 'prom-client';
import { AdaptiveLimiter, Engine, startControlPlane, wrapHandler, type ControlPlane } from 'havoc';
import { setName } from './fixtures/http.js';

const CHROMIUM = '/usr/bin/chromium';
const TOKEN = 'browser-token-0123456789';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const SHOTS = join(__dirname, '..', '..', 'bench-results', 'console');
const HOSTILE = ['<img src=x onerror=alert(1)>', '"><script>alert(2)</script>', '<img src=x onerror=alert(3)>'];

const available = existsSync(CHROMIUM);
const serial = available || process.env.CI ? test.serial : test.serial.skip;
if (!available && !process.env.CI) {
  console.log(`console-browser: skipped, ${CHROMIUM} is absent (apt-get install chromium; in CI these tests always run)`);
}

let browser: Browser | undefined;
test.before(async () => {
  if (!available && !process.env.CI) return;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: process.getuid?.() === 0 ? ['--no-sandbox'] : [],
  });
});
test.after.always(async () => {
  await browser?.close();
});

interface Console {
  engine: Engine;
  plane: ControlPlane;
  registry: Registry;
  page: Page;
  context: BrowserContext;
  /** Every URL the browser asked for. */
  requests: string[];
  /** Dialogs (alert, confirm), uncaught page errors and console errors other than refused API calls. */
  incidents: string[];
}

async function openConsole(t: ExecutionContext, options: { warmupMs?: number } = {}): Promise<Console> {
  const registry = new Registry();
  const engine = new Engine({ name: setName('browser'), registry, ...options });
  const plane = await startControlPlane(engine, { registry, token: TOKEN });
  t.teardown(() => plane.close());
  const context = await browser!.newContext({ viewport: { width: 1280, height: 900 } });
  t.teardown(() => context.close());
  const requests: string[] = [];
  const incidents: string[] = [];
  // Anything not for the control plane on 127.0.0.1 is recorded and refused.
  await context.route('**/*', (route) => {
    const url = route.request().url();
    requests.push(url);
    return new URL(url).hostname === '127.0.0.1' ? route.continue() : route.abort();
  });
  const page = await context.newPage();
  page.on('dialog', (dialog) => {
    incidents.push(`dialog ${dialog.type()}: ${dialog.message()}`);
    void dialog.dismiss();
  });
  page.on('pageerror', (error) => incidents.push(`pageerror: ${error.message}`));
  page.on('console', (message) => {
    // A call refused before the token is typed is the browser's own log line, not the page's.
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) incidents.push(`console: ${message.text()}`);
  });
  const response = await page.goto(`${plane.url}/havoc/console`);
  t.is(response?.status(), 200);
  t.regex(response?.headers()['content-security-policy'] ?? '', /^default-src 'self';/);
  // The page asks for the token and gets nothing without it.
  await page.locator('#connection', { hasText: 'token needed' }).waitFor({ timeout: 5000 });
  await page.fill('#token-input', TOKEN);
  await page.click('#token-form button[type=submit]');
  await page.locator('#connection', { hasText: 'live' }).waitFor({ timeout: 5000 });
  return { engine, plane, registry, page, context, requests, incidents };
}

function put(plane: ControlPlane, yaml: string, query = ''): Promise<Response> {
  return fetch(`${plane.url}/havoc/policies${query}`, {
    method: 'PUT',
    headers: { ...AUTH, 'content-type': 'application/yaml' },
    body: yaml,
  });
}

function assertLoopbackOnly(t: ExecutionContext, c: Console): void {
  t.true(c.requests.length >= 8);
  t.deepEqual(
    c.requests.filter((url) => new URL(url).hostname !== '127.0.0.1'),
    [],
  );
  t.deepEqual(c.incidents, []);
}

serial('a policy applied through the API shows on the page; the token stays out of every URL', async (t) => {
  const c = await openConsole(t);
  const yaml = 'version: 1\npolicies:\n  - name: from-the-api\n    type: http\n    target: /api*\n    error_chance: 0.2\n';
  t.is((await put(c.plane, yaml, '?ttl=5m')).status, 200);
  // It comes with the next `state` event (the hub looks every 250 ms). How long that took is
  // logged, not asserted: a loaded CI machine may take longer than the 1 s it takes here.
  const started = Date.now();
  await c.page.locator('#policies td', { hasText: 'from-the-api' }).waitFor({ timeout: 20_000 });
  t.log(`on screen ${Date.now() - started} ms after the API's answer`);
  await c.page.locator('#leases li', { hasText: /^api: (5m00s|4m5\ds) left of 5m00s/ }).waitFor({ timeout: 3000 });
  t.regex((await c.page.locator('#guard').textContent()) ?? '', /guard \d+ (SAFE|ELEVATED|HIGH|CRITICAL)/);
  // Kept for this tab only, never in a URL or a cookie.
  t.is(await c.page.evaluate('sessionStorage.getItem("havoc.token")'), TOKEN);
  t.deepEqual(await c.context.cookies(), []);
  t.deepEqual(
    c.requests.filter((url) => url.includes(TOKEN)),
    [],
  );
  assertLoopbackOnly(t, c);
});

serial('halt halts the engine, resume resumes it, rollback goes back one set', async (t) => {
  const c = await openConsole(t);
  await put(c.plane, 'version: 1\npolicies:\n  - name: first\n    type: http\n    target: /a\n    error_chance: 1\n');
  await put(c.plane, 'version: 1\npolicies:\n  - name: second\n    type: http\n    target: /b\n    error_chance: 1\n');
  await c.page.locator('#policies td', { hasText: 'second' }).waitFor({ timeout: 3000 });
  await c.page.click('#halt');
  await c.page.locator('#status dd', { hasText: 'HALTED' }).waitFor({ timeout: 3000 });
  t.true(c.engine.state().halted);
  t.true(await c.page.locator('#halt').isDisabled());
  await c.page.click('#resume');
  await c.page.locator('#status dd', { hasText: 'running' }).waitFor({ timeout: 3000 });
  t.false(c.engine.state().halted);
  await c.page.click('#rollback');
  await c.page.locator('#policies td', { hasText: 'first' }).waitFor({ timeout: 3000 });
  t.deepEqual(
    c.engine.policies().map((p) => p.name),
    ['first'],
  );
  // The history panel lists the engine's history, most recent first (a rollback pops one), and
  // there is nothing left to roll back to.
  const history = c.engine.state().history;
  t.is(history.length, 1);
  await c.page.locator('#rollback:disabled').waitFor({ timeout: 3000 });
  await c.page
    .locator('#history tr')
    .nth(history.length - 1)
    .waitFor({ timeout: 3000 });
  t.is(await c.page.locator('#history tr').count(), history.length);
  t.is(await c.page.locator('#history tr td').first().textContent(), String(history.at(-1)!.version));
  assertLoopbackOnly(t, c);
});

serial('the editor shows each error with its line and column, and applies with a TTL', async (t) => {
  const c = await openConsole(t);
  const editor = c.page.locator('#editor');
  await editor.fill('version: 1\npolicies:\n  - name: typo\n    type: http\n    target: /t\n    latency_chance: 2\n');
  await c.page
    .locator('#editor-issues li', { hasText: '6:21: policies[0].latency_chance: must be a number in [0, 1]' })
    .waitFor({ timeout: 2000 });
  t.regex((await c.page.locator('#editor-verdict').textContent()) ?? '', /1 problem/);
  await editor.fill('version: 1\npolicies:\n  - name: broken\n    type: [http\n');
  await c.page
    .locator('#editor-issues li', { hasText: /^\d+:\d+: / })
    .first()
    .waitFor({ timeout: 2000 });
  await editor.fill('version: 1\npolicies:\n  - name: edited\n    type: http\n    target: /e\n    error_chance: 0.5\n');
  await c.page.locator('#editor-verdict', { hasText: /^valid · guard \d+/ }).waitFor({ timeout: 2000 });
  await c.page.fill('#editor-ttl', '90s');
  await c.page.click('#editor-apply');
  await c.page.locator('#policies td', { hasText: 'edited' }).waitFor({ timeout: 3000 });
  t.deepEqual(
    c.engine.policies().map((p) => p.name),
    ['edited'],
  );
  t.is(c.engine.state().layers.find((l) => l.name === 'api')?.lease?.ttlMs, 90_000);
  assertLoopbackOnly(t, c);
});

serial('policy text holding HTML renders as text and runs no script', async (t) => {
  const c = await openConsole(t);
  const [name, target, body] = HOSTILE as [string, string, string];
  const yaml = [
    'version: 1',
    'policies:',
    `  - name: ${JSON.stringify(name)}`,
    '    type: http',
    `    target: ${JSON.stringify(target)}`,
    '    error_chance: 1',
    `    error_body: ${JSON.stringify(body)}`,
    `  - name: ${JSON.stringify(target)}`,
    '    type: sql',
    `    target: ${JSON.stringify(name)}`,
    '    latency_chance: 1',
    '    latency_duration: 1ms',
    '',
  ].join('\n');
  t.is((await put(c.plane, yaml)).status, 200);
  await c.page.locator('#policies td', { hasText: name }).first().waitFor({ timeout: 3000 });
  // Each value is there, character for character, as text.
  const cells = await c.page.locator('#policies td').allTextContents();
  for (const text of HOSTILE) t.true(cells.includes(text), text);
  // And in the chart's legend (uPlot's), once the hostile policies count faults.
  const faults = c.engine.metrics.faultsInjected;
  const counting = setInterval(() => {
    faults.labels(name, 'http', 'error').inc();
    faults.labels(target, 'sql', 'latency').inc();
  }, 100);
  t.teardown(() => clearInterval(counting));
  await c.page.locator('#chart .u-legend', { hasText: `${name} · http` }).waitFor({ timeout: 5000 });
  await c.page.locator('#chart .u-legend', { hasText: `${target} · sql` }).waitFor({ timeout: 3000 });
  clearInterval(counting);
  // The same text in the editor, where the issues list shows it back.
  await c.page.locator('#editor').fill(`${yaml}  - name: ${JSON.stringify(name)}\n    type: http\n    error_chance: 5\n`);
  await c.page.locator('#editor-issues li', { hasText: 'error_chance' }).first().waitFor({ timeout: 2000 });
  await new Promise((resolve) => setTimeout(resolve, 1500));
  t.is(await c.page.locator('main img, header img').count(), 0);
  const scripts = (await c.page.evaluate('[...document.scripts].map((s) => s.src)')) as string[];
  t.deepEqual(scripts.sort(), [`${c.plane.url}/havoc/console/console.js`, `${c.plane.url}/havoc/console/uPlot.iife.min.js`]);
  t.false(await c.page.evaluate('document.body.innerHTML.includes("<img")'));
  assertLoopbackOnly(t, c);
});

serial('screenshots of every panel, with live faults, sabotage and a limiter', async (t) => {
  t.timeout(60_000);
  const c = await openConsole(t, { warmupMs: 0 });
  const limiter = new AdaptiveLimiter({ name: 'checkout-db', registry: c.registry, initialLimit: 12 });
  const held = [limiter.tryAcquire(), limiter.tryAcquire(), limiter.tryAcquire()];
  t.teardown(() => held.forEach((token) => token?.ignore()));
  const yaml = `version: 1
policies:
  - name: checkout-errors
    type: http
    target: /checkout*
    error_chance: 0.3
    error_code: 503
  - name: slow-search
    type: http
    target: /search
    latency_chance: 0.5
    latency_duration: 5ms
  - name: memory-pressure
    type: resource
    ram_chunk_mb: 4
    ram_interval: 200ms
    ram_max_mb: 16
  - name: cpu-burn
    type: resource
    cpu_cores: 1
    cpu_percent: 5
    duration: 20s
`;
  t.is((await put(c.plane, yaml, '?ttl=10m')).status, 200);
  const app: Server = createServer(wrapHandler(c.engine, (_req, res) => res.end('ok')));
  await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => app.close(() => resolve())));
  const appUrl = `http://127.0.0.1:${(app.address() as AddressInfo).port}`;
  let traffic = true;
  const load = (async () => {
    for (let i = 0; traffic; i += 1) {
      await Promise.all([fetch(`${appUrl}/checkout/${i}`), fetch(`${appUrl}/search`)].map((p) => p.then((r) => r.text())));
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  })();
  t.teardown(() => {
    traffic = false;
  });
  await c.page.locator('#policies td', { hasText: 'checkout-errors' }).waitFor({ timeout: 3000 });
  await c.page.locator('#chart .uplot').waitFor({ timeout: 5000 });
  await c.page.locator('#limiters td', { hasText: 'checkout-db' }).waitFor({ timeout: 3000 });
  await c.page.locator('#editor').fill('version: 1\npolicies:\n  - name: oops\n    type: http\n    latency_chance: 1.5\n');
  await c.page.locator('#editor-issues li', { hasText: '5:21' }).waitFor({ timeout: 2000 });
  await new Promise((resolve) => setTimeout(resolve, 8000));
  traffic = false;
  await load;
  const sabotage = (await c.page.locator('#sabotage').textContent()) ?? '';
  t.regex(sabotage, /CPU threads1/);
  t.regex(sabotage, /RAM target16\.0 MiB/);
  t.deepEqual(await c.page.locator('#limiters td').allTextContents(), ['checkout-db', '12', '3']);
  mkdirSync(SHOTS, { recursive: true });
  for (const panel of ['status', 'policies', 'faults', 'editor', 'history', 'sabotage', 'limiters']) {
    await c.page.locator(`#panel-${panel}`).screenshot({ path: join(SHOTS, `${panel}.png`) });
  }
  // The whole page (the viewport as tall as the page: a full-page capture repaints only the viewport), and
  // its top half as the README shows it (docs/console.png).
  await c.page.screenshot({ path: join(SHOTS, 'overview.png'), clip: { x: 0, y: 0, width: 1280, height: 1010 } });
  await c.page.setViewportSize({ width: 1280, height: await c.page.evaluate('document.documentElement.scrollHeight') });
  await c.page.screenshot({ path: join(SHOTS, 'console.png') });
  t.true(existsSync(join(SHOTS, 'faults.png')));
  assertLoopbackOnly(t, c);
});
