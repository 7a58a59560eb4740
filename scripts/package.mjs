// `npm run package`: builds the release addon and the TypeScript, then writes into package-out/
// every tarball a release publishes that this machine can build — the main package and the
// platform package of each binary built here (npm/<platform>/, one per napi target) — and
// checks their sizes. Other platforms are built by .github/workflows/release.yml, which packs
// their binaries with `node scripts/package.mjs --no-build`.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const out = join(root, 'package-out');
const LIMITS = { main: 300 * 1024, platform: 3 * 1024 * 1024 };
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const run = (args, cwd) => execFileSync(npm, args, { cwd, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });

// --no-build: pack what is there (the release workflow brings binaries built elsewhere).
if (!process.argv.includes('--no-build')) {
  console.log('== build (release addon, TypeScript)');
  execFileSync(npm, ['run', 'build'], { cwd: root, stdio: 'inherit' });
}

rmSync(out, { recursive: true, force: true });
mkdirSync(out);
const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const built = readdirSync(root).filter((f) => /^havoc\..+\.node$/.test(f));
if (built.length === 0) throw new Error('no havoc.<platform>.node was built');

const tarballs = [];
const pack = (dir, kind, extra = []) => {
  const [{ filename }] = JSON.parse(run(['pack', '--json', '--pack-destination', out, ...extra], dir));
  const bytes = statSync(join(out, filename)).size;
  tarballs.push({ filename, kind, bytes });
};

for (const file of built) {
  const platform = file.slice('havoc.'.length, -'.node'.length);
  const dir = join(root, 'npm', platform);
  if (!existsSync(join(dir, 'package.json'))) throw new Error(`npm/${platform}/package.json is missing (napi create-npm-dirs)`);
  const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  if (manifest.version !== version) throw new Error(`npm/${platform} is at ${manifest.version}, the package at ${version}`);
  copyFileSync(join(root, file), join(dir, file));
  pack(dir, 'platform');
}
// The root's `prepare` already ran above; --ignore-scripts keeps pack from building again.
pack(root, 'main', ['--ignore-scripts']);

let over = false;
for (const { filename, kind, bytes } of tarballs) {
  const limit = LIMITS[kind];
  const flag = bytes > limit ? `  OVER the ${limit / 1024} KiB limit` : '';
  over ||= bytes > limit;
  console.log(`${filename.padEnd(36)} ${kind.padEnd(8)} ${(bytes / 1024).toFixed(1).padStart(8)} KiB${flag}`);
}
process.exitCode = over ? 1 : 0;
