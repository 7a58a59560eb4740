// Loads havoc's native addon: the platform package npm installed (`havoc-<platform>`, an
// optional dependency chosen by os/cpu/libc), else a locally built `havoc.<platform>.node`
// (a clone after `npm install`), else one error that says what was looked for and what to do.
'use strict';

const { existsSync, readFileSync } = require('node:fs');
const { join } = require('node:path');

const { version } = require('./package.json');

/** The platforms a release publishes a binary for (package.json `napi.targets`). */
const SUPPORTED = [
  'linux-x64-gnu',
  'linux-x64-musl',
  'linux-arm64-gnu',
  'linux-arm64-musl',
  'darwin-x64',
  'darwin-arm64',
  'win32-x64-msvc',
];

function isMusl() {
  // glibc reports its version in the process report; musl has none.
  try {
    const { header } = process.report.getReport();
    return !header.glibcVersionRuntime;
  } catch {
    try {
      return readFileSync('/usr/bin/ldd', 'utf8').includes('musl');
    } catch {
      return false;
    }
  }
}

function platformKey() {
  const { platform, arch } = process;
  if (platform === 'linux') return `linux-${arch}-${isMusl() ? 'musl' : 'gnu'}`;
  if (platform === 'win32') return `win32-${arch}-msvc`;
  return `${platform}-${arch}`;
}

function load() {
  const key = platformKey();
  const packageName = `havoc-${key}`;
  const failures = [];
  try {
    const binding = require(packageName);
    const installed = require(`${packageName}/package.json`).version;
    if (installed !== version) {
      throw new Error(`${packageName}@${installed} is installed, but havoc@${version} needs the same version: reinstall havoc`);
    }
    return binding;
  } catch (error) {
    if (error.code !== 'MODULE_NOT_FOUND' || !String(error.message).includes(packageName)) failures.push(error);
  }
  const local = join(__dirname, `havoc.${key}.node`);
  if (existsSync(local)) {
    try {
      return require(local);
    } catch (error) {
      failures.push(error);
    }
  }
  const lines = [
    `havoc has no native binary for this platform (${key}, Node ${process.version}).`,
    `It looked for the package "${packageName}" (an optional dependency of havoc@${version}) and for a local build ${local}.`,
    SUPPORTED.includes(key)
      ? `"${packageName}" should have been installed with havoc: reinstall without --omit=optional / --no-optional, and do not copy node_modules between platforms.`
      : `Prebuilt binaries exist for ${SUPPORTED.join(', ')}.`,
    'To build from source: clone the repository, then `npm install` (needs a Rust toolchain; see "Build from source" in the README).',
    ...failures.map((error) => `Loading failed: ${error.message}`),
  ];
  const error = new Error(lines.join('\n'));
  error.code = 'HAVOC_NO_NATIVE_BINARY';
  if (failures.length > 0) error.cause = failures[0];
  throw error;
}

module.exports = load();
