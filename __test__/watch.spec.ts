import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { Registry } from 'prom-client';
import { ConfigError, Engine, watchConfig, type Config } from 'havoc';
import { metricValue, setName } from './fixtures/http.js';

function yaml(name: string, chance = 1): string {
  return `version: 1\npolicies:\n  - name: ${name}\n    type: http\n    target: /x\n    error_chance: ${chance}\n`;
}

/** A temp directory, an engine on a fresh set, and a watcher whose events can be awaited. */
function setup(t: { teardown(fn: () => void): void }, initial: string | null, options: { engineReadsFile?: boolean } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'havoc-watch-'));
  const file = join(dir, 'havoc.yaml');
  if (initial !== null) writeFileSync(file, initial);
  const engine = new Engine({ name: setName('watch'), registry: new Registry(), ...(options.engineReadsFile ? { config: file } : {}) });
  const reloads: Config[] = [];
  const errors: Error[] = [];
  let wake: () => void = () => undefined;
  const watcher = watchConfig(engine, file, {
    debounceMs: 50,
    onReload: (config) => {
      reloads.push(config);
      wake();
    },
    onError: (error) => {
      errors.push(error);
      wake();
    },
  });
  t.teardown(() => {
    watcher.close();
    rmSync(dir, { recursive: true, force: true });
  });
  /** Resolves after the next reload or error (or rejects after `ms`). */
  const next = (ms = 5000) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no reload within ${ms} ms`)), ms);
      wake = () => {
        clearTimeout(timer);
        wake = () => undefined;
        resolve();
      };
    });
  const names = () => engine.policies().map((p) => p.name);
  return { dir, file, engine, reloads, errors, next, names };
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('applies the file at start and picks up an in-place write', async (t) => {
  const w = setup(t, yaml('first'));
  t.deepEqual(w.names(), ['first']);
  const reloaded = w.next();
  writeFileSync(w.file, yaml('second'));
  await reloaded;
  t.deepEqual(w.names(), ['second']);
  t.is(await metricValue(w.engine.metrics.configReloads, { source: 'file', result: 'success' }), 2);
});

test('picks up an editor rename-on-save', async (t) => {
  const w = setup(t, yaml('first'));
  const reloaded = w.next();
  writeFileSync(join(w.dir, '.havoc.yaml.swp'), yaml('saved'));
  renameSync(join(w.dir, '.havoc.yaml.swp'), w.file);
  await reloaded;
  t.deepEqual(w.names(), ['saved']);
  // The watch survives the replaced inode.
  const again = w.next();
  writeFileSync(join(w.dir, 'tmp'), yaml('saved-again'));
  renameSync(join(w.dir, 'tmp'), w.file);
  await again;
  t.deepEqual(w.names(), ['saved-again']);
});

test('picks up sed -i', async (t) => {
  const w = setup(t, yaml('before'));
  const reloaded = w.next();
  execFileSync('sed', ['-i', 's/name: before/name: after/', w.file]);
  await reloaded;
  t.deepEqual(w.names(), ['after']);
});

test('picks up a Kubernetes ConfigMap ..data symlink swap', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'havoc-configmap-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, '..2024_01'));
  writeFileSync(join(dir, '..2024_01', 'havoc.yaml'), yaml('v1'));
  symlinkSync('..2024_01', join(dir, '..data'));
  symlinkSync(join('..data', 'havoc.yaml'), join(dir, 'havoc.yaml'));
  const engine = new Engine({ name: setName('configmap'), registry: new Registry() });
  let reloaded: () => void = () => undefined;
  const watcher = watchConfig(engine, join(dir, 'havoc.yaml'), { debounceMs: 50, onReload: () => reloaded() });
  t.teardown(() => watcher.close());
  t.deepEqual(
    engine.policies().map((p) => p.name),
    ['v1'],
  );
  // What the kubelet does: new timestamped dir, new symlink, atomic rename over ..data.
  const done = new Promise<void>((resolve) => (reloaded = resolve));
  mkdirSync(join(dir, '..2024_02'));
  writeFileSync(join(dir, '..2024_02', 'havoc.yaml'), yaml('v2'));
  symlinkSync('..2024_02', join(dir, '..data_tmp'));
  renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
  rmSync(join(dir, '..2024_01'), { recursive: true });
  await done;
  t.deepEqual(
    engine.policies().map((p) => p.name),
    ['v2'],
  );
});

test('survives delete-then-recreate seconds later; the set keeps running meanwhile', async (t) => {
  const w = setup(t, yaml('original'));
  unlinkSync(w.file);
  await pause(1500);
  t.deepEqual(w.names(), ['original']);
  t.deepEqual(w.errors, []);
  const reloaded = w.next();
  writeFileSync(w.file, yaml('recreated'));
  await reloaded;
  t.deepEqual(w.names(), ['recreated']);
});

test('a burst of 50 writes is one reload', async (t) => {
  const w = setup(t, yaml('start'));
  const reloaded = w.next();
  for (let i = 0; i < 50; i += 1) writeFileSync(w.file, yaml(`burst-${i}`));
  await reloaded;
  await pause(300);
  t.is(w.reloads.length, 2, 'the initial load and one reload');
  t.deepEqual(w.names(), ['burst-49']);
});

test('a bad file keeps the last good set, reports a ConfigError with its position and counts it', async (t) => {
  const w = setup(t, yaml('good'));
  const failed = w.next();
  writeFileSync(w.file, yaml('bad').replace('error_chance', 'error_chanse'));
  await failed;
  t.deepEqual(w.names(), ['good']);
  const error = w.errors[0];
  t.true(error instanceof ConfigError);
  t.regex(error!.message, /havoc\.yaml:6:5 policies\[0\]\.error_chanse: unknown key `error_chanse`; did you mean `error_chance`\?/);
  t.is(await metricValue(w.engine.metrics.configReloads, { source: 'file', result: 'error' }), 1);
  // Fixing the file recovers.
  const fixed = w.next();
  writeFileSync(w.file, yaml('fixed'));
  await fixed;
  t.deepEqual(w.names(), ['fixed']);
});

test('new Engine({ config: path }) and watchConfig share one file layer', async (t) => {
  const w = setup(t, yaml('from-constructor'), { engineReadsFile: true });
  t.is(w.reloads.length, 0, 'the layer was already loaded');
  t.is(w.engine.state().layers.length, 1);
  const reloaded = w.next();
  writeFileSync(w.file, yaml('from-watcher'));
  await reloaded;
  t.deepEqual(
    w.engine.state().layers.map((l) => [l.name, l.config.policies[0]?.name]),
    [['file', 'from-watcher']],
  );
});

test('an update that conflicts with another layer is refused like a bad file', async (t) => {
  const w = setup(t, yaml('mine'));
  w.engine.applyLayer('api', {
    version: 1,
    enableDefaultIgnored: true,
    ignoredCommands: {},
    policies: [{ ...w.engine.policies()[0]!, name: 'theirs' }],
  });
  const failed = w.next();
  writeFileSync(w.file, yaml('theirs'));
  await failed;
  t.regex(w.errors[0]!.message, /policy "theirs" of layer "file" is already defined in layer "api"/);
  t.deepEqual(w.names().sort(), ['mine', 'theirs']);
});
