// normalizeSql / fingerprintSql (Rust over N-API) against the plain JS port in
// sql-reference.ts: first the addon alone (no cache) on three realistic queries of about
// 100 B, 1 KB and 10 KB; then the exported functions, with their per-thread cache, on two
// workloads of ~100 B statements: all unique, and 95% repeats of 50 hot statements.
// Run: npm run bench:sql
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Bench } from 'tinybench';
import { fingerprintSql, normalizeSql } from 'havoc';
import { fingerprintSqlJs, normalizeSqlJs } from './sql-reference.js';

// The raw addon (compiled to build/benchmark/, so the package root is two levels up): no cache.
const addon = require(path.join(__dirname, '..', '..', 'index.js')) as typeof import('../index.js');

const small = "SELECT id, email, created_at FROM users WHERE id = 42 AND status = 'active' -- by id\nLIMIT 1";

const medium = `/* service=checkout route=/orders/:id trace=4bf92f3577b34da6 */
SELECT o.id, o.created_at, o.total_cents, c.email, c.full_name,
       COUNT(i.id) AS item_count, SUM(i.quantity * i.unit_price) AS gross
  FROM orders o
  JOIN customers c ON c.id = o.customer_id
  LEFT JOIN order_items i ON i.order_id = o.id -- items may be missing
  LEFT JOIN shipments s ON s.order_id = o.id AND s.carrier IN ('ups', 'fedex', 'dhl')
 WHERE o.status IN ('paid', 'shipped', 'delivered', 'refunded')
   AND o.created_at >= '2024-01-01 00:00:00'
   AND o.created_at <  '2024-02-01 00:00:00'
   AND c.region_id IN (3, 7, 11, 19, 23, 42, 57, 64)
   AND o.total_cents > 1000
   AND c.email NOT LIKE '%@example.com'
   AND (o.coupon_code IS NULL OR o.coupon_code <> 'STAFF-ONLY')
 GROUP BY o.id, o.created_at, o.total_cents, c.email, c.full_name
HAVING COUNT(i.id) > 0
 ORDER BY o.created_at DESC, o.id
 LIMIT 50 OFFSET 100;`;

function reportQuery(): string {
  const regions = [3, 7, 11, 19, 23, 42, 57, 64, 71, 88, 93, 101, 112, 127];
  const ctes = regions.map(
    (r) => `region_${r} AS (
    -- revenue for region ${r}
    SELECT o.id, o.total_cents, o.currency, p.sku
      FROM orders o
      JOIN customers c ON c.id = o.customer_id
      JOIN order_items i ON i.order_id = o.id
      JOIN products p ON p.id = i.product_id
     WHERE c.region_id = ${r} AND o.status IN ('paid', 'shipped', 'delivered')
       AND o.created_at BETWEEN '2024-01-01' AND '2024-12-31' /* fiscal year */
  )`,
  );
  const products = Array.from({ length: 400 }, (_, i) => 100_000 + i * 37).join(', ');
  return `/* job=nightly-revenue owner=finance-data */
WITH ${ctes.join(',\n')}
SELECT r.currency, p.category, SUM(r.total_cents) / 100.0 AS revenue, COUNT(DISTINCT r.id) AS orders
  FROM (${regions.map((r) => `SELECT * FROM region_${r}`).join(' UNION ALL ')}) r
  JOIN products p ON p.sku = r.sku
 WHERE p.id IN (${products})
   AND p.name NOT LIKE 'test-%' AND p.discontinued = FALSE
 GROUP BY r.currency, p.category
 ORDER BY revenue DESC;`;
}

const queries = [
  { label: '~100 B', sql: small },
  { label: '~1 KB', sql: medium },
  { label: '~10 KB', sql: reportQuery() },
];

const functions = [
  { name: 'normalize', native: addon.normalizeSql, cached: normalizeSql, js: normalizeSqlJs },
  { name: 'fingerprint', native: addon.fingerprintSql, cached: fingerprintSql, js: fingerprintSqlJs },
] as const;

/** A ~100-byte statement, one per `n`. */
const statement = (n: number) => `SELECT id, email, created_at FROM users WHERE id = ${n} AND status = 'active' -- by id\nLIMIT 1`;
const WORKLOAD = 20_000;
/** Cycling through more statements than the cache holds, first in first out: every lookup misses. */
const unique = Array.from({ length: WORKLOAD }, (_, i) => statement(1_000_000 + i));
/** 95% from 50 hot statements, 5% never seen before; a fixed seed, so every run sees the same. */
const repeated = (() => {
  let seed = 42;
  const random = () => (seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0) / 2 ** 32;
  return Array.from({ length: WORKLOAD }, (_, i) => (random() < 0.95 ? statement(Math.floor(random() * 50)) : statement(2_000_000 + i)));
})();
const workloads = [
  { label: 'unique', list: unique },
  { label: '95% repeated', list: repeated },
] as const;
/** Statements per measured iteration, so that the harness's own cost stays out of the figure. */
const BATCH = 1000;

/** A task that runs `fn` over the next BATCH statements of `list`, round robin. */
function over(list: readonly string[], fn: (sql: string) => string): () => void {
  let next = 0;
  return () => {
    for (let i = 0; i < BATCH; i++) {
      fn(list[next]!);
      next = next + 1 === list.length ? 0 : next + 1;
    }
  };
}

async function main() {
  // Equal work: the port must produce exactly what the native code does.
  for (const { sql } of queries) {
    for (const f of functions) {
      if (f.native(sql) !== f.js(sql)) throw new Error(`JS port disagrees on ${f.name} of:\n${sql}`);
    }
  }

  const bench = new Bench({ time: 1000, warmup: true, warmupTime: 300 });
  for (const { label, sql } of queries) {
    for (const f of functions) {
      bench.add(`native ${f.name} ${label}`, () => f.native(sql));
      bench.add(`js ${f.name} ${label}`, () => f.js(sql));
    }
  }
  for (const { label, list } of workloads) {
    for (const f of functions) {
      bench.add(`cached ${f.name} ${label}`, over(list, f.cached));
      bench.add(`uncached ${f.name} ${label}`, over(list, f.native));
      bench.add(`js ${f.name} ${label}`, over(list, f.js));
    }
  }
  await bench.run();

  /** MB/s (10^6 bytes) from a task's mean latency in milliseconds. */
  const mbPerSecond = (name: string, bytes: number) => {
    const mean = bench.getTask(name)!.result!.latency.mean;
    return bytes / 1e6 / (mean / 1000);
  };
  const rows = queries.flatMap(({ label, sql }) =>
    functions.map((f) => {
      const bytes = Buffer.byteLength(sql);
      const native = mbPerSecond(`native ${f.name} ${label}`, bytes);
      const js = mbPerSecond(`js ${f.name} ${label}`, bytes);
      return {
        size: `${label} (${bytes} B)`,
        function: f.name,
        'native MB/s': Number(native.toFixed(1)),
        'JS MB/s': Number(js.toFixed(1)),
        'native/JS': Number((native / js).toFixed(2)),
      };
    }),
  );
  console.log('The addon without the cache, the same statement again and again:');
  console.table(rows);

  /** Nanoseconds per statement. */
  const perStatement = (name: string) => (bench.getTask(name)!.result!.latency.mean * 1e6) / BATCH;
  const workloadRows = workloads.flatMap(({ label }) =>
    functions.map((f) => {
      const cached = perStatement(`cached ${f.name} ${label}`);
      const uncached = perStatement(`uncached ${f.name} ${label}`);
      const js = perStatement(`js ${f.name} ${label}`);
      return {
        workload: `${label} (~${Buffer.byteLength(statement(1_000_000))} B)`,
        function: f.name,
        'exported ns': Number(cached.toFixed(1)),
        'addon ns': Number(uncached.toFixed(1)),
        'JS ns': Number(js.toFixed(1)),
        'exported/JS speed': Number((js / cached).toFixed(2)),
        'addon/JS speed': Number((js / uncached).toFixed(2)),
      };
    }),
  );
  console.log(`The exported functions (per-thread cache) on ${WORKLOAD} statements, against the addon alone and the JS port:`);
  console.table(workloadRows);

  const out = path.join(__dirname, '..', '..', 'bench-results');
  mkdirSync(out, { recursive: true });
  writeFileSync(path.join(out, 'sql.json'), `${JSON.stringify({ node: process.version, rows, workloads: workloadRows }, null, 2)}\n`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
