import { randomUUID } from 'node:crypto';
import type { EventStore } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';

/**
 * The events of one gateway session, kept so a client whose SSE stream broke can resume it
 * (Last-Event-ID). Bounded in count and in bytes (tool results can be large): the oldest events
 * are dropped past `max` events or `maxBytes` of serialised messages, whichever comes first.
 */
export class SessionEventStore implements EventStore {
  private readonly events = new Map<string, { streamId: string; message: JSONRPCMessage; bytes: number }>();
  private bytes = 0;

  constructor(
    private readonly max = 1000,
    private readonly maxBytes = 8 * 1024 * 1024,
  ) {}

  async storeEvent(streamId: string, message: JSONRPCMessage): Promise<string> {
    const id = `${streamId}_${Date.now().toString(36)}_${randomUUID().slice(0, 8)}`;
    const bytes = Buffer.byteLength(JSON.stringify(message));
    this.events.set(id, { streamId, message, bytes });
    this.bytes += bytes;
    // The newest event stays even when it alone is over the bytes bound (its stream may still need it).
    while (this.events.size > 1 && (this.events.size > this.max || this.bytes > this.maxBytes)) {
      const [oldest, e] = this.events.entries().next().value!;
      this.events.delete(oldest);
      this.bytes -= e.bytes;
    }
    return id;
  }

  /** What the store holds now (events, bytes of their messages). */
  size(): { events: number; bytes: number } {
    return { events: this.events.size, bytes: this.bytes };
  }

  async getStreamIdForEventId(eventId: string): Promise<string | undefined> {
    return this.events.get(eventId)?.streamId;
  }

  async replayEventsAfter(lastEventId: string, { send }: { send: (eventId: string, message: JSONRPCMessage) => Promise<void> }): Promise<string> {
    const last = this.events.get(lastEventId);
    if (!last) return '';
    let after = false;
    for (const [id, e] of this.events) {
      if (id === lastEventId) {
        after = true;
        continue;
      }
      // A priming event (an id and no data, stored as {}) is a resume point, not a message to replay.
      if (after && e.streamId === last.streamId && Object.keys(e.message).length) await send(id, e.message);
    }
    return last.streamId;
  }
}
