import type { ConnectorManifest } from '@steward/connectors';
import { exposedToolNames, toolNameOf } from './agent-loop';

const manifest = (...tools: string[]) => ({ tools: tools.map((name) => ({ name })) }) as unknown as ConnectorManifest;

describe('the names a model or an MCP client sees for connector tools', () => {
  it('are the connector and the tool, characters a name may not hold replaced', () => {
    const names = exposedToolNames({ 'google-calendar': manifest('calendar.list_events', 'calendar.create_event') });
    expect(names.get('google-calendar\ncalendar.list_events')).toBe('google-calendar__calendar_list_events');
    expect(names.get('google-calendar\ncalendar.create_event')).toBe(toolNameOf('google-calendar', 'calendar.create_event'));
  });

  it('never stand for two tools: tools that would share a name (replaced characters, or cut at 64) get distinct ones', () => {
    const long = 'x'.repeat(70);
    const names = exposedToolNames({ mail: manifest('send_mail', 'send.mail', `${long}a`, `${long}b`), 'mail-archive': manifest('send.mail') });
    const all = [...names.values()];
    expect(names.size).toBe(5);
    expect(new Set(all).size).toBe(5);
    for (const n of all) expect(n).toMatch(/^[a-zA-Z0-9_-]{1,64}$/);
    // A tool whose name needed no change keeps it (one added upstream cannot take it); the same set listed in another order gets the same names.
    expect(names.get('mail\nsend_mail')).toBe('mail__send_mail');
    expect(names.get('mail\nsend.mail')).toMatch(/^mail__send_mail_[0-9a-f]{8}$/);
    expect(exposedToolNames({ 'mail-archive': manifest('send.mail'), mail: manifest(`${long}b`, `${long}a`, 'send.mail', 'send_mail') })).toEqual(names);
  });
});
