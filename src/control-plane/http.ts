// The HTTP plumbing of the control plane: errors as JSON, request targets and bodies, the
// browser-origin checks, and the headers every response carries.
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import { parseConfig } from '../config.js';
import native = require('../native.js');
import { CONSOLE_HEADERS, type consoleAsset } from '../console.js';
import { parseDuration } from '../duration.js';
import { ConfigError } from '../errors.js';
import type { Config } from '../types.js';

/** Largest body accepted (pastaay's webhook limit). */
export const MAX_BODY_BYTES = 1024 * 1024;
/** Shortest: a lease below a millisecond reverts before its response is written. */
const MIN_TTL_MS = 1;
/** An HTTP error answered as `{ "error": message, ...extra }`. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly extra: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1' || host === '[::1]') return true;
  return isIP(host) === 4 && host.startsWith('127.');
}

/**
 * The request target as a URL. Origin-form (`/havoc/state?ttl=1s`) is read as a path even when
 * it starts with `//`, which `new URL(target, base)` would take for a host; absolute-form
 * (`http://host/havoc/state`) is accepted as HTTP/1.1 requires; anything else is a 400.
 */
export function requestUrl(req: IncomingMessage): URL {
  const target = req.url ?? '/';
  try {
    if (target.startsWith('/')) return new URL(`http://control${target}`);
    const url = new URL(target);
    if (url.protocol === 'http:' || url.protocol === 'https:') return url;
  } catch {
    // answered below
  }
  req.resume();
  throw new HttpError(400, `bad request target: ${JSON.stringify(target.length > 100 ? `${target.slice(0, 97)}...` : target)}`);
}

/**
 * Requests that node's HTTP parser refuses (malformed, headers too large, too slow) get the
 * same JSON error body as the rest, unless part of a response was already written.
 */
export function answerClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
  const inFlight = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage;
  if (error.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent === true) {
    socket.destroy();
    return;
  }
  const status = CLIENT_ERROR_STATUS[error.code ?? ''] ?? 400;
  const message =
    status === 408
      ? 'request not received in time'
      : status === 431
        ? 'request headers too large'
        : `malformed request (${error.code ?? 'parse error'})`;
  const text = JSON.stringify({ error: message });
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\n` +
      `cache-control: no-store\r\nconnection: close\r\n\r\n${text}`,
  );
}

const CLIENT_ERROR_STATUS: Readonly<Record<string, number>> = {
  HPE_HEADER_OVERFLOW: 431,
  ERR_HTTP_REQUEST_TIMEOUT: 408,
  HPE_CHUNK_EXTENSIONS_OVERFLOW: 413,
};

/** `localhost`, `127.0.0.1:7070`, `[::1]:7070` → whether the host part is a loopback name. */
function loopbackHost(host: string): boolean {
  const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.split(':')[0]!;
  return isLoopback(name.toLowerCase());
}

/**
 * Why a request that a browser made for another site is refused, if it is. A browser sends
 * `Origin` with every cross-origin call: one that is not this server's own origin is another
 * site's page (a simple POST needs no preflight, so without a token it would halt or roll
 * back). Without a token, the `Host` must also be a loopback name: a page that had its own name
 * re-pointed at 127.0.0.1 (DNS rebinding) is same-origin with the server but names its own host.
 * Clients other than browsers (curl, the CLI, Node's fetch) send neither and are not affected.
 */
export function browserRefusal(req: IncomingMessage, tokenless: boolean): string | undefined {
  const host = req.headers.host ?? '';
  const origin = req.headers.origin;
  if (origin !== undefined && origin !== `http://${host}` && origin !== `https://${host}`)
    return `cross-origin request refused (Origin ${JSON.stringify(origin.slice(0, 100))} is not this control plane)`;
  if (tokenless && host !== '' && !loopbackHost(host))
    return `without a token the control plane answers only requests for a loopback host (got Host ${JSON.stringify(host.slice(0, 100))}); set a token to reach it by another name`;
  return undefined;
}

/** The path of a request target, `''` when it is not one (the router answers those). */
export function requestPath(req: IncomingMessage): string {
  const target = req.url ?? '/';
  const end = target.search(/[?#]/);
  return target.startsWith('/') ? (end === -1 ? target : target.slice(0, end)) : '';
}

/** Headers of every response but the console's files: no sniffing, no framing. */
export const API_HEADERS: Readonly<Record<string, string>> = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
};

export function sendAsset(res: ServerResponse, method: string, asset: ReturnType<typeof consoleAsset>): void {
  if (asset === null || asset === undefined) {
    sendJson(res, 404, { error: 'the console is not built: run `npm run build:ts`' });
    return;
  }
  res.writeHead(200, { ...CONSOLE_HEADERS, 'content-type': asset.contentType, 'content-length': asset.body.length });
  res.end(method === 'HEAD' ? undefined : asset.body);
}

export function asHttpError(error: unknown): HttpError {
  if (error instanceof ConfigError) return new HttpError(422, error.message, { issues: error.issues });
  return new HttpError(500, error instanceof Error ? error.message : String(error));
}

export function ttlOf(url: URL): number | undefined {
  const ttl = url.searchParams.get('ttl');
  if (ttl === null) return undefined;
  let ms: number;
  try {
    ms = parseDuration(ttl);
  } catch (error) {
    throw new HttpError(400, `ttl: ${(error as Error).message}`);
  }
  if (!(ms >= MIN_TTL_MS && ms <= native.MAX_LEASE_MS))
    throw new HttpError(400, `ttl must be at least 1ms and at most 24h (got ${JSON.stringify(ttl)})`);
  return ms;
}

const CONFIG_TYPES: Readonly<Record<string, 'json' | 'yaml'>> = {
  'application/json': 'json',
  'application/yaml': 'yaml',
  'application/x-yaml': 'yaml',
  'text/yaml': 'yaml',
  'text/x-yaml': 'yaml',
};

/** Reads a YAML or JSON config body: 415 for another type, 413 past the limit (unparsed), 422 when invalid. */
export async function readConfig(req: IncomingMessage): Promise<Config> {
  const mediaType = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  const format = CONFIG_TYPES[mediaType];
  if (format === undefined) {
    req.resume();
    throw new HttpError(
      415,
      `a config body must be sent as application/json or application/yaml (got ${mediaType === '' ? 'no content type' : JSON.stringify(mediaType)})`,
    );
  }
  const text = await readBody(req);
  try {
    return parseConfig(text, { format, source: 'request body' });
  } catch (error) {
    throw asHttpError(error);
  }
}

function tooLarge(size: string): HttpError {
  return new HttpError(413, `body too large: ${size}; the limit is ${MAX_BODY_BYTES} bytes (1 MiB)`, {}, { connection: 'close' });
}

function readBody(req: IncomingMessage): Promise<string> {
  const declared = Number(req.headers['content-length']);
  if (declared > MAX_BODY_BYTES) {
    req.resume();
    return Promise.reject(tooLarge(`${declared} bytes`));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    req.on('data', (chunk: Buffer) => {
      if (refused) return;
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        // Stop keeping data at once; the rest is read and discarded so the client gets the 413.
        refused = true;
        chunks.length = 0;
        reject(tooLarge(`more than ${MAX_BODY_BYTES} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (!refused) resolve(Buffer.concat(chunks).toString('utf8'));
    });
    req.on('error', reject);
  });
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const text = JSON.stringify(body);
  res
    .writeHead(status, {
      ...headers,
      ...API_HEADERS,
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
      'cache-control': 'no-store',
    })
    .end(text);
}
