// The web console's files: a fixed list of static assets (the page, its scripts and styles, the
// bundled uPlot), copied into dist/console/ at build time by scripts/console-assets.mjs and
// served by the control plane at /havoc/console without the token (the page holds no data;
// every API call it makes needs the token). Nothing is read from a path a request names: only
// the names below exist, and each is read once.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Where the console is served. */
export const CONSOLE_PATH = '/havoc/console';

/**
 * Headers of every console asset: scripts, styles, images and connections only from the
 * control plane itself, no inline script or style, never framed, no content sniffing.
 */
export const CONSOLE_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'same-origin',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'cache-control': 'no-cache',
};

/** File name in dist/console/ → content type. `index.html` is served at {@link CONSOLE_PATH} itself. */
const ASSETS: Readonly<Record<string, string>> = {
  'index.html': 'text/html; charset=utf-8',
  'console.css': 'text/css; charset=utf-8',
  'console.js': 'text/javascript; charset=utf-8',
  'api.js': 'text/javascript; charset=utf-8',
  'dom.js': 'text/javascript; charset=utf-8',
  'panels.js': 'text/javascript; charset=utf-8',
  'chart.js': 'text/javascript; charset=utf-8',
  'editor.js': 'text/javascript; charset=utf-8',
  'uPlot.iife.min.js': 'text/javascript; charset=utf-8',
  'uPlot.min.css': 'text/css; charset=utf-8',
  'uPlot.LICENSE': 'text/plain; charset=utf-8',
};

export interface ConsoleAsset {
  body: Buffer;
  contentType: string;
}

const cache = new Map<string, ConsoleAsset | null>();

/**
 * The asset a request path names (`/havoc/console`, `/havoc/console/`, `/havoc/console/<file>`),
 * or `undefined` when it names none. `null`: a known asset missing from the build (the package
 * was built without `npm run build:ts`).
 */
export function consoleAsset(pathname: string): ConsoleAsset | null | undefined {
  let file: string;
  if (pathname === CONSOLE_PATH || pathname === `${CONSOLE_PATH}/`) file = 'index.html';
  else if (pathname.startsWith(`${CONSOLE_PATH}/`)) file = pathname.slice(CONSOLE_PATH.length + 1);
  else return undefined;
  if (!Object.hasOwn(ASSETS, file) || (file === 'index.html' && pathname.endsWith('index.html'))) return undefined;
  if (!cache.has(file)) {
    let body: Buffer | null;
    try {
      body = readFileSync(join(__dirname, 'console', file));
    } catch {
      body = null;
    }
    cache.set(file, body === null ? null : { body, contentType: ASSETS[file]! });
  }
  return cache.get(file);
}
