// `isolate: true`: the control plane or the config watcher runs in a worker thread, attached
// to the same native policy set, so that its parsing and traffic never stall the
// application's event loop. Metrics stay in the application thread's registry: the worker
// asks for them and reports its reloads by message.
//
// Dependencies run one way: this module imports the control plane and the watcher (the
// worker runs them) and, when loaded, hands them its starters for their `isolate` option;
// they never import it. src/index.ts imports it for that effect.
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { register as defaultRegistry } from 'prom-client';
import {
  liveFigures,
  provideIsolatedControlPlane,
  type ControlPlane,
  type ControlPlaneOptions,
  type LiveFigures,
} from './control-plane.js';
import type { Engine } from './engine.js';
import { ConfigError, HavocError, type ConfigIssue } from './errors.js';
import type { Config } from './types.js';
import { provideIsolatedWatch, type ConfigWatcher, type WatchOptions } from './watch.js';

/** What the worker is told to run. */
export type IsolatedJob =
  | { kind: 'control-plane'; set: string; warmupMs?: number; host?: string; port?: number; token?: string }
  | { kind: 'watch'; set: string; warmupMs?: number; path: string; debounceMs?: number };

/** Messages from the worker. */
export type WorkerMessage =
  | { type: 'ready'; url?: string }
  | { type: 'failed'; error: SerializedError }
  | { type: 'metrics'; id: number }
  | { type: 'live'; id: number }
  | { type: 'reload'; source: 'api' | 'file'; result: 'success' | 'error' }
  | { type: 'reloaded'; config: Config }
  | { type: 'error'; error: SerializedError };

/** Messages to the worker. */
export type MainMessage =
  | { type: 'metrics'; id: number; text: string; contentType: string }
  | { type: 'live'; id: number; figures: LiveFigures }
  | { type: 'close' };

export interface SerializedError {
  name: string;
  message: string;
  issues?: ConfigIssue[];
  source?: string;
}

export function serializeError(error: unknown): SerializedError {
  if (error instanceof ConfigError)
    return {
      name: error.name,
      message: error.message,
      issues: error.issues,
      ...(error.source === undefined ? {} : { source: error.source }),
    };
  if (error instanceof Error) return { name: error.name, message: error.message };
  return { name: 'Error', message: String(error) };
}

function deserializeError(error: SerializedError): Error {
  if (error.issues !== undefined) return new ConfigError(error.issues, error.source);
  return new HavocError(error.message);
}

function spawn(job: IsolatedJob): Worker {
  return new Worker(join(__dirname, 'isolate-worker.js'), { workerData: job });
}

function closeWorker(worker: Worker): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => void worker.terminate(), 2000);
    worker.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    worker.postMessage({ type: 'close' } satisfies MainMessage);
  });
}

export const isolated = {
  async controlPlane(engine: Engine, options: ControlPlaneOptions): Promise<ControlPlane> {
    const registry = options.registry ?? defaultRegistry;
    const worker = spawn({
      kind: 'control-plane',
      set: engine.name,
      warmupMs: engine.warmupMs,
      host: options.host,
      port: options.port,
      token: options.token,
    });
    const url = await new Promise<string>((resolve, reject) => {
      worker.on('error', reject);
      worker.on('message', (message: WorkerMessage) => {
        switch (message.type) {
          case 'ready':
            resolve(message.url ?? '');
            break;
          case 'failed':
            reject(deserializeError(message.error));
            void worker.terminate();
            break;
          case 'metrics':
            engine.refreshMetrics();
            void registry
              .metrics()
              .then((text) =>
                worker.postMessage({ type: 'metrics', id: message.id, text, contentType: registry.contentType } satisfies MainMessage),
              );
            break;
          case 'live':
            void liveFigures(engine, registry).then((figures) =>
              worker.postMessage({ type: 'live', id: message.id, figures } satisfies MainMessage),
            );
            break;
          case 'reload':
            engine.metrics.configReloads.labels(message.source, message.result).inc();
            engine.refreshMetrics();
            break;
          default:
            break;
        }
      });
    });
    return { url, close: () => closeWorker(worker) };
  },

  watch(engine: Engine, path: string, options: WatchOptions): ConfigWatcher {
    const worker = spawn({ kind: 'watch', set: engine.name, warmupMs: engine.warmupMs, path, debounceMs: options.debounceMs });
    worker.unref();
    let settle: (error?: Error) => void = () => undefined;
    const ready = new Promise<void>((resolve, reject) => {
      settle = (error) => (error ? reject(error) : resolve());
    });
    worker.on('error', (error) => {
      settle(error);
      options.onError?.(error);
    });
    worker.on('message', (message: WorkerMessage) => {
      switch (message.type) {
        case 'ready':
          settle();
          break;
        case 'failed':
          settle(deserializeError(message.error));
          break;
        case 'reload':
          engine.metrics.configReloads.labels(message.source, message.result).inc();
          engine.refreshMetrics();
          break;
        case 'reloaded':
          options.onReload?.(message.config);
          break;
        case 'error':
          options.onError?.(deserializeError(message.error));
          break;
        default:
          break;
      }
    });
    return { ready, close: () => void closeWorker(worker) };
  },
};

provideIsolatedControlPlane(isolated.controlPlane);
provideIsolatedWatch(isolated.watch);
