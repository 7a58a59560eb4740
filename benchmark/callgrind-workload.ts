// The workloads of benchmark/callgrind.ts, run under valgrind:
//   node callgrind-workload.js <group> <n> <rounds>
// warms every operation of the group up, then, round after round, runs each operation n times
// in turn, calling mark() before each run and once at the end. The driver has callgrind dump
// its counts twice at every mark, around a young-generation collection, so every other dump
// holds exactly one run of one operation: operations and their baselines measured in the same
// process, interleaved, with the same heap.
import { getPriority } from 'node:os';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import path from 'node:path';
import { Duplex } from 'node:stream';
import { Engine, normalizeSql, validateConfig, wrapHandler } from 'havoc';
import { normalizeSqlJs } from './sql-reference.js';
// What every interceptor calls per request: the engine's decision plus its pass count.
import { decide as interceptorDecide } from '../src/interceptors/contract.js';
type ContractEngine = Parameters<typeof interceptorDecide>[0];

// The raw addon (compiled to build/benchmark/, so the package root is two levels up).
const addon = require(path.join(__dirname, '..', '..', 'index.js')) as typeof import('../index.js');

/** Operations run before counting starts in both runs: enough for V8 to optimize the loop. */
const WARMUP = 3000;
const POLICIES = 100;

type Operation = () => unknown;
type AsyncOperation = () => Promise<unknown>;

/** callgrind runs with --dump-before=uv_os_getpriority: nothing else calls it. */
const dump = (): void => void getPriority();

/**
 * Ends one counted run and starts the next on an empty young generation: the collection runs
 * between two dumps, counted in neither. Without it a collection falls wherever the runs before
 * put it, the same way in every process (fixed seeds), and lands on one operation of a pair
 * every round: 2–3% of an HTTP request.
 */
const mark = (): void => {
  dump();
  // A young-generation collection only: a full one would flush code and feedback, and the
  // next run would pay for compiling them again.
  (globalThis as { gc?: (options: { type: 'minor' }) => void }).gc?.({ type: 'minor' });
  dump();
};

/** 100 http policies on paths the workloads miss (exact and wildcard), as engine.bench.ts has. */
function httpEngine(name: string, extra: Record<string, unknown>[] = []): Engine {
  const policies = Array.from({ length: POLICIES - extra.length }, (_, i) => ({
    name: `p${i}`,
    type: 'http',
    target: i % 4 === 0 ? `/api/v1/service-${i}/*` : `/api/v1/resource-${i}`,
    error_chance: 0.5,
    latency_chance: 0.5,
    latency_duration: '10ms',
  }));
  return new Engine({ name, config: validateConfig({ version: 1, policies: [...extra, ...policies] }), seed: 1 });
}

const headers = { host: 'localhost', 'user-agent': 'bench' };
const miss = '/api/v2/orders/42?expand=items';
const statement = (n: number) => `SELECT id, email, created_at FROM users WHERE id = ${n} AND status = 'active' -- by id\nLIMIT 1`;

/** A fresh ~100 B statement per call: never repeated, so every cache lookup misses. */
function uniqueStatements(): () => string {
  let n = 1_000_000;
  return () => statement(n++);
}

/** 95% from 50 hot statements, 5% never seen before (the workload of sql.bench.ts). */
function repeatedStatements(): () => string {
  let seed = 42;
  let n = 2_000_000;
  const random = () => (seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0) / 2 ** 32;
  return () => (random() < 0.95 ? statement(Math.floor(random() * 50)) : statement(n++));
}

const decideGroup: Record<string, () => Operation> = {
  'napi-empty': () => () => addon.noopEmpty(),
  'napi-floor': () => () => addon.noop(0, miss, headers),
  // sql on a set of 100 http policies: nothing can fire, the engine answers without crossing.
  'decide-idle': () => {
    const engine = httpEngine('cg-idle');
    return () => engine.decide('sql', 'SELECT 1');
  },
  // The same through the interceptors' contract (src/interceptors/contract.ts): what a pg,
  // ioredis or gRPC call pays per request when its protocol has no policy.
  'interceptor-idle': () => {
    const engine = httpEngine('cg-interceptor-idle');
    const same = engine as unknown as ContractEngine; // the package's Engine, compiled twice
    return () => interceptorDecide(same, 'sql', 'SELECT 1');
  },
  'decide-miss': () => {
    const engine = httpEngine('cg-miss');
    return () => engine.decide('http', miss, headers);
  },
  'decide-match': () => {
    const engine = httpEngine('cg-match', [{ name: 'quiet', type: 'http', target: '/bench/*', error_chance: 0, latency_chance: 0 }]);
    return () => engine.decide('http', '/bench/hello', headers);
  },
  // What wrapHandler adds to a request no policy can match, without the HTTP parser.
  'wrap-skip': () => {
    const engine = httpEngine('cg-wrap-skip');
    const wrapped = wrapHandler(engine, () => undefined);
    const req = { url: '/bench/hello', headers } as unknown as IncomingMessage;
    const res = {} as ServerResponse;
    return () => wrapped(req, res);
  },
  'decide-fire': () => {
    const engine = httpEngine('cg-fire', [{ name: 'firing', type: 'http', target: '/bench/*', error_chance: 1, error_code: 503 }]);
    return () => engine.decide('http', '/bench/hello', headers);
  },
};

const sqlGroup: Record<string, () => Operation> = {
  'sql-statement-only': () => uniqueStatements(),
  'sql-addon-unique': () => {
    const next = uniqueStatements();
    return () => addon.normalizeSql(next());
  },
  'sql-exported-unique': () => {
    const next = uniqueStatements();
    return () => normalizeSql(next());
  },
  'sql-js-unique': () => {
    const next = uniqueStatements();
    return () => normalizeSqlJs(next());
  },
  'sql-exported-repeated': () => {
    const next = repeatedStatements();
    return () => normalizeSql(next());
  },
};

/** An in-memory connection: what one side writes, the other reads. */
function duplexPair(): [client: Duplex, server: Duplex] {
  const sides: Duplex[] = [];
  const side = (other: () => Duplex) =>
    new Duplex({
      read() {},
      write(chunk: Buffer, _encoding, callback) {
        other().push(chunk);
        callback();
      },
      final(callback) {
        other().push(null);
        callback();
      },
    });
  sides.push(
    side(() => sides[1]!),
    side(() => sides[0]!),
  );
  return [sides[0]!, sides[1]!];
}

const hello = (_req: IncomingMessage, res: ServerResponse): void => {
  // The Date header is refreshed once a second of wall time: how often would vary with the speed of the run.
  res.sendDate = false;
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '5' }).end('hello');
};

/**
 * Real requests through node's HTTP parser, a real IncomingMessage/ServerResponse pair and
 * keep-alive, over an in-memory connection: no kernel, no second process, the same bytes
 * every time. One request at a time.
 */
function httpOperation(listener: (req: IncomingMessage, res: ServerResponse) => void): AsyncOperation {
  // No timers per request (keep-alive, header and request timeouts): their work depends on wall time.
  const server = createServer({ keepAliveTimeout: 0, requestTimeout: 0, headersTimeout: 0 }, listener);
  const [client, serverSide] = duplexPair();
  server.emit('connection', serverSide);
  const request = Buffer.from('GET /bench/hello HTTP/1.1\r\nHost: localhost\r\nUser-Agent: bench\r\n\r\n');
  let pending: (() => void) | undefined;
  let received = '';
  client.on('data', (chunk: Buffer) => {
    received += chunk.toString('latin1');
    if (!received.endsWith('\r\n\r\nhello')) return;
    if (!received.startsWith('HTTP/1.1 200 ')) throw new Error(`unexpected response: ${received}`);
    received = '';
    pending?.();
  });
  return () =>
    new Promise<void>((resolve) => {
      pending = resolve;
      client.write(request);
    });
}

const httpGroup: Record<string, () => AsyncOperation> = {
  'http-bare': () => httpOperation(hello),
  'http-wrap': () => httpOperation(wrapHandler(httpEngine('cg-http'), hello)),
};

/** The groups, in the order the driver reads their dumps: round by round, operation by operation. */
export const GROUPS = {
  decide: Object.keys(decideGroup),
  sql: Object.keys(sqlGroup),
  http: Object.keys(httpGroup),
} as const;

async function main(): Promise<void> {
  const [group = '', count = '', roundsArg = ''] = process.argv.slice(2);
  const n = Number(count);
  const rounds = Number(roundsArg);
  if (!Number.isInteger(n) || n < 1 || !Number.isInteger(rounds) || rounds < 1) {
    throw new Error(`usage: callgrind-workload <group> <n> <rounds>, got ${process.argv.slice(2).join(' ')}`);
  }
  const makers: Record<string, () => Operation | AsyncOperation> | undefined =
    group === 'decide' ? decideGroup : group === 'sql' ? sqlGroup : group === 'http' ? httpGroup : undefined;
  if (!makers) throw new Error(`unknown group ${group}; one of ${Object.keys(GROUPS).join(', ')}`);
  const ops = Object.values(makers).map((make) => make());
  const isAsync = group === 'http';
  const run = async (op: Operation | AsyncOperation, times: number) => {
    if (isAsync) for (let i = 0; i < times; i++) await op();
    else for (let i = 0; i < times; i++) op();
  };
  for (const op of ops) await run(op, WARMUP);
  for (let round = 0; round < rounds; round++) {
    for (const op of ops) {
      mark();
      await run(op, n);
    }
  }
  mark();
  process.exit(0);
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
