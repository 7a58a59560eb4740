/** Reading a config file: at most the size limit, and UTF-8 only, refused with where and why. */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

import { ConfigError } from '../errors.js';
import { errorMessage, formatSize, positionAt } from './position.js';
import type { Position } from './position.js';
import { MAX_CONFIG_BYTES } from './text.js';

/** Reads at most the limit plus one byte, from one open file: no race between stat and read. */
export function readConfigFile(path: string): string {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    throw new ConfigError([{ path: '', message: `cannot open config file: ${errorMessage(error)}` }], path, { cause: error });
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new ConfigError([{ path: '', message: 'config path is not a regular file' }], path);
    if (stat.size > MAX_CONFIG_BYTES) {
      throw new ConfigError(
        [{ path: '', message: `config file is too large: ${formatSize(stat.size)}; the limit is 5 MiB (${MAX_CONFIG_BYTES} bytes)` }],
        path,
      );
    }
    // One byte more than the limit: a file that grew after fstat is caught, not truncated.
    const buffer = Buffer.allocUnsafe(MAX_CONFIG_BYTES + 1);
    let length = 0;
    while (length < buffer.length) {
      const n = readSync(fd, buffer, length, buffer.length - length, null);
      if (n === 0) break;
      length += n;
    }
    if (length > MAX_CONFIG_BYTES) {
      throw new ConfigError(
        [{ path: '', message: `config file is too large: it grew past the 5 MiB limit (${MAX_CONFIG_BYTES} bytes) while being read` }],
        path,
      );
    }
    return decodeUtf8(buffer.subarray(0, length), path);
  } finally {
    closeSync(fd);
  }
}

const BYTE_ORDER_MARKS: readonly [bytes: readonly number[], encoding: string][] = [
  [[0xff, 0xfe, 0x00, 0x00], 'UTF-32 LE'],
  [[0x00, 0x00, 0xfe, 0xff], 'UTF-32 BE'],
  [[0xff, 0xfe], 'UTF-16 LE'],
  [[0xfe, 0xff], 'UTF-16 BE'],
];

/** UTF-8, with or without a byte order mark; anything else is refused with where and why. */
function decodeUtf8(bytes: Uint8Array, path: string): string {
  const refuse = (message: string, at?: number, cause?: unknown): never => {
    const position = at === undefined ? {} : bytePosition(bytes, at);
    throw new ConfigError([{ path: '', ...position, message }], path, cause === undefined ? undefined : { cause });
  };
  const mark = BYTE_ORDER_MARKS.find(([bom]) => bom.length <= bytes.length && bom.every((b, i) => bytes[i] === b));
  if (mark) {
    refuse(`config file is ${mark[1]} text (it starts with the byte order mark ${hexBytes(mark[0])}); save it as UTF-8`);
  }
  const nul = bytes.indexOf(0);
  if (nul !== -1) {
    // Text editors never write NUL; UTF-16 without a byte order mark has one in every other byte.
    refuse('config file contains a NUL byte: it is binary, or UTF-16 text without a byte order mark; save it as UTF-8', nul);
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (error) {
    const bad = firstInvalidUtf8(bytes);
    return refuse(
      `config file is not valid UTF-8 text (invalid byte ${hexBytes(bytes.subarray(bad, bad + 1))}); save it as UTF-8`,
      bad,
      error,
    );
  }
}

/** Offset of the first byte that does not start a well-formed UTF-8 sequence. */
function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const [length, low, high] = utf8Lead(bytes[i] ?? 0);
    if (length === 0 || i + length > bytes.length) return i;
    for (let k = 1; k < length; k += 1) {
      const next = bytes[i + k] ?? 0;
      // The second byte's range excludes overlong forms and surrogates; later ones are 80–BF.
      if (next < (k === 1 ? low : 0x80) || next > (k === 1 ? high : 0xbf)) return i;
    }
    i += length;
  }
  return bytes.length;
}

/** Length of the sequence a lead byte starts, and the range of its second byte (RFC 3629); length 0: not a lead byte. */
function utf8Lead(b: number): [length: number, low: number, high: number] {
  if (b < 0x80) return [1, 0, 0];
  if (b >= 0xc2 && b <= 0xdf) return [2, 0x80, 0xbf];
  if (b === 0xe0) return [3, 0xa0, 0xbf];
  if (b === 0xed) return [3, 0x80, 0x9f];
  if (b >= 0xe1 && b <= 0xef) return [3, 0x80, 0xbf];
  if (b === 0xf0) return [4, 0x90, 0xbf];
  if (b >= 0xf1 && b <= 0xf3) return [4, 0x80, 0xbf];
  if (b === 0xf4) return [4, 0x80, 0x8f];
  return [0, 0, 0];
}

function hexBytes(bytes: ArrayLike<number>): string {
  return Array.from(bytes, (b) => b.toString(16).toUpperCase().padStart(2, '0')).join(' ');
}

/** Line and column (UTF-16 units, as everywhere) of a byte offset into valid-UTF-8-so-far bytes. */
function bytePosition(bytes: Uint8Array, offset: number): Position {
  const before = new TextDecoder('utf-8').decode(bytes.subarray(0, offset));
  return positionAt(before, before.length);
}
