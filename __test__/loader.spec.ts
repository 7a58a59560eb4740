import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';

// The package root, from build/__test__/.
const root = path.join(__dirname, '..', '..');
const version = (require(path.join(root, 'package.json')) as { version: string }).version;

/** A copy of the loader and its package.json alone: no platform package, no local build. */
function bareInstall(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'havoc-loader-'));
  copyFileSync(path.join(root, 'index.js'), path.join(dir, 'index.js'));
  copyFileSync(path.join(root, 'package.json'), path.join(dir, 'package.json'));
  return dir;
}

/** Requires the loader in a fresh process; returns the error it threw as JSON. */
function loadError(dir: string): { code?: string; message: string } {
  const script = `try { require(${JSON.stringify(path.join(dir, 'index.js'))}); console.log('null'); } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }`;
  return JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' })) as { code?: string; message: string };
}

const glibc = Boolean((process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header?.glibcVersionRuntime);
const platform =
  process.platform === 'linux'
    ? `linux-${process.arch}-${glibc ? 'gnu' : 'musl'}`
    : process.platform === 'win32'
      ? `win32-${process.arch}-msvc`
      : `${process.platform}-${process.arch}`;

test('without a binary the loader throws one error naming the platform, the package and the way out', (t) => {
  const dir = bareInstall();
  try {
    const error = loadError(dir);
    t.is(error.code, 'HAVOC_NO_NATIVE_BINARY');
    t.true(error.message.includes(`(${platform}, Node ${process.version})`), error.message);
    t.true(error.message.includes(`"havoc-${platform}" (an optional dependency of havoc@${version})`), error.message);
    t.true(error.message.includes(`havoc.${platform}.node`));
    t.regex(error.message, /--omit=optional/);
    t.regex(error.message, /Build from source/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a platform package of another version is refused with the versions named', (t) => {
  const dir = bareInstall();
  try {
    const pkg = path.join(dir, 'node_modules', `havoc-${platform}`);
    mkdirSync(pkg, { recursive: true });
    writeFileSync(path.join(pkg, 'package.json'), JSON.stringify({ name: `havoc-${platform}`, version: '0.0.1', main: 'binding.js' }));
    writeFileSync(path.join(pkg, 'binding.js'), 'module.exports = {};');
    const error = loadError(dir);
    t.is(error.code, 'HAVOC_NO_NATIVE_BINARY');
    t.true(error.message.includes(`havoc-${platform}@0.0.1 is installed, but havoc@${version} needs the same version`), error.message);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the installed platform package is taken before a local build', (t) => {
  const dir = bareInstall();
  try {
    const pkg = path.join(dir, 'node_modules', `havoc-${platform}`);
    mkdirSync(pkg, { recursive: true });
    writeFileSync(path.join(pkg, 'package.json'), JSON.stringify({ name: `havoc-${platform}`, version, main: 'binding.js' }));
    writeFileSync(path.join(pkg, 'binding.js'), "module.exports = { from: 'package' };");
    writeFileSync(path.join(dir, `havoc.${platform}.node`), 'not a binary: loading it would throw');
    const out = execFileSync(process.execPath, ['-e', `console.log(require(${JSON.stringify(path.join(dir, 'index.js'))}).from)`], {
      encoding: 'utf8',
    });
    t.is(out.trim(), 'package');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
