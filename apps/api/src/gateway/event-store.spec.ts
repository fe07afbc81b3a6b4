import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { SessionEventStore } from './event-store';

const result = (id: number, text: string): JSONRPCMessage => ({ jsonrpc: '2.0', id, result: { content: [{ type: 'text', text }] } });

describe('SessionEventStore', () => {
  it('keeps at most `maxBytes` of messages: the oldest go first, and a stream resumes with what is left', async () => {
    const store = new SessionEventStore(1000, 10_000);
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) ids.push(await store.storeEvent('s1', result(i, 'x'.repeat(2_000))));
    const { events, bytes } = store.size();
    expect(bytes).toBeLessThanOrEqual(10_000);
    expect(events).toBe(4);
    // The dropped ones cannot be resumed from; a kept one replays what came after it on its stream.
    expect(await store.getStreamIdForEventId(ids[0]!)).toBeUndefined();
    const replayed: string[] = [];
    expect(await store.replayEventsAfter(ids[7]!, { send: async (id) => void replayed.push(id) })).toBe('s1');
    expect(replayed).toEqual([ids[8], ids[9]]);
  });

  it('keeps at most `max` events, and a single event larger than the bound until the next one comes', async () => {
    const store = new SessionEventStore(3, 1_000);
    const big = await store.storeEvent('s1', result(1, 'y'.repeat(5_000)));
    expect(store.size().events).toBe(1);
    expect(await store.getStreamIdForEventId(big)).toBe('s1');
    for (let i = 0; i < 5; i++) await store.storeEvent('s2', result(i, 'z'));
    expect(store.size().events).toBe(3);
    expect(await store.getStreamIdForEventId(big)).toBeUndefined();
  });
});
