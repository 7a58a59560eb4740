import test from 'ava';
import * as cjs from 'havoc';

test('the package loads from ESM and CommonJS as one module', async (t) => {
  const esm = (await import('havoc')) as typeof cjs & { default: typeof cjs };
  t.is(esm.Engine, cjs.Engine);
  t.is(esm.default.Engine, cjs.Engine);
  t.is(typeof esm.normalizeSql, 'function');
  t.is(typeof esm.parseConfig, 'function');
});
