import type { DataSource, EntityManager } from 'typeorm';
import { inOrg } from '@steward/db';
import { type GenerateOptions, generateActivity, type GeneratedApproval, type GeneratedEvent, type GeneratedOrgPlan, type GeneratedTask, type GenerationResult, planOrg } from './generate';
import { ORG_DOMAIN, TEAMS, teamOf } from './model';

/**
 * Writes a generated org through the real schema: the org, its people (users, memberships, roles,
 * groups), workflows, the active policy, the tasks with their model cost, the audit events (COPY,
 * a batch per transaction) and the confirmed violations. Returns the plan (people, planted
 * anomalies, the planted draft) and what a replay must find.
 */
export interface GeneratedOrg extends GeneratedOrgPlan, GenerationResult {}

const BATCH = 20_000;
const EMPTY = Buffer.alloc(0);
const ZEROS = '0'.repeat(64);

/** Multi-row INSERTs (COPY is refused under row-level security), a few thousand parameters each. */
async function insertRows(em: EntityManager, table: string, columns: string[], rows: unknown[][], casts: string[] = []): Promise<void> {
  const per = Math.max(1, Math.floor(8000 / columns.length));
  for (let i = 0; i < rows.length; i += per) {
    const chunk = rows.slice(i, i + per);
    const values = chunk.map((_, j) => `(${columns.map((__, k) => `$${j * columns.length + k + 1}${casts[k] ?? ''}`).join(', ')})`).join(', ');
    await em.query(`INSERT INTO ${table} (${columns.join(', ')}) VALUES ${values}`, chunk.flat());
  }
}

export async function writeGeneratedOrg(ds: DataSource, options: GenerateOptions): Promise<GeneratedOrg> {
  const plan = planOrg(options);
  const orgId = plan.orgId;
  const created = new Date(plan.start.getTime() - 30 * 86_400_000);
  await inOrg(ds, { orgId }, async (em) => {
    await em.query(`INSERT INTO orgs (id, name, slug, domains, created_at) VALUES ($1, 'Acme Corp (generated)', $2, $3, $4)`, [orgId, `acme-gen-${orgId.slice(-12)}`, [ORG_DOMAIN], created]);
    await em.query(`SELECT steward_audit_ensure_partitions($1::date, $2)`, [plan.start, Math.ceil((plan.end.getTime() - plan.start.getTime()) / (30 * 86_400_000)) + 3]);
  });
  // People: a user row is inserted as that user (RLS), with its membership and roles.
  for (const p of plan.people) {
    await inOrg(ds, { orgId, userId: p.id }, async (em) => {
      await em.query(`INSERT INTO users (id, email, name, password_hash) VALUES ($1, $2, $3, NULL)`, [p.id, p.email, p.name]);
      await em.query(`INSERT INTO memberships (id, org_id, user_id, created_at) VALUES ($1, $2, $1, $3)`, [p.id, orgId, created]);
      await em.query(`INSERT INTO role_assignments (id, org_id, user_id, role) VALUES ($1, $2, $1, $3)`, [p.id, orgId, p.approver ? 'approver' : 'member']);
    });
  }
  await inOrg(ds, { orgId }, async (em) => {
    for (const t of TEAMS) {
      await em.query(`INSERT INTO groups (id, org_id, name) VALUES ($1, $2, $3)`, [plan.groups[t.key], orgId, t.name]);
      await em.query(`INSERT INTO workflows (id, org_id, key, name) VALUES ($1, $2, $3, $4)`, [plan.workflows[t.key], orgId, t.workflow, t.workflow]);
    }
    // Group membership as of the end of the range (people who moved are in their new team).
    const last = Math.round((plan.end.getTime() - plan.start.getTime()) / 86_400_000) - 1;
    const rows = plan.people.map((p) => [p.id, orgId, plan.groups[TEAMS[teamOf(p, last)].key], p.id]);
    for (let i = 0; i < rows.length; i += 500) {
      const chunk = rows.slice(i, i + 500);
      await em.query(`INSERT INTO group_members (id, org_id, group_id, user_id) VALUES ${chunk.map((_, j) => `($${j * 4 + 1}, $${j * 4 + 2}, $${j * 4 + 3}, $${j * 4 + 4})`).join(', ')}`, chunk.flat());
    }
    await em.query(
      `INSERT INTO policies (id, org_id, version, status, document, note, author_id, activated_at, review_due_at, created_at)
       VALUES ($1, $2, $3, 'active', $4, 'generated', $5, $6, $7, $6)`,
      [plan.policy.id, orgId, plan.policy.version, JSON.stringify(plan.policy.document), plan.people[0].id, plan.start, plan.policy.reviewDueAt],
    );
  });

  // The policy's activation, as the API records it (what a finding about the policy links to).
  const activatedAt = plan.start;
  const activation = {
    action: 'policy.activate',
    actor: { id: plan.people[0].id, type: 'user' },
    at: activatedAt.toISOString(),
    client: 'console',
    id: plan.activationEventId,
    org: orgId,
    outcome: 'success',
    payload: { reviewDueAt: plan.policy.reviewDueAt.toISOString(), version: plan.policy.version },
    target: { id: plan.policy.id, type: 'Policy' },
    v: 1,
  };
  await inOrg(ds, { orgId }, (em) => em.query(`INSERT INTO audit_events (id, org_id, occurred_at, canonical) VALUES ($1, $2, $3, $4)`, [activation.id, orgId, activatedAt, JSON.stringify(activation)]));

  let events: unknown[][] = [];
  let tasks: unknown[][] = [];
  let approvals: unknown[][] = [];
  let votes: unknown[][] = [];
  let pending: Promise<void> = Promise.resolve();
  const flush = () => {
    const ev = events;
    const tk = tasks;
    const ap = approvals;
    const vo = votes;
    events = [];
    tasks = [];
    approvals = [];
    votes = [];
    // One batch in flight while the next is generated.
    const previous = pending;
    pending = previous.then(() =>
      inOrg(ds, { orgId }, async (em) => {
        if (ev.length) await insertRows(em, 'audit_events', ['id', 'org_id', 'occurred_at', 'canonical'], ev);
        if (tk.length) {
          await insertRows(em, 'tasks', ['org_id', 'id', 'user_id', 'prompt_sealed', 'prompt_key', 'prompt_digest', 'prompt_bytes', 'workflow', 'state', 'max_steps', 'step', 'cost_micros', 'input_tokens', 'output_tokens', 'created_at', 'updated_at', 'finished_at'], tk);
        }
        if (ap.length) {
          await insertRows(em, 'approvals', ['org_id', 'id', 'kind', 'action_id', 'task_id', 'requested_by', 'connector', 'tool', 'action_type', 'args_digest', 'reason', 'state', 'expires_at', 'decided_at', 'created_at'], ap);
        }
        if (vo.length) await insertRows(em, 'approval_votes', ['org_id', 'approval_id', 'user_id', 'vote', 'created_at'], vo);
      }),
    );
    return previous;
  };
  const sink = {
    event(e: GeneratedEvent) {
      events.push([e.id, orgId, new Date(e.at), e.canonical]);
      if (events.length >= BATCH) return flush();
    },
    task(t: GeneratedTask) {
      const done = new Date(t.at + 60_000 * t.steps);
      tasks.push([orgId, t.id, t.user, EMPTY, 'generated', ZEROS, 0, t.workflow, 'completed', Math.max(8, t.steps), t.steps, t.costMicros, t.costMicros * 4, t.costMicros, new Date(t.at), done, done]);
    },
  };
  const result = await generateActivity(plan, options, {
    ...sink,
    approval(a: GeneratedApproval) {
      const decided = a.vote ? new Date(a.vote.at) : null;
      approvals.push([orgId, a.id, 'action', a.actionId, a.task, a.requestedBy, a.connector, a.tool, a.action, ZEROS, 'Watched', a.state, new Date(a.at + 86_400_000), decided, new Date(a.at)]);
      if (a.vote) votes.push([orgId, a.id, a.vote.user, a.vote.vote, decided]);
    },
  });
  await flush();
  await pending;

  if (plan.strikes.length) {
    await inOrg(ds, { orgId }, async (em) => {
      for (const s of plan.strikes) {
        await em.query(
          `INSERT INTO violations (org_id, id, action_id, user_id, connector, tool, action_type, args_digest, tainted, reason, state, decided_by, decided_at, created_at)
           VALUES ($1, $2, $3, $4, $5, 'workday.update', $6, $7, false, 'Forbidden: writes to HR or payroll data stay off agents', 'confirmed', $8, $9, $10)`,
          [orgId, s.eventId, s.actionId, s.user, s.connector, s.action, '0'.repeat(64), plan.people[0].id, new Date(s.at), new Date(s.at - 7_200_000)],
        );
      }
    });
  }
  return { ...plan, ...result };
}
