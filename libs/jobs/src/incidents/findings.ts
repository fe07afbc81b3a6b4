import type { EntityManager } from 'typeorm';
import type { AuditKeyring } from '@steward/audit';
import type { Finding } from '@steward/oversight';
import { openIncident, systemIncidentAudit } from './incidents';

/**
 * What a scheduled anomaly report does with its high-severity findings: one incident each (source
 * `finding`, idempotent per report and finding), in the report's transaction, with the finding's
 * evidence and baseline; the incident then escalates like any other.
 */
export function incidentsForFindings(keyring: AuditKeyring) {
  return async (em: EntityManager, o: { orgId: string; reportId: string; findings: Finding[]; now: Date }): Promise<void> => {
    for (const [i, f] of o.findings.entries()) {
      await openIncident(
        em,
        {
          orgId: o.orgId,
          title: `Anomaly: ${f.title}`.slice(0, 200),
          description: `Found by the monthly anomaly report ${o.reportId} (${f.kind}). Baseline: ${f.baseline.description}.`.slice(0, 4000),
          severity: 'high',
          source: 'finding',
          sourceRef: `${o.reportId}:${i}`,
          subjectUserId: f.subject.type === 'user' ? f.subject.id : null,
          actionType: f.action ?? null,
          evidence: { reportId: o.reportId, kind: f.kind, subject: f.subject, observed: f.observed, baseline: f.baseline, eventIds: f.evidence.eventIds },
          now: o.now,
        },
        systemIncidentAudit(o.orgId, keyring, o.now),
      );
    }
  };
}
