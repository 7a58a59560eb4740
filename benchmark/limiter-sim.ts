// Discrete-event simulation: a downstream with C servers and a FIFO queue (so latency grows
// with queueing) whose base latency steps from 10 ms to 50 ms mid-run, fed 20% more traffic
// than it can serve. Compares havoc's AdaptiveLimiter (the real Rust core, on a manual clock)
// with a static bulkhead, resile's rule and Netflix's Vegas rule (TypeScript ports of what
// shared/REFERENCE.md describes). Deterministic: fixed seed, simulated time.
// Run: npm run bench:limiter   (table on stdout, plot in bench-results/limiter-sim.svg)
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { AdaptiveLimiter } from 'havoc';
// A pure helper, compiled here from the source: the simulation's traffic and the chaos wrapper share it.
import { mulberry32 } from '../src/random.js';

const SERVERS = 50;
const BASE_BEFORE_MS = 10;
const BASE_AFTER_MS = 50;
const STEP_AT_MS = 40_000;
const END_MS = 120_000;
const OVERLOAD = 1.2;
const SEED = 42;
const BUCKET_MS = 1000;

interface Limiter {
  readonly name: string;
  readonly limit: number;
  /** A token (opaque) or null when shed. */
  tryAcquire(now: number, inflight: number): unknown;
  release(token: unknown, now: number, rttMs: number): void;
}

class HavocLimiter implements Limiter {
  readonly name = 'havoc AdaptiveLimiter';
  readonly #limiter = AdaptiveLimiter.withManualClock({ initialLimit: 20, maxLimit: 1000 });
  get limit() {
    return this.#limiter.limit;
  }
  tryAcquire(now: number) {
    this.#limiter.setClockMs(now);
    return this.#limiter.tryAcquire();
  }
  release(token: unknown, now: number) {
    this.#limiter.setClockMs(now);
    (token as { success(): void }).success();
  }
}

/** A fixed limit, set (as people do) well above the downstream's real concurrency. */
class StaticBulkhead implements Limiter {
  readonly name = `static bulkhead (${SERVERS * 2})`;
  readonly limit = SERVERS * 2;
  #inflight = 0;
  tryAcquire() {
    if (this.#inflight >= this.limit) return null;
    this.#inflight++;
    return true;
  }
  release() {
    this.#inflight--;
  }
}

/** resile: +1 while EWMA(rtt) < 1.5 × min RTT, else ×0.8 on every sample; min RTT ×1.05 per minute. */
class ResileRule implements Limiter {
  readonly name = 'resile rule';
  limit = 10;
  #inflight = 0;
  #ewma = 0;
  #minRtt = Infinity;
  #lastDecay = 0;
  tryAcquire() {
    if (this.#inflight >= Math.floor(this.limit)) return null;
    this.#inflight++;
    return true;
  }
  release(_: unknown, now: number, rtt: number) {
    this.#inflight--;
    if (now - this.#lastDecay >= 60_000) {
      this.#minRtt *= 1.05;
      this.#lastDecay = now;
    }
    this.#minRtt = Math.min(this.#minRtt, rtt);
    this.#ewma = this.#ewma === 0 ? rtt : 0.9 * this.#ewma + 0.1 * rtt;
    this.limit = this.#ewma < 1.5 * this.#minRtt ? this.limit + 1 : Math.max(1, this.limit * 0.8);
  }
}

/** Netflix concurrency-limits VegasLimit: per-sample, log10 thresholds, rtt_noload reset every ~30 × limit samples. */
class NetflixVegas implements Limiter {
  readonly name = 'Netflix Vegas';
  limit = 20;
  #inflight = 0;
  #rttNoLoad = 0;
  #probeCount = 0;
  #probeJitter: () => number;
  #nextProbe: number;
  constructor(random: () => number) {
    this.#probeJitter = () => 0.5 + random() * 0.5;
    this.#nextProbe = this.#probeAt();
  }
  #probeAt() {
    return Math.floor(30 * this.limit * this.#probeJitter());
  }
  tryAcquire() {
    if (this.#inflight >= Math.floor(this.limit)) return null;
    this.#inflight++;
    return this.#inflight;
  }
  release(token: unknown, _now: number, rtt: number) {
    this.#inflight--;
    if (++this.#probeCount >= this.#nextProbe) {
      this.#probeCount = 0;
      this.#nextProbe = this.#probeAt();
      this.#rttNoLoad = rtt;
      return;
    }
    if (this.#rttNoLoad === 0 || rtt < this.#rttNoLoad) {
      this.#rttNoLoad = rtt;
      return;
    }
    const inflightAtStart = token as number;
    if (inflightAtStart * 2 < this.limit) return; // app-limited
    const log = Math.max(1, Math.log10(Math.max(1, Math.floor(this.limit))));
    const queue = Math.ceil(this.limit * (1 - this.#rttNoLoad / rtt));
    let next = this.limit;
    if (queue <= log) next = this.limit + 6 * log;
    else if (queue < 3 * log) next = this.limit + log;
    else if (queue > 6 * log) next = this.limit - log;
    this.limit = Math.min(1000, Math.max(1, next));
  }
}

/** A binary min-heap of completion times (with their payload index). */
class Heap {
  readonly #times: number[] = [];
  readonly #ids: number[] = [];
  get size() {
    return this.#times.length;
  }
  peek() {
    return this.#times[0]!;
  }
  push(time: number, id: number) {
    const times = this.#times;
    const ids = this.#ids;
    let i = times.length;
    times.push(time);
    ids.push(id);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (times[parent]! <= time) break;
      times[i] = times[parent]!;
      ids[i] = ids[parent]!;
      i = parent;
    }
    times[i] = time;
    ids[i] = id;
  }
  pop(): number {
    const times = this.#times;
    const ids = this.#ids;
    const top = ids[0]!;
    const lastTime = times.pop()!;
    const lastId = ids.pop()!;
    if (times.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= times.length) break;
        const r = l + 1;
        const c = r < times.length && times[r]! < times[l]! ? r : l;
        if (times[c]! >= lastTime) break;
        times[i] = times[c]!;
        ids[i] = ids[c]!;
        i = c;
      }
      times[i] = lastTime;
      ids[i] = lastId;
    }
    return top;
  }
}

interface Result {
  name: string;
  latencies: number[][];
  /** Per second: completions; limit sampled every 100 ms. */
  completed: number[];
  limits: [number, number][];
}

function baseAt(t: number) {
  return t < STEP_AT_MS ? BASE_BEFORE_MS : BASE_AFTER_MS;
}

function simulate(limiter: Limiter, random: () => number): Result {
  const heap = new Heap();
  // Requests by id: arrival time, token, service time.
  const arrival: number[] = [];
  const tokens: unknown[] = [];
  const queue: number[] = [];
  let queueHead = 0;
  let busy = 0;
  let inflight = 0;
  const buckets = Math.ceil(END_MS / BUCKET_MS);
  const latencies: number[][] = Array.from({ length: buckets }, () => []);
  const limits: [number, number][] = [];
  let nextSample = 0;
  let now = 0;
  let nextArrival = 0;
  const serve = (id: number) => {
    busy++;
    // Service time: the base latency ±10%.
    heap.push(now + baseAt(now) * (0.9 + 0.2 * random()), id);
  };
  while (now < END_MS) {
    if (heap.size > 0 && heap.peek() <= nextArrival) {
      now = heap.peek();
      const id = heap.pop();
      busy--;
      inflight--;
      const rtt = now - arrival[id]!;
      limiter.release(tokens[id], now, rtt);
      tokens[id] = undefined;
      latencies[Math.min(buckets - 1, Math.floor(now / BUCKET_MS))]!.push(rtt);
      if (queueHead < queue.length) serve(queue[queueHead++]!);
    } else {
      now = nextArrival;
      const capacityPerMs = SERVERS / baseAt(now);
      nextArrival = now - Math.log(1 - random()) / (capacityPerMs * OVERLOAD);
      const token = limiter.tryAcquire(now, inflight);
      if (token === null) continue;
      const id = arrival.length;
      arrival.push(now);
      tokens.push(token);
      inflight++;
      if (busy < SERVERS) serve(id);
      else queue.push(id);
    }
    while (nextSample <= now) {
      limits.push([nextSample, limiter.limit]);
      nextSample += 100;
    }
  }
  return { name: limiter.name, latencies, completed: latencies.map((l) => l.length), limits };
}

/** Per-second optimum: every server busy all the time. */
function optimalAt(second: number) {
  return (SERVERS / baseAt(second * BUCKET_MS)) * BUCKET_MS;
}

/** Seconds from `from` until goodput stays ≥ 95% of optimal for 5 s in a row. */
function settleTime(r: Result, from: number, to: number): number | null {
  let run = 0;
  for (let s = from; s < to; s++) {
    const good = r.completed[s]! >= 0.95 * optimalAt(s);
    run = good ? run + 1 : 0;
    if (run === 5) return s - 4 - from;
  }
  return null;
}

function summarize(r: Result) {
  const step = STEP_AT_MS / BUCKET_MS;
  const end = END_MS / BUCKET_MS;
  const sum = (a: number[], from: number, to: number) => a.slice(from, to).reduce((x, y) => x + y, 0);
  const goodput = (from: number, to: number) => {
    let optimal = 0;
    for (let s = from; s < to; s++) optimal += optimalAt(s);
    return (100 * sum(r.completed, from, to)) / optimal;
  };
  const p99Of = (from: number, to: number) => {
    const all = r.latencies
      .slice(from, to)
      .flat()
      .sort((a, b) => a - b);
    return all[Math.floor(all.length * 0.99)] ?? Infinity;
  };
  const converge = settleTime(r, 0, step);
  const relearn = settleTime(r, step, end);
  return {
    algorithm: r.name,
    'goodput % (all)': Number(goodput(0, end).toFixed(1)),
    'goodput % steady 10ms': Number(goodput(step - 20, step).toFixed(1)),
    'goodput % steady 50ms': Number(goodput(end - 30, end).toFixed(1)),
    'p99/RTT steady 10ms': Number((p99Of(step - 20, step) / BASE_BEFORE_MS).toFixed(2)),
    'p99/RTT steady 50ms': Number((p99Of(end - 30, end) / BASE_AFTER_MS).toFixed(2)),
    'converge s': converge ?? 'never',
    're-learn s': relearn ?? 'never',
  };
}

function svg(results: Result[]): string {
  const width = 900;
  const height = 420;
  const pad = { left: 60, right: 20, top: 30, bottom: 50 };
  const maxLimit = Math.min(250, Math.max(...results.flatMap((r) => r.limits.map(([, l]) => l))));
  const x = (t: number) => pad.left + (t / END_MS) * (width - pad.left - pad.right);
  const y = (l: number) => height - pad.bottom - (Math.min(l, maxLimit) / maxLimit) * (height - pad.top - pad.bottom);
  const colors = ['#d62728', '#7f7f7f', '#1f77b4', '#2ca02c'];
  const lines = results.map((r, i) => {
    const points = r.limits.map(([t, l]) => `${x(t).toFixed(1)},${y(l).toFixed(1)}`).join(' ');
    return `<polyline fill="none" stroke="${colors[i % colors.length]}" stroke-width="1.5" points="${points}"/>`;
  });
  const legend = results.map(
    (r, i) =>
      `<text x="${pad.left + 10 + i * 210}" y="${pad.top - 10}" fill="${colors[i % colors.length]}" font-size="13">${escape(r.name)}</text>`,
  );
  const yTicks = [0, 0.25, 0.5, 0.75, 1].map((f) => {
    const l = Math.round(f * maxLimit);
    return `<line x1="${pad.left}" x2="${width - pad.right}" y1="${y(l)}" y2="${y(l)}" stroke="#eee"/><text x="${pad.left - 8}" y="${y(l) + 4}" text-anchor="end" font-size="11">${l}</text>`;
  });
  const xTicks = Array.from({ length: END_MS / 20_000 + 1 }, (_, i) => i * 20_000).map(
    (t) => `<text x="${x(t)}" y="${height - pad.bottom + 18}" text-anchor="middle" font-size="11">${t / 1000}s</text>`,
  );
  const capacity = `<line x1="${pad.left}" x2="${width - pad.right}" y1="${y(SERVERS)}" y2="${y(SERVERS)}" stroke="#000" stroke-dasharray="4 4"/><text x="${width - pad.right}" y="${y(SERVERS) - 4}" text-anchor="end" font-size="11">capacity ${SERVERS}</text>`;
  const step = `<line x1="${x(STEP_AT_MS)}" x2="${x(STEP_AT_MS)}" y1="${pad.top}" y2="${height - pad.bottom}" stroke="#999" stroke-dasharray="2 3"/><text x="${x(STEP_AT_MS) + 4}" y="${pad.top + 14}" font-size="11">base latency 10 ms → 50 ms</text>`;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    ...yTicks,
    ...xTicks,
    capacity,
    step,
    ...lines,
    ...legend,
    `<text x="${width / 2}" y="${height - 10}" text-anchor="middle" font-size="12">simulated time; concurrency limit (clipped at ${maxLimit})</text>`,
    '</svg>',
    '',
  ].join('\n');
}

function escape(text: string): string {
  return text.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

function main() {
  const makers: ((random: () => number) => Limiter)[] = [
    () => new HavocLimiter(),
    () => new StaticBulkhead(),
    () => new ResileRule(),
    (random) => new NetflixVegas(random),
  ];
  const results = makers.map((make) => {
    const random = mulberry32(SEED); // the same traffic for every algorithm
    const limiterRandom = mulberry32(SEED + 1);
    return simulate(make(limiterRandom), random);
  });
  const rows = results.map(summarize);
  console.log(
    `downstream: ${SERVERS} servers, base latency ${BASE_BEFORE_MS} ms → ${BASE_AFTER_MS} ms at ${STEP_AT_MS / 1000} s, offered load ${OVERLOAD}× capacity, ${END_MS / 1000} s simulated, seed ${SEED}`,
  );
  console.table(rows);
  const out = path.join(__dirname, '..', '..', 'bench-results');
  mkdirSync(out, { recursive: true });
  writeFileSync(path.join(out, 'limiter-sim.json'), JSON.stringify(rows, null, 2));
  writeFileSync(path.join(out, 'limiter-sim.svg'), svg(results));
  console.log(`plot: ${path.join(out, 'limiter-sim.svg')}`);
}

main();
