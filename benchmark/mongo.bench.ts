// findOne per second of a bare MongoClient against the real MongoDB-wire server (FerretDB), versus
// a client instrumented by havoc with 100 mongo policies that never match, and versus a second
// bare client (how far two identical clients differ here); all measured in this run, in
// interleaved rounds so that server and machine noise hit them alike. Also: the cost of one
// decision. Run: npm run bench:mongo (needs the server of .ci/services.sh).
import { MongoClient } from 'mongodb';
import { Registry } from 'prom-client';
import { Bench } from 'tinybench';
import { Engine, instrumentMongo, validateConfig } from 'havoc';
import { median } from './stats.js';

const url = process.env.HAVOC_MONGO_URL ?? 'mongodb://127.0.0.1:27017/havoc';
const COLLECTION = `bench_${process.pid}`;
const ROUNDS = 12; // a multiple of 3: each client goes first, second and third equally often
const QUERIES_PER_ROUND = 2000;
const CONCURRENCY = 8;

async function throughput(client: MongoClient): Promise<number> {
  const collection = client.db().collection(COLLECTION);
  let left = QUERIES_PER_ROUND;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (left > 0) {
        left -= 1;
        await collection.findOne({ n: 7 });
      }
    }),
  );
  return QUERIES_PER_ROUND / (Number(process.hrtime.bigint() - started) / 1e9);
}

async function main(): Promise<void> {
  // Half name other commands, half other collections: every findOne is looked up and misses.
  const policies = Array.from({ length: 100 }, (_, i) => ({
    name: `miss-${i}`,
    type: 'mongo',
    target: i % 2 === 0 ? `noSuchCommand${i}` : `havoc.no_such_collection_${i}`,
    error_chance: 1,
    latency_chance: 1,
    latency_duration: '1s',
  }));
  const engine = new Engine({ name: 'mongo-bench', config: validateConfig({ version: 1, policies }), registry: new Registry() });
  const options = { maxPoolSize: CONCURRENCY };
  const bare = new MongoClient(url, options);
  const control = new MongoClient(url, options);
  const instrumented = instrumentMongo(new MongoClient(url, options), engine);
  const seed = bare.db().collection(COLLECTION);
  await seed.insertMany(Array.from({ length: 20 }, (_, n) => ({ n })));
  try {
    for (const client of [bare, control, instrumented]) await throughput(client); // warm the pools and the server
    // Each round runs all three, in an order that rotates, so none gains from following another.
    // The second bare client is the noise floor: bare against bare, in the same rounds.
    const clients = [bare, control, instrumented];
    const rates: number[][] = [[], [], []];
    for (let round = 0; round < ROUNDS; round += 1) {
      for (let k = 0; k < clients.length; k += 1) {
        const which = (round + k) % clients.length;
        rates[which]!.push(await throughput(clients[which]!));
      }
    }
    const bench = new Bench({ time: 500 });
    bench.add('engine.decide mongo, 100 policies, no match', () => engine.decide('mongo', `find havoc.${COLLECTION}`));
    await bench.run();

    const [b, c, h] = rates.map(median) as [number, number, number];
    console.log(`| case | result |\n|---|---|`);
    console.log(`| bare mongodb findOne, ${CONCURRENCY} concurrent, median of ${ROUNDS} rounds | ${b.toFixed(0)} queries/s (baseline) |`);
    console.log(`| a second bare client (the noise floor) | ${c.toFixed(0)} queries/s — ${(c / b).toFixed(3)}× baseline |`);
    console.log(`| instrumented, 100 non-matching mongo policies | ${h.toFixed(0)} queries/s — **${(h / b).toFixed(3)}×** baseline |`);
    for (const task of bench.tasks) {
      const mean = task.result && 'latency' in task.result ? task.result.latency.mean * 1e6 : NaN;
      console.log(
        `| ${task.name} | ${mean.toFixed(0)} ns (${((mean / 1e9) * b * 100).toFixed(2)}% of a bare findOne's wall time at that rate) |`,
      );
    }
  } finally {
    await seed.drop().catch(() => undefined);
    await Promise.all([bare.close(), control.close(), instrumented.close()]);
  }
}

void main();
