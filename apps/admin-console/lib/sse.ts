'use client';

import { rawFetch } from './client';

export interface SseEvent {
  id: string | null;
  event: string;
  data: string;
}

/**
 * Reads a server-sent event stream through the console's proxy (fetch, not EventSource, so the
 * request goes through the same client code and its errors are readable). Calls `onEvent` per
 * event; resolves when the server closes the stream (the task stopped or waits for a person).
 */
export async function readSse(path: string, onEvent: (e: SseEvent) => void, signal: AbortSignal): Promise<void> {
  const res = await rawFetch(path, { headers: { accept: 'text/event-stream' }, signal });
  if (!res.ok || !res.body) throw new Error(`The event stream answered HTTP ${res.status}.`);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buffer += value;
    let cut: number;
    while ((cut = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let id: string | null = null;
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const val = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'id') id = val;
        else if (field === 'event') event = val;
        else if (field === 'data') data.push(val);
      }
      if (data.length) onEvent({ id, event, data: data.join('\n') });
    }
  }
}
