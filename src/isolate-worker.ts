// Entry of the worker thread behind `isolate: true` (see ./isolate.ts).
import { parentPort, workerData } from 'node:worker_threads';
import { Registry } from 'prom-client';
import { serveControlPlane, type LiveFigures } from './control-plane.js';
import { Engine } from './engine.js';
import { serializeError, type IsolatedJob, type MainMessage, type WorkerMessage } from './isolate.js';
import { watchConfig } from './watch.js';

if (parentPort === null) throw new Error('isolate-worker.js runs only as a worker thread');
const port = parentPort;
const job = workerData as IsolatedJob;
const send = (message: WorkerMessage): void => port.postMessage(message);
// The worker's own registry is never exported: counts are reported to the application thread.
// The same overrides as the application's engine, so an update made here means the same.
const engine = new Engine({ name: job.set, warmupMs: job.warmupMs, registry: new Registry() });

async function main(): Promise<() => Promise<void> | void> {
  if (job.kind === 'control-plane') {
    let ids = 0;
    const pending = new Map<number, (reply: { text: string; contentType: string }) => void>();
    const pendingLive = new Map<number, (figures: LiveFigures) => void>();
    port.on('message', (message: MainMessage) => {
      if (message.type === 'metrics') {
        pending.get(message.id)?.(message);
        pending.delete(message.id);
      } else if (message.type === 'live') {
        pendingLive.get(message.id)?.(message.figures);
        pendingLive.delete(message.id);
      }
    });
    const plane = await serveControlPlane(engine, job, {
      metrics: () =>
        new Promise((resolve) => {
          ids += 1;
          pending.set(ids, resolve);
          send({ type: 'metrics', id: ids });
        }),
      countReload: (result) => send({ type: 'reload', source: 'api', result }),
      live: () =>
        new Promise((resolve) => {
          ids += 1;
          pendingLive.set(ids, resolve);
          send({ type: 'live', id: ids });
        }),
    });
    send({ type: 'ready', url: plane.url });
    return () => plane.close();
  }
  const watcher = watchConfig(engine, job.path, {
    ...(job.debounceMs === undefined ? {} : { debounceMs: job.debounceMs }),
    onReload: (config) => {
      send({ type: 'reload', source: 'file', result: 'success' });
      send({ type: 'reloaded', config });
    },
    onError: (error) => {
      send({ type: 'reload', source: 'file', result: 'error' });
      send({ type: 'error', error: serializeError(error) });
    },
  });
  send({ type: 'ready' });
  return () => watcher.close();
}

main().then(
  (close) => {
    port.on('message', (message: MainMessage) => {
      if (message.type === 'close') void Promise.resolve(close()).finally(() => port.close());
    });
  },
  (error: unknown) => {
    send({ type: 'failed', error: serializeError(error) });
    port.close();
  },
);
