// Live reload of the file layer. The directory is watched, not the file: editors replace the
// file by renaming a new one over it, `sed -i` does the same, a Kubernetes ConfigMap swaps a
// `..data` symlink, and a deleted file may come back much later — a watch on the file itself
// would lose it in every one of those cases. Any event in the directory (debounced) leads to
// one read; the layer is updated only when the text changed.
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { dirname, extname, resolve } from 'node:path';
import { parseConfig } from './config.js';
import { FILE_LAYER, type Engine } from './engine.js';
import { ConfigError, HavocError } from './errors.js';
import type { Config } from './types.js';

/** Options of {@link watchConfig}. */
export interface WatchOptions {
  /** Called after each successful reload with the new layer. */
  onReload?: (config: Config) => void;
  /** Called when a reload is refused (a `ConfigError`) or the file cannot be read; the last good set keeps running. */
  onError?: (error: Error) => void;
  /** Quiet time before a burst of changes is read, in ms. Default 100. */
  debounceMs?: number;
  /** Watch, read and parse in a worker thread (same native policy set); see `ready`. */
  isolate?: boolean;
}

export interface ConfigWatcher {
  /** Settles once the file was first read (at once, unless `isolate`); rejects if watching cannot start. */
  ready: Promise<void>;
  close(): void;
}

const DEFAULT_DEBOUNCE_MS = 100;

/** How `isolate: true` watches from a worker thread. */
export type IsolatedWatch = (engine: Engine, path: string, options: WatchOptions) => ConfigWatcher;

// Dependencies run one way: ./isolate.ts runs this module in a worker, so it imports this
// module, never the reverse. It hands its watcher in when it loads (src/index.ts loads it,
// so `isolate: true` works for everyone who imports the package).
let isolatedWatch: IsolatedWatch | undefined;

/** Called by ./isolate.ts when it loads: how `isolate: true` is watched. */
export function provideIsolatedWatch(watch: IsolatedWatch): void {
  isolatedWatch = watch;
}

/**
 * Keeps `engine`'s file layer equal to the file at `path`. Applies the file now unless the
 * set already has a file layer (as after `new Engine({ config: path })`).
 */
export function watchConfig(engine: Engine, path: string, options: WatchOptions = {}): ConfigWatcher {
  if (options.isolate) {
    if (isolatedWatch === undefined)
      throw new HavocError("isolate: true is wired by havoc's package entry: import 'havoc', not its internal modules");
    return isolatedWatch(engine, path, options);
  }
  const file = resolve(path);
  const format = extname(file).toLowerCase() === '.json' ? 'json' : 'yaml';
  const debounceMs = options.debounceMs ?? DEFAULT_DEBOUNCE_MS;
  if (!(Number.isFinite(debounceMs) && debounceMs >= 0))
    throw new TypeError(`debounceMs must be a non-negative number (got ${String(debounceMs)})`);
  const reloads = engine.metrics.configReloads;
  /** The text the layer was last built from (or refused), so that unrelated events cost one read. */
  let lastText: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;

  const report = (error: Error): void => {
    reloads.labels('file', 'error').inc();
    options.onError?.(error);
  };

  const reload = (): void => {
    timer = undefined;
    if (closed) return;
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      // Absent for now (mid-save, or deleted): the running set stays until the file is back.
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      report(new HavocError(`cannot read ${file}: ${(error as Error).message}`, { cause: error }));
      return;
    }
    if (text === lastText) return;
    lastText = text;
    try {
      const config = parseConfig(text, { format, source: path });
      engine.applyLayer(FILE_LAYER, config);
      reloads.labels('file', 'success').inc();
      options.onReload?.(config);
    } catch (error) {
      if (error instanceof ConfigError) report(error.source === undefined ? new ConfigError(error.issues, path) : error);
      else report(error as Error);
    }
  };

  const schedule = (): void => {
    if (closed) return;
    clearTimeout(timer);
    timer = setTimeout(reload, debounceMs);
  };

  const hasFileLayer = engine.state().layers.some((layer) => layer.name === FILE_LAYER);
  if (hasFileLayer) {
    try {
      lastText = readFileSync(file, 'utf8');
    } catch {
      lastText = undefined;
    }
  } else {
    reload();
  }

  let watcher: FSWatcher;
  try {
    // Every event counts, not only those naming the file: a ConfigMap update names `..data`,
    // some platforms give no name at all. An unrelated change costs one read.
    watcher = watch(dirname(file), { persistent: false }, schedule);
  } catch (error) {
    throw new HavocError(`cannot watch the directory of ${file}: ${(error as Error).message}`, { cause: error });
  }
  watcher.on('error', (error) => report(new HavocError(`watching ${dirname(file)} failed: ${error.message}`, { cause: error })));

  return {
    ready: Promise.resolve(),
    close(): void {
      closed = true;
      clearTimeout(timer);
      watcher.close();
    },
  };
}
