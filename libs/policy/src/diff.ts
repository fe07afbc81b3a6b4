import type { PolicyDocument } from './document';

export interface PolicyChange {
  /** Where: "baseline.email.send", "rules[org.email-external].level", ... */
  path: string;
  kind: 'added' | 'removed' | 'changed';
  before?: unknown;
  after?: unknown;
}

const SECTIONS = ['rules', 'rateLimits', 'approvals', 'forbiddenAreas'] as const;

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

/** A structural diff: by action type for the baseline, by id and field for everything else. */
export function diffPolicies(a: PolicyDocument, b: PolicyDocument): PolicyChange[] {
  const changes: PolicyChange[] = [];
  for (const key of [...new Set([...Object.keys(a.baseline), ...Object.keys(b.baseline)])].sort()) {
    const x = a.baseline[key];
    const y = b.baseline[key];
    if (x === y) continue;
    changes.push({ path: `baseline.${key}`, kind: x === undefined ? 'added' : y === undefined ? 'removed' : 'changed', before: x, after: y });
  }
  for (const section of SECTIONS) {
    const left = new Map((a[section] as { id: string }[]).map((r) => [r.id, r as Record<string, unknown>]));
    const right = new Map((b[section] as { id: string }[]).map((r) => [r.id, r as Record<string, unknown>]));
    for (const id of [...new Set([...left.keys(), ...right.keys()])].sort()) {
      const x = left.get(id);
      const y = right.get(id);
      if (!x) changes.push({ path: `${section}[${id}]`, kind: 'added', after: y });
      else if (!y) changes.push({ path: `${section}[${id}]`, kind: 'removed', before: x });
      else {
        for (const field of [...new Set([...Object.keys(x), ...Object.keys(y)])].sort()) {
          if (canonical(x[field]) !== canonical(y[field])) {
            changes.push({ path: `${section}[${id}].${field}`, kind: x[field] === undefined ? 'added' : y[field] === undefined ? 'removed' : 'changed', before: x[field], after: y[field] });
          }
        }
      }
    }
  }
  return changes;
}
