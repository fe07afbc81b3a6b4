import { createHmac } from 'node:crypto';
import { DEFAULT_INCIDENT_SETTINGS, escalationTargets, signIncidentWebhook } from './incidents';

describe('incident escalation targets and webhook signatures', () => {
  const s = (chain: string[], executive: string | null) => ({ ...DEFAULT_INCIDENT_SETTINGS, escalation_chain: chain, executive_user_id: executive });

  it('escalates through the chain in order, then to the executive, skipping the owner and repeats', () => {
    expect(escalationTargets(s(['a', 'b'], 'cto'), 'owner')).toEqual([
      { userId: 'a', role: 'contact' },
      { userId: 'b', role: 'contact' },
      { userId: 'cto', role: 'executive' },
    ]);
    expect(escalationTargets(s(['owner', 'a', 'a'], 'a'), 'owner')).toEqual([{ userId: 'a', role: 'contact' }]);
    expect(escalationTargets(s([], null), null)).toEqual([]);
    expect(escalationTargets(s([], 'cto'), 'cto')).toEqual([]);
  });

  it('signs "<t>.<body>" with HMAC-SHA-256 of the secret', () => {
    const body = '{"event":"incident.escalated"}';
    expect(signIncidentWebhook('k', 1700000000, body)).toBe(`t=1700000000,v1=${createHmac('sha256', 'k').update(`1700000000.${body}`).digest('hex')}`);
    expect(signIncidentWebhook('k', 1700000000, body)).not.toBe(signIncidentWebhook('k2', 1700000000, body));
    expect(signIncidentWebhook('k', 1700000000, body)).not.toBe(signIncidentWebhook('k', 1700000001, body));
  });
});
