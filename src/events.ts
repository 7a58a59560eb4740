// `GET /havoc/events`: the console's live feed as Server-Sent Events. One hub per control plane
// samples the set while at least one client listens — its state (on every change, checked every
// 250 ms) and its live figures (every second) — and writes the same frames to every client.
// Bounded: at most MAX_EVENT_CLIENTS at once, a client whose unread output passes
// MAX_UNREAD_BYTES is dropped, a comment every HEARTBEAT_MS keeps idle proxies from cutting the
// stream, and closing the control plane ends every stream.
import type { ServerResponse } from 'node:http';

/** Streams open at once; one more gets a 503. */
export const MAX_EVENT_CLIENTS = 16;
/** A comment line this often, whatever else is sent. */
export const HEARTBEAT_MS = 15_000;
/** How often the set's version and halt flag are compared with the last `state` sent. */
const STATE_CHECK_MS = 250;
/** How often a `live` frame (fault counts, sabotage, limiters) is sent. */
const LIVE_MS = 1_000;
/** A client that reads slower than the feed is written is closed past this much buffered output. */
const MAX_UNREAD_BYTES = 1024 * 1024;
/** Reconnection delay the client is told to use. */
const RETRY_MS = 2_000;

/** What the hub reads from the control plane. */
export interface EventSource {
  /** A change marker of the set (version and halt flag): a new `state` is sent when it moves. */
  mark(): string;
  state(): unknown;
  live(): Promise<unknown>;
}

export interface EventHub {
  /** Takes over `res` as an event stream; false (nothing written) when the hub is full. */
  open(res: ServerResponse, headers: Record<string, string>): boolean;
  /** Ends every stream and stops sampling. */
  close(): void;
  readonly clients: number;
}

export function eventHub(source: EventSource): EventHub {
  const clients = new Set<ServerResponse>();
  let timers: NodeJS.Timeout[] = [];
  let lastMark = '';
  let liveBusy = false;
  let closed = false;

  const frame = (event: string, data: unknown): string => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;

  const write = (res: ServerResponse, text: string): void => {
    if (res.destroyed || res.writableEnded) return;
    if (res.writableLength > MAX_UNREAD_BYTES) {
      res.destroy();
      return;
    }
    res.write(text);
  };
  const broadcast = (text: string): void => {
    for (const res of clients) write(res, text);
  };

  const stateFrame = (): string => {
    lastMark = source.mark();
    return frame('state', source.state());
  };
  const sendLive = async (only?: ServerResponse): Promise<void> => {
    if (liveBusy && only === undefined) return;
    if (only === undefined) liveBusy = true;
    try {
      const text = frame('live', await source.live());
      if (only === undefined) broadcast(text);
      else write(only, text);
    } catch {
      // A failed sample is skipped; the next tick tries again.
    } finally {
      if (only === undefined) liveBusy = false;
    }
  };

  const start = (): void => {
    timers = [
      setInterval(() => {
        try {
          if (source.mark() !== lastMark) broadcast(stateFrame());
        } catch {
          // The engine was closed under the control plane: nothing to report.
        }
      }, STATE_CHECK_MS),
      setInterval(() => void sendLive(), LIVE_MS),
      setInterval(() => broadcast(`: heartbeat ${Date.now()}\n\n`), HEARTBEAT_MS),
    ];
    for (const timer of timers) timer.unref();
  };
  const stop = (): void => {
    for (const timer of timers) clearInterval(timer);
    timers = [];
  };

  return {
    get clients() {
      return clients.size;
    },
    open(res, headers) {
      if (closed || clients.size >= MAX_EVENT_CLIENTS) return false;
      res.writeHead(200, {
        ...headers,
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        'x-accel-buffering': 'no',
        connection: 'keep-alive',
      });
      res.socket?.setNoDelay(true);
      clients.add(res);
      res.on('close', () => {
        clients.delete(res);
        if (clients.size === 0) stop();
      });
      // Every client begins with the whole picture; the others' `lastMark` stays theirs. The
      // mark is read before the state, so a change in between is sent again, never missed.
      write(res, `retry: ${RETRY_MS}\n\n`);
      if (clients.size === 1) start();
      try {
        if (clients.size === 1) lastMark = source.mark();
        write(res, frame('state', source.state()));
      } catch (error) {
        write(res, frame('error', { error: error instanceof Error ? error.message : String(error) }));
      }
      void sendLive(res);
      return true;
    },
    close() {
      closed = true;
      stop();
      for (const res of clients) res.end();
      clients.clear();
    },
  };
}
