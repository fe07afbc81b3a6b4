import { newId } from '@steward/common';
import { type EntityManager, PolicyVersion } from '@steward/db';
import { REVIEW_CADENCE_MONTHS, seedPolicy } from '@steward/policy';

export function reviewDue(from: Date): Date {
  const due = new Date(from);
  due.setUTCMonth(due.getUTCMonth() + REVIEW_CADENCE_MONTHS);
  return due;
}

/** A new org starts with the seed default table as version 1, active. Runs in the org's own transaction. */
export async function provisionPolicy(em: EntityManager, orgId: string, authorId: string): Promise<PolicyVersion> {
  const now = new Date();
  const version = em.create(PolicyVersion, {
    id: newId(),
    orgId,
    version: 1,
    status: 'active',
    document: seedPolicy() as unknown as Record<string, unknown>,
    note: 'Seed policy: the default Trust Level table and the company policy template',
    authorId,
    basedOn: null,
    activatedAt: now,
    activatedBy: authorId,
    archivedAt: null,
    reviewDueAt: reviewDue(now),
  });
  await em.save(version);
  return version;
}
