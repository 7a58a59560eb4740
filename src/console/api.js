// The console's calls to the control plane. The token is typed once, kept in sessionStorage (this
// tab only, gone when it closes) and sent as a header on every call; never in a URL, never in a
// cookie, so another site cannot make the browser send it. The event stream is read with fetch
// (EventSource cannot send headers).

const KEY = 'havoc.token';

export const token = {
  get: () => sessionStorage.getItem(KEY) ?? '',
  set: (value) => (value === '' ? sessionStorage.removeItem(KEY) : sessionStorage.setItem(KEY, value)),
};

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

function headers(extra = {}) {
  const value = token.get();
  return value === '' ? extra : { ...extra, authorization: `Bearer ${value}` };
}

/** A JSON call: resolves to the body, rejects with an ApiError carrying the `{ error }` body. */
export async function call(method, path, body, contentType) {
  const init = { method, headers: headers(body === undefined ? {} : { 'content-type': contentType }), cache: 'no-store' };
  if (body !== undefined) init.body = body;
  const res = await fetch(path, init);
  const text = await res.text();
  let parsed = null;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = { error: text };
  }
  if (!res.ok) throw new ApiError(res.status, parsed?.error ?? `${res.status}`, parsed);
  return parsed;
}

/**
 * Reads `GET /havoc/events` until it ends or `signal` aborts, calling `onEvent(name, data)` for
 * each frame. Resolves when the stream ends; rejects with an ApiError when refused.
 */
export async function stream(path, onEvent, signal) {
  const res = await fetch(path, { headers: headers({ accept: 'text/event-stream' }), cache: 'no-store', signal });
  if (!res.ok) {
    let message = `${res.status}`;
    try {
      message = (await res.json()).error ?? message;
    } catch {
      // not JSON
    }
    throw new ApiError(res.status, message);
  }
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf('\n\n')) !== -1) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = 'message';
      const data = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) event = line.slice(7);
        else if (line.startsWith('data: ')) data.push(line.slice(6));
      }
      if (data.length > 0) onEvent(event, JSON.parse(data.join('\n')));
    }
  }
}
