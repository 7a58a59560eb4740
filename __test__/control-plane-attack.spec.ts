// The control plane under attack, on a real loopback server: every operation of its OpenAPI
// document refused without the token, half-open connections, 1,000 concurrent writers, and the
// served document held against the router.
import { Agent, request, type IncomingHttpHeaders } from 'node:http';
import { connect, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import test from 'ava';
import { Registry } from 'prom-client';
import { Engine, startControlPlane, type ControlPlane, type SetState } from 'havoc';
import { setName } from './fixtures/http.js';

const TOKEN = 'attack-token-0123456789';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'] as const;

interface Operation {
  responses: Record<string, unknown>;
  requestBody?: { content: Record<string, unknown> };
}
interface OpenApiDoc {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<string, Partial<Record<(typeof METHODS)[number], Operation>>>;
  components: { securitySchemes: Record<string, { type: string; scheme?: string; in?: string; name?: string }> };
}
interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
}
interface StateBody {
  version: number;
  policies: { name: string }[];
  layers: { name: string; policies: string[]; lease: unknown }[];
  history: SetState['history'];
}

async function start(t: { teardown(fn: () => Promise<void>): void }): Promise<{ engine: Engine; plane: ControlPlane }> {
  const registry = new Registry();
  const engine = new Engine({ name: setName('attack'), registry });
  const plane = await startControlPlane(engine, { registry, token: TOKEN });
  t.teardown(() => plane.close());
  return { engine, plane };
}

/** One HTTP request with node:http (an explicit agent bounds the sockets). */
function send(
  plane: ControlPlane,
  method: string,
  path: string,
  options: { headers?: Record<string, string>; body?: string; agent?: Agent } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(`${plane.url}${path}`, { method, headers: options.headers ?? {}, agent: options.agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

async function fetchDoc(plane: ControlPlane): Promise<OpenApiDoc> {
  const res = await send(plane, 'GET', '/havoc/openapi.json', { headers: AUTH });
  if (res.status !== 200) throw new Error(`GET /havoc/openapi.json: ${res.status} ${res.text}`);
  return JSON.parse(res.text) as OpenApiDoc;
}

function operations(doc: OpenApiDoc): { method: string; path: string; operation: Operation }[] {
  return Object.entries(doc.paths).flatMap(([path, item]) =>
    METHODS.flatMap((method) => {
      const operation = item[method];
      return operation === undefined ? [] : [{ method: method.toUpperCase(), path, operation }];
    }),
  );
}

/** The router's table, from the built module behind the package (it is not part of the package's API). */
function routerTable(): Record<string, readonly string[]> {
  const module = require(join(dirname(require.resolve('havoc')), 'control-plane.js')) as {
    ROUTE_METHODS: Record<string, readonly string[]>;
  };
  return module.ROUTE_METHODS;
}

/** Every `$ref` of the document, as a JSON pointer, resolves. */
function unresolvedRefs(doc: unknown): string[] {
  const missing: string[] = [];
  const resolve = (pointer: string): unknown =>
    pointer
      .slice(2)
      .split('/')
      .reduce<unknown>(
        (node, key) =>
          node !== null && typeof node === 'object'
            ? (node as Record<string, unknown>)[key.replace(/~1/g, '/').replace(/~0/g, '~')]
            : undefined,
        doc,
      );
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach(walk);
    else if (node !== null && typeof node === 'object') {
      for (const [key, value] of Object.entries(node)) {
        if (key === '$ref' && typeof value === 'string' && resolve(value) === undefined) missing.push(value);
        else walk(value);
      }
    }
  };
  walk(doc);
  return missing;
}

test('every operation of the OpenAPI document answers 401 without the token, and does nothing', async (t) => {
  const { engine, plane } = await start(t);
  const ops = operations(await fetchDoc(plane));
  t.true(ops.length >= 10);
  const bodies: Record<string, string> = {
    PUT: 'version: 1\npolicies:\n  - name: sneaky\n    type: http\n    error_chance: 1\n',
    POST: 'version: 1\n',
  };
  const wrong: Record<string, string>[] = [
    {},
    { authorization: 'Bearer wrong' },
    { 'x-havoc-token': `${TOKEN}x` },
    { authorization: TOKEN },
  ];
  for (const { method, path } of ops) {
    for (const headers of wrong) {
      const res = await send(plane, method, path, { headers: { ...headers, 'content-type': 'application/yaml' }, body: bodies[method] });
      t.is(res.status, 401, `${method} ${path} with ${JSON.stringify(headers)}`);
      t.is(res.headers['www-authenticate'], 'Bearer realm="havoc"');
      t.is(res.headers['content-type'], 'application/json');
      t.is(typeof (JSON.parse(res.text) as { error: unknown }).error, 'string');
    }
  }
  t.is(engine.version, 0);
  t.false(engine.state().halted);
  // With the token, each one answers something other than 401 (the event stream never ends: its status is enough).
  for (const { method, path } of ops) {
    if (path === '/havoc/events') {
      const controller = new AbortController();
      const res = await fetch(`${plane.url}${path}`, { method, headers: AUTH, signal: controller.signal });
      t.is(res.status, 200, `${method} ${path}`);
      controller.abort();
    } else t.not((await send(plane, method, path, { headers: AUTH })).status, 401, `${method} ${path}`);
  }
});

test('GET /havoc/openapi.json is OpenAPI 3.1 and documents every route and method of the router', async (t) => {
  const { plane } = await start(t);
  const doc = await fetchDoc(plane);
  t.regex(doc.openapi, /^3\.1\.\d+$/);
  t.is(doc.info.version, (require('havoc/package.json') as { version: string }).version);
  t.deepEqual(unresolvedRefs(doc), []);
  t.like(doc.components.securitySchemes, {
    bearerToken: { type: 'http', scheme: 'bearer' },
    headerToken: { type: 'apiKey', in: 'header', name: 'X-Havoc-Token' },
  });
  const documented = Object.fromEntries(
    Object.entries(doc.paths).map(([path, item]) => [
      path,
      METHODS.filter((m) => item[m] !== undefined)
        .map((m) => m.toUpperCase())
        .sort(),
    ]),
  );
  const router = Object.fromEntries(Object.entries(routerTable()).map(([path, methods]) => [path, [...methods].sort()]));
  t.deepEqual(documented, router);
  for (const { method, path, operation } of operations(doc)) {
    t.truthy(operation.responses['200'], `${method} ${path} documents its 200`);
    t.truthy(operation.responses['401'], `${method} ${path} documents its 401`);
    if (operation.requestBody !== undefined) {
      t.deepEqual(Object.keys(operation.requestBody.content).sort(), [
        'application/json',
        'application/x-yaml',
        'application/yaml',
        'text/x-yaml',
        'text/yaml',
      ]);
      // validate answers an invalid config with a 200 that lists its issues: no 422.
      const statuses = path === '/havoc/validate' ? ['413', '415'] : ['413', '415', '422'];
      for (const status of statuses) t.truthy(operation.responses[status], `${method} ${path} documents its ${status}`);
    }
  }
  // Probed too: an undocumented method on each path is a 405 whose Allow lists the documented ones.
  for (const [path, methods] of Object.entries(documented)) {
    const res = await send(plane, 'PATCH', path, { headers: AUTH });
    t.is(res.status, 405, path);
    t.deepEqual(String(res.headers.allow).split(', ').sort(), methods);
  }
  t.is((await send(plane, 'GET', '/havoc/not-documented', { headers: AUTH })).status, 404);
});

test('100 idle half-open connections do not stop it answering; it closes them itself with a JSON 408', async (t) => {
  const { plane } = await start(t);
  const port = Number(new URL(plane.url).port);
  const partials = [
    '',
    'GET /havoc/sta',
    'PUT /havoc/policies HTTP/1.1\r\nHost: control\r\nContent-Ty',
    `GET /havoc/state HTTP/1.1\r\nHost: control\r\nAuthorization: Bearer ${TOKEN}\r\n`,
  ];
  const sockets: Socket[] = [];
  t.teardown(() => sockets.forEach((socket) => socket.destroy()));
  const outcomes = await Promise.all(
    Array.from(
      { length: 100 },
      (_, i) =>
        new Promise<Promise<string>>((resolve, reject) => {
          const socket = connect(port, '127.0.0.1');
          sockets.push(socket);
          let received = '';
          socket.on('data', (data: Buffer) => (received += data.toString('latin1')));
          const closed = new Promise<string>((done) => socket.on('close', () => done(received)));
          socket.once('error', reject);
          socket.once('connect', () => socket.write(partials[i % partials.length] ?? '', () => resolve(closed)));
        }),
    ),
  );
  const res = await send(plane, 'GET', '/havoc/state', { headers: AUTH });
  t.is(res.status, 200);
  t.is((JSON.parse(res.text) as StateBody).version, 0);
  // headersTimeout (10 s) ends each of them with a 408 in the usual JSON error body.
  for (const received of await Promise.all(outcomes)) {
    t.regex(received, /^HTTP\/1\.1 408 /);
    t.regex(received, /content-type: application\/json/);
    t.regex(received, /\r\n\r\n\{"error":"request not received in time"\}$/);
  }
  t.is((await send(plane, 'GET', '/havoc/state', { headers: AUTH })).status, 200);
});

test('1,000 concurrent PUTs of distinct configs: the state, the history and the responses agree', async (t) => {
  const { engine, plane } = await start(t);
  // The server closes connections past its cap (256): the client's pool stays under it.
  const agent = new Agent({ keepAlive: true, maxSockets: 100 });
  t.teardown(() => agent.destroy());
  const count = 1000;
  const replies = await Promise.all(
    Array.from({ length: count }, (_, i) => {
      const json = i % 2 === 0;
      const body = json
        ? JSON.stringify({ version: 1, policies: [{ name: `writer-${i}`, type: 'http', target: `/w/${i}`, errorChance: 1 }] })
        : `version: 1\npolicies:\n  - name: writer-${i}\n    type: http\n    target: /w/${i}\n    error_chance: 1\n`;
      const headers = { ...AUTH, 'content-type': json ? 'application/json' : 'application/yaml' };
      return send(plane, 'PUT', '/havoc/policies', { headers, body, agent }).then((res) => ({ writer: `writer-${i}`, ...res }));
    }),
  );
  t.deepEqual(
    replies.filter((r) => r.status !== 200).map((r) => `${r.status} ${r.text}`),
    [],
  );
  const applied = replies.map((r) => ({ writer: r.writer, body: JSON.parse(r.text) as StateBody }));
  // Each PUT answers the state it made: its own policy, under its own version.
  for (const { writer, body } of applied)
    t.deepEqual(
      body.policies.map((p) => p.name),
      [writer],
    );
  const versions = applied.map((a) => a.body.version).sort((a, b) => a - b);
  t.deepEqual(
    versions,
    Array.from({ length: count }, (_, i) => i + 1),
  );
  const last = applied.find((a) => a.body.version === count);

  const state = JSON.parse((await send(plane, 'GET', '/havoc/state', { headers: AUTH })).text) as StateBody;
  t.is(state.version, count);
  t.is(engine.version, count);
  t.deepEqual(
    state.policies.map((p) => p.name),
    [last?.writer],
  );
  t.deepEqual(state.layers, [{ name: 'api', policies: [last?.writer], lease: null }]);
  t.deepEqual(
    engine.policies().map((p) => p.name),
    [last?.writer],
  );
  // The history is bounded (20 sets), consecutive, and its last entry is the state.
  t.is(state.history.length, 20);
  t.deepEqual(
    state.history.map((h) => h.version),
    Array.from({ length: 20 }, (_, i) => count - 19 + i),
  );
  t.deepEqual(state.history.at(-1), { version: count, cause: 'apply layer "api"', policies: 1, layers: ['api'] });
  t.deepEqual(state.history, engine.state().history);
});
