// One member of the fleet benchmark, in its own process: joined to the fleet channel, and
// subscribed with a plain ioredis connection to the baseline channel. It reports, over IPC,
// the wall-clock instant (performance.timeOrigin + now: comparable across processes) at which
// each fleet version was applied and each baseline message arrived.
import { Redis } from 'ioredis';
import { Engine, joinFleet } from 'havoc';

const [url, channel, rawChannel, name] = process.argv.slice(2) as [string, string, string, string];
const now = (): number => performance.timeOrigin + performance.now();

async function main(): Promise<void> {
  const engine = new Engine({ name: `fleet-bench-${name}` });
  const fleet = joinFleet(engine, { redis: url, channel, member: name, onApply: (version) => process.send!({ version, at: now() }) });
  const raw = new Redis(url);
  raw.on('message', (_channel: string, message: string) => process.send!({ raw: Number(message), at: now() }));
  await raw.subscribe(rawChannel);
  await fleet.ready;
  process.send!({ ready: true });
  process.on('message', (message) => {
    if (message !== 'close') return;
    raw.disconnect();
    void fleet.close().then(() => process.exit(0));
  });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
