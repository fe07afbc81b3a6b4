import { ACTION_TYPE_NAMES, ACTION_TYPES, type ActionTypeSpec, type Level } from './catalog';
import type { PolicyDocument } from './document';

/** Months between reviews of the active policy (the seed's six-month cadence). */
export const REVIEW_CADENCE_MONTHS = 6;

/**
 * Version 1 of every new org: the default Trust Level table, the company policy's
 * forbidden areas, and the guard rails it asks for ("if this misfires 100 times").
 */
export function seedPolicy(): PolicyDocument {
  const baseline: Record<string, Level> = {};
  for (const action of ACTION_TYPE_NAMES) baseline[action] = (ACTION_TYPES[action] as ActionTypeSpec).default;
  return {
    baseline,
    rules: [
      {
        id: 'org.calendar-invites-others',
        scope: { type: 'org' },
        actions: ['calendar.create'],
        level: 'watched',
        when: { invitesOthers: true },
        reason: 'the event invites people other than you',
      },
      {
        id: 'org.email-external',
        scope: { type: 'org' },
        actions: ['email.draft', 'email.send'],
        level: 'watched',
        when: { recipients: 'external' },
        reason: 'email to an external domain',
      },
      {
        id: 'org.tainted-outbound',
        scope: { type: 'org' },
        // Every outbound action a policy could free (those Watched or Forbidden by default too: a group's rule cannot lower
        // them for a tainted task). Not model.invoke: what a task sends to the model cannot wait for a person.
        actions: ['email.draft', 'email.send', 'file.create', 'file.update', 'file.delete', 'drive.create', 'drive.update', 'chat.send', 'calendar.create', 'saas.write', 'git.push', 'hr.write', 'contract.send', 'data.egress_pii', 'unknown'],
        level: 'watched',
        when: { tainted: true },
        reason: 'the task has read untrusted content (possible prompt injection)',
        // A guard: no group, workflow or person rule lowers it.
        guard: true,
      },
      {
        id: 'org.model-personal-data',
        scope: { type: 'org' },
        actions: ['model.invoke'],
        level: 'autonomous',
        when: { labels: ['pii'] },
        reason: 'personal data is redacted before it reaches the model',
        obligations: ['redact_personal_data'],
      },
    ],
    rateLimits: [
      {
        id: 'rl.file-delete',
        actions: ['file.delete'],
        max: 20,
        per: 'hour',
        by: 'user',
        then: 'forbidden',
        reason: 'more than 20 deletions in an hour',
      },
      {
        id: 'rl.email-send',
        actions: ['email.send'],
        max: 50,
        per: 'hour',
        by: 'user',
        then: 'forbidden',
        reason: 'more than 50 emails sent in an hour',
      },
    ],
    approvals: [],
    forbiddenAreas: [
      { id: 'fa.payments', actions: ['payment.execute'], reason: 'payments, billing and transfers stay off agents' },
      { id: 'fa.hr-payroll', actions: ['hr.write'], reason: 'writes to HR or payroll data stay off agents' },
      { id: 'fa.contracts', actions: ['contract.send'], reason: 'sending contracts with legal consequence stays off agents' },
      { id: 'fa.pii-egress', actions: ['data.egress_pii'], reason: 'customer personal data is not sent to external APIs' },
      {
        id: 'fa.pii-external-write',
        actions: ['saas.write', 'chat.send'],
        when: { labels: ['pii'], recipients: 'external' },
        reason: 'customer personal data is not sent outside the org',
      },
    ],
  };
}
