// Queries per second of bare `pg` against the real PostgreSQL server, versus the same pool
// instrumented by havoc with 100 sql policies that never match; both measured in this run,
// alternating rounds so that server and machine noise hit both alike. Also: the cost of
// normalizeSql per query. Run: npm run bench:db (needs the server of .ci/services.sh).
import pg from 'pg';
import { Registry } from 'prom-client';
import { Bench } from 'tinybench';
import { Engine, instrumentPg, normalizeSql, validateConfig } from 'havoc';
import { median } from './stats.js';

const url = process.env.HAVOC_PG_URL ?? 'postgres://havoc:havoc@127.0.0.1:5432/havoc';
const QUERY = "SELECT id, relname FROM (SELECT oid AS id, relname FROM pg_class LIMIT 5) AS t WHERE relname <> 'x'";
const ROUNDS = 6;
const QUERIES_PER_ROUND = 4000;
const CONCURRENCY = 8;

async function throughput(pool: pg.Pool): Promise<number> {
  let left = QUERIES_PER_ROUND;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (left > 0) {
        left -= 1;
        await pool.query(QUERY);
      }
    }),
  );
  return QUERIES_PER_ROUND / (Number(process.hrtime.bigint() - started) / 1e9);
}

async function main(): Promise<void> {
  const policies = Array.from({ length: 100 }, (_, i) => ({
    name: `miss-${i}`,
    type: 'sql',
    target: `no_such_table_${i}`,
    error_chance: 1,
    latency_chance: 1,
    latency_duration: '1s',
  }));
  const engine = new Engine({ name: 'db-bench', config: validateConfig({ version: 1, policies }), registry: new Registry() });
  const bare = new pg.Pool({ connectionString: url, max: CONCURRENCY });
  const instrumented = instrumentPg(new pg.Pool({ connectionString: url, max: CONCURRENCY }), engine);
  await throughput(bare); // warm both pools and the server
  await throughput(instrumented);
  const bareRates: number[] = [];
  const havocRates: number[] = [];
  for (let round = 0; round < ROUNDS; round += 1) {
    bareRates.push(await throughput(bare));
    havocRates.push(await throughput(instrumented));
  }
  await Promise.all([bare.end(), instrumented.end()]);

  const bench = new Bench({ time: 500 });
  bench.add('normalizeSql (per query)', () => normalizeSql(QUERY));
  bench.add('engine.decide sql, 100 policies, no match', () => engine.decide('sql', QUERY));
  await bench.run();

  const b = median(bareRates);
  const h = median(havocRates);
  console.log(`| case | result |\n|---|---|`);
  console.log(`| bare pg, ${CONCURRENCY} concurrent, median of ${ROUNDS} rounds | ${b.toFixed(0)} queries/s (baseline) |`);
  console.log(`| instrumented, 100 non-matching sql policies | ${h.toFixed(0)} queries/s — **${(h / b).toFixed(3)}×** baseline |`);
  for (const task of bench.tasks) {
    const mean = task.result && 'latency' in task.result ? task.result.latency.mean * 1e6 : NaN;
    console.log(
      `| ${task.name} | ${mean.toFixed(0)} ns (${((mean / 1e9) * b * 100).toFixed(2)}% of a bare query's wall time at that rate) |`,
    );
  }
}

void main();
