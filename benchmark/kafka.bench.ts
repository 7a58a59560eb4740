// producer.send per second of a bare kafkajs producer against the real broker (.ci/services.sh),
// versus a producer of a Kafka instance instrumented by havoc with 100 kafka policies that never
// match, and versus a second bare producer (how far two identical producers differ here); all
// measured in this run, in interleaved rounds so that broker and machine noise hit them alike.
// The figure is the median of the per-round ratios. Also: the cost of one decision.
// Run: npm run bench:kafka (needs the broker of .ci/services.sh).
import { randomUUID } from 'node:crypto';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { Registry } from 'prom-client';
import { Bench } from 'tinybench';
import { Engine, instrumentKafka, validateConfig } from 'havoc';

const brokers = (process.env.HAVOC_KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
const TOPIC = `bench-${randomUUID().slice(0, 8)}`;
const ROUNDS = 30; // a multiple of 3: each producer goes first, second and third equally often
const SENDS_PER_ROUND = 1000;
const CONCURRENCY = 16;

async function throughput(producer: Producer): Promise<number> {
  let left = SENDS_PER_ROUND;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (left > 0) {
        left -= 1;
        await producer.send({ topic: TOPIC, messages: [{ key: 'k', value: 'v', headers: { tenant: 'blue' } }] });
      }
    }),
  );
  return SENDS_PER_ROUND / (Number(process.hrtime.bigint() - started) / 1e9);
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

async function main(): Promise<void> {
  // Half name other topics, half other topic prefixes: every message is looked up and misses.
  const policies = Array.from({ length: 100 }, (_, i) => ({
    name: `miss-${i}`,
    type: 'kafka',
    target: i % 2 === 0 ? `no-such-topic-${i}` : `no-such-prefix-${i}-*`,
    error_chance: 1,
    latency_chance: 1,
    latency_duration: '1s',
  }));
  const engine = new Engine({ name: 'kafka-bench', config: validateConfig({ version: 1, policies }), registry: new Registry() });
  const client = (): Kafka => new Kafka({ clientId: 'havoc-bench', brokers, logLevel: logLevel.NOTHING });
  const admin = client().admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: TOPIC }], waitForLeaders: true });
  const producers = [client().producer(), client().producer(), instrumentKafka(client(), engine).producer()];
  await Promise.all(producers.map((p) => p.connect()));
  try {
    for (const producer of producers) await throughput(producer); // warm the connections and the broker
    // Each round runs all three, in an order that rotates, so none gains from following another.
    const rates: number[][] = [[], [], []];
    for (let round = 0; round < ROUNDS; round += 1) {
      for (let k = 0; k < producers.length; k += 1) {
        const which = (round + k) % producers.length;
        rates[which]!.push(await throughput(producers[which]!));
      }
      console.error(`round ${round + 1}/${ROUNDS}: ${rates.map((r) => r.at(-1)!.toFixed(0)).join(' / ')} sends/s`);
    }
    const bench = new Bench({ time: 500 });
    bench.add('engine.decide kafka, 100 policies, no match', () => engine.decide('kafka', TOPIC, { tenant: 'blue' }));
    await bench.run();

    const [bare, control, instrumented] = rates as [number[], number[], number[]];
    const ratio = (xs: number[]): number => median(xs.map((x, i) => x / bare[i]!));
    console.log(`| case | result |\n|---|---|`);
    console.log(
      `| bare kafkajs send, ${CONCURRENCY} concurrent, median of ${ROUNDS} rounds | ${median(bare).toFixed(0)} sends/s (baseline) |`,
    );
    console.log(
      `| a second bare producer (the noise floor) | ${median(control).toFixed(0)} sends/s — ${ratio(control).toFixed(3)}× baseline |`,
    );
    console.log(
      `| instrumented, 100 non-matching kafka policies | ${median(instrumented).toFixed(0)} sends/s — **${ratio(instrumented).toFixed(3)}×** baseline |`,
    );
    for (const task of bench.tasks) {
      const mean = task.result && 'latency' in task.result ? task.result.latency.mean * 1e6 : NaN;
      console.log(`| ${task.name} | ${mean.toFixed(0)} ns |`);
    }
  } finally {
    await Promise.all(producers.map((p) => p.disconnect()));
    await admin.deleteTopics({ topics: [TOPIC] }).catch(() => undefined);
    await admin.disconnect();
  }
}

void main();
