import { canonical } from '@steward/audit';
import { decisionInputs } from './replay';

describe('decisionInputs', () => {
  const facts = {
    amount: null,
    groups: ['g1'],
    hosts: ['api.example'],
    invitesOthers: false,
    labels: ['pii'],
    rateExceeded: [],
    recipientDomains: ['partner.example'],
    recipientScope: 'external',
    // Strings that look like structure: quotes, brackets, braces and the key names themselves.
    resources: ['/a/"facts":{"amount":1}/b]', 'c\\\\"}],"ruleIds":["x"]', '"noReversibleForm":true'],
    tainted: true,
    user: 'u1',
    workflow: 'w"1}',
  };

  it('cuts the recorded facts, rule ids and flags out of a canonical event exactly', () => {
    const event = { action: 'email.send', v: 1, policy: 7, payload: { actionId: 'a', decided: 'watched', facts, labels: ['pii'], mcp: { session: ']"ruleIds":[' }, rateLimited: [], ruleIds: ['org.email-external', 'floor.email.send'], tool: 'gmail.send' } };
    expect(decisionInputs(canonical(event))).toEqual({ facts, ruleIds: ['org.email-external', 'floor.email.send'], noReversibleForm: false });
    const flagged = { ...event, payload: { ...event.payload, noReversibleForm: true } };
    expect(decisionInputs(canonical(flagged))?.noReversibleForm).toBe(true);
  });

  it('finds nothing in an event written before the gate recorded its inputs', () => {
    expect(decisionInputs(canonical({ action: 'file.read', payload: { ruleIds: ['catalog.file.read'] }, policy: 1 }))).toBeNull();
  });
});
