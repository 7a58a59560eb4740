// producer.send per second of a bare kafkajs producer against the real broker (.ci/services.sh),
// versus a producer of a Kafka instance instrumented by havoc with 100 kafka policies that never
// match, and versus a second bare producer (how far two identical producers differ here); all
// measured in this run, in interleaved rounds so that broker and machine noise hit them alike.
// The figure is the median of the per-round ratios to the mean of the two bare producers.
// Also: the cost of one decision.
// Run: npm run bench:kafka (needs the broker of .ci/services.sh).
import { randomUUID } from 'node:crypto';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { Registry } from 'prom-client';
import { Bench } from 'tinybench';
import { Engine, instrumentKafka, validateConfig } from 'havoc';
import { median } from './stats.js';

const brokers = (process.env.HAVOC_KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
const TOPIC = `bench-${randomUUID().slice(0, 8)}`;
const ROUNDS = 60; // a multiple of 3: each producer goes first, second and third equally often
const SENDS_PER_ROUND = 500;
const WARMUP_SENDS = 100;
const CONCURRENCY = 16;

async function throughput(producer: Producer, sends: number): Promise<number> {
  let left = sends;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (left > 0) {
        left -= 1;
        await producer.send({ topic: TOPIC, messages: [{ key: 'k', value: 'v', headers: { tenant: 'blue' } }] });
      }
    }),
  );
  return sends / (Number(process.hrtime.bigint() - started) / 1e9);
}

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
  await admin.createTopics({ topics: [{ topic: TOPIC }], waitForLeaders: false });
  // kafkajs's own waitForLeaders gives up on a busy broker's UNKNOWN_TOPIC_OR_PARTITION: poll.
  for (let tries = 0; ; tries += 1) {
    const leader = await admin.fetchTopicMetadata({ topics: [TOPIC] }).then(
      ({ topics: [metadata] }) => metadata?.partitions.every((p) => p.leader >= 0) === true,
      () => false,
    );
    if (leader) break;
    if (tries === 600) throw new Error(`${TOPIC} has no leader after 60 s`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  // Fresh producers every round, connected in the order they run: a producer's connection
  // (which broker thread serves it) turned out to matter more than the decision, so no
  // producer keeps one connection for the whole run.
  const makers: Array<() => Producer> = [
    () => client().producer(),
    () => client().producer(),
    () => instrumentKafka(client(), engine).producer(),
  ];
  const rates: number[][] = [[], [], []];
  try {
    for (let round = -1; round < ROUNDS; round += 1) {
      const order = makers.map((_, k) => (Math.max(round, 0) + k) % makers.length);
      const producers = new Map<number, Producer>();
      for (const which of order) {
        const producer = makers[which]!();
        await producer.connect();
        producers.set(which, producer);
        await throughput(producer, WARMUP_SENDS);
      }
      // Each round runs all three, in an order that rotates, so none gains from following another.
      for (const which of order) {
        const rate = await throughput(producers.get(which)!, SENDS_PER_ROUND);
        // Round -1 only warms the broker and the JIT.
        if (round >= 0) rates[which]!.push(rate);
      }
      await Promise.all([...producers.values()].map((p) => p.disconnect()));
      if (round >= 0) console.error(`round ${round + 1}/${ROUNDS}: ${rates.map((r) => r.at(-1)!.toFixed(0)).join(' / ')} sends/s`);
    }
    const bench = new Bench({ time: 500 });
    bench.add('engine.decide kafka, 100 policies, no match', () => engine.decide('kafka', TOPIC, { tenant: 'blue' }));
    await bench.run();

    const [bare, control, instrumented] = rates as [number[], number[], number[]];
    // The two bare producers differ by more than the decision costs here: the baseline of each
    // round is their mean, and how far they differ is shown as the noise floor.
    const baseline = bare.map((b, i) => (b + control[i]!) / 2);
    const ratio = (xs: number[], base: number[]): number => median(xs.map((x, i) => x / base[i]!));
    console.log(`| case | result |\n|---|---|`);
    console.log(
      `| bare kafkajs send, ${CONCURRENCY} concurrent, mean of two bare producers, median of ${ROUNDS} rounds | ${median(baseline).toFixed(0)} sends/s (baseline) |`,
    );
    console.log(`| the second bare producer against the first (the noise floor) | ${ratio(control, bare).toFixed(3)}× |`);
    console.log(
      `| instrumented, 100 non-matching kafka policies | ${median(instrumented).toFixed(0)} sends/s — **${ratio(instrumented, baseline).toFixed(3)}×** baseline |`,
    );
    for (const task of bench.tasks) {
      const mean = task.result && 'latency' in task.result ? task.result.latency.mean * 1e6 : NaN;
      console.log(`| ${task.name} | ${mean.toFixed(0)} ns |`);
    }
  } finally {
    await admin.deleteTopics({ topics: [TOPIC] }).catch(() => undefined);
    await admin.disconnect();
  }
}

void main();
