import type { EntityManager } from '@steward/db';

/**
 * Monthly budgets (org settings): the org's whole spend and each user's, per calendar month in
 * UTC, counted as the model cost spent that month (each turn booked to its month in
 * `task_cost_months`, whenever its task was created) plus what running tasks have reserved for the
 * turn they are in. Checked when a task is accepted (API) and when a schedule
 * fires; before every model turn the worker reserves the most the turn can cost (`reserveTurn`),
 * so that tasks running side by side never together spend past a budget.
 */
export interface MonthlyUsage {
  month: string;
  org: { spentMicros: number; budgetMicros: number | null; tasks: number; inputTokens: number; outputTokens: number };
  users: { userId: string; spentMicros: number; budgetMicros: number | null; tasks: number; inputTokens: number; outputTokens: number }[];
}

export const monthStart = (now = new Date()) => new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
export const monthKey = (now = new Date()) => monthStart(now).toISOString().slice(0, 7);

/** This month's spend of the org and of each user (or one user), with the org's budgets. */
export async function monthlyUsage(em: EntityManager, orgId: string, onlyUserId?: string, now = new Date()): Promise<MonthlyUsage> {
  const start = monthStart(now);
  const [o]: { monthly_budget_micros: string | null; user_monthly_budget_micros: string | null }[] = await em.query(`SELECT monthly_budget_micros, user_monthly_budget_micros FROM orgs WHERE id = $1`, [orgId]);
  // Spend and tokens as booked to this month; tasks: those created this month.
  const rows: { user_id: string; spent: string; tasks: number; input_tokens: string; output_tokens: string }[] = await em.query(
    `SELECT user_id, sum(spent)::bigint AS spent, sum(tasks)::int AS tasks, sum(input_tokens)::bigint AS input_tokens, sum(output_tokens)::bigint AS output_tokens
       FROM (SELECT user_id, cost_micros AS spent, 0 AS tasks, input_tokens, output_tokens FROM task_cost_months WHERE org_id = $1 AND month = $2::date
             UNION ALL
             SELECT user_id, 0, 1, 0, 0 FROM tasks WHERE org_id = $1 AND created_at >= $2) x
      GROUP BY user_id ORDER BY user_id`,
    [orgId, start.toISOString().slice(0, 10)],
  );
  const userBudget = o?.user_monthly_budget_micros == null ? null : Number(o.user_monthly_budget_micros);
  const users = rows.map((r) => ({ userId: r.user_id, spentMicros: Number(r.spent), budgetMicros: userBudget, tasks: r.tasks, inputTokens: Number(r.input_tokens), outputTokens: Number(r.output_tokens) }));
  const sum = (k: 'spentMicros' | 'tasks' | 'inputTokens' | 'outputTokens') => users.reduce((a, u) => a + u[k], 0);
  return {
    month: monthKey(now),
    org: { spentMicros: sum('spentMicros'), budgetMicros: o?.monthly_budget_micros == null ? null : Number(o.monthly_budget_micros), tasks: sum('tasks'), inputTokens: sum('inputTokens'), outputTokens: sum('outputTokens') },
    users: onlyUserId ? users.filter((u) => u.userId === onlyUserId) : users,
  };
}

/** A model turn's cost and tokens, booked to the month (UTC) it was spent in; in the turn's transaction. */
export async function bookTurnCost(em: EntityManager, t: { orgId: string; taskId: string; userId: string }, usage: { input_tokens: number; output_tokens: number }, costMicros: number, now = new Date()): Promise<void> {
  await em.query(
    `INSERT INTO task_cost_months (org_id, task_id, month, user_id, cost_micros, input_tokens, output_tokens) VALUES ($1, $2, $3::date, $4, $5, $6, $7)
     ON CONFLICT (org_id, month, task_id) DO UPDATE SET cost_micros = task_cost_months.cost_micros + EXCLUDED.cost_micros,
       input_tokens = task_cost_months.input_tokens + EXCLUDED.input_tokens, output_tokens = task_cost_months.output_tokens + EXCLUDED.output_tokens`,
    [t.orgId, t.taskId, monthStart(now).toISOString().slice(0, 10), t.userId, costMicros, usage.input_tokens, usage.output_tokens],
  );
}

export interface BudgetBlock {
  scope: 'org' | 'user';
  budgetMicros: number;
  /** Spent this month, with the reservations of running tasks. */
  spentMicros: number;
  /** The turn that would not fit: the most it could cost (absent: the budget is spent). */
  turnMicros?: number;
}

/**
 * Spent this month by the org and by the user (every task's turns booked to this month, whenever
 * the task was created), with what running tasks reserved for their current turn — all but the
 * reservation of `exceptTaskId`, which is about to be replaced.
 */
async function monthlyUse(em: EntityManager, orgId: string, userId: string, now: Date, exceptTaskId: string | null) {
  const [r]: { org_budget: string | null; user_budget: string | null; org_spent: string; user_spent: string }[] = await em.query(
    `SELECT o.monthly_budget_micros AS org_budget, o.user_monthly_budget_micros AS user_budget,
            (coalesce((SELECT sum(c.cost_micros) FROM task_cost_months c WHERE c.org_id = o.id AND c.month = $3::date), 0)
             + coalesce((SELECT sum(t.reserved_micros) FROM tasks t WHERE t.org_id = o.id AND t.state = 'running' AND t.id IS DISTINCT FROM $4), 0))::bigint AS org_spent,
            (coalesce((SELECT sum(c.cost_micros) FROM task_cost_months c WHERE c.org_id = o.id AND c.month = $3::date AND c.user_id = $2), 0)
             + coalesce((SELECT sum(t.reserved_micros) FROM tasks t WHERE t.org_id = o.id AND t.state = 'running' AND t.user_id = $2 AND t.id IS DISTINCT FROM $4), 0))::bigint AS user_spent
       FROM orgs o WHERE o.id = $1`,
    [orgId, userId, monthStart(now).toISOString().slice(0, 10), exceptTaskId],
  );
  return r;
}

/** Which monthly budget is spent for this user's agent work, if any. */
export async function monthlyBudgetBlock(em: EntityManager, orgId: string, userId: string, now = new Date()): Promise<BudgetBlock | null> {
  const r = await monthlyUse(em, orgId, userId, now, null);
  if (!r) return null;
  if (r.org_budget !== null && Number(r.org_spent) >= Number(r.org_budget)) return { scope: 'org', budgetMicros: Number(r.org_budget), spentMicros: Number(r.org_spent) };
  if (r.user_budget !== null && Number(r.user_spent) >= Number(r.user_budget)) return { scope: 'user', budgetMicros: Number(r.user_budget), spentMicros: Number(r.user_spent) };
  return null;
}

/**
 * Reserves the most a task's next model turn can cost against the org's and the user's monthly
 * budgets, or says which budget has no room for it (nothing reserved then). One reservation per
 * task (the turn it is in): a new one replaces the last; the turn's real cost replaces it when the
 * turn is accounted. Under a per-org transaction lock, so that two tasks cannot both take the last
 * of a budget; the caller's transaction must be the org's (inOrg).
 */
export async function reserveTurn(em: EntityManager, orgId: string, userId: string, taskId: string, turnMicros: number, now = new Date()): Promise<BudgetBlock | null> {
  await em.query(`SELECT pg_advisory_xact_lock(hashtextextended('steward:budget:' || $1::text, 0))`, [orgId]);
  // This task's own spend this month is in the sums already; its last reservation is not (this one replaces it).
  const r = await monthlyUse(em, orgId, userId, now, taskId);
  if (!r) return null;
  const over = (budget: string | null, spent: string) => budget !== null && Number(spent) + turnMicros > Number(budget);
  if (over(r.org_budget, r.org_spent)) return { scope: 'org', budgetMicros: Number(r.org_budget), spentMicros: Number(r.org_spent), turnMicros };
  if (over(r.user_budget, r.user_spent)) return { scope: 'user', budgetMicros: Number(r.user_budget), spentMicros: Number(r.user_spent), turnMicros };
  await em.query(`UPDATE tasks SET reserved_micros = $3 WHERE org_id = $1 AND id = $2`, [orgId, taskId, turnMicros]);
  return null;
}

const usd = (micros: number) => (micros / 1e6).toFixed(2);

export const budgetMessage = (b: BudgetBlock) => {
  const whose = b.scope === 'org' ? "org's" : "user's";
  if (b.turnMicros !== undefined && b.spentMicros < b.budgetMicros) {
    return `the ${whose} monthly budget has no room for another model turn (up to ${usd(b.turnMicros)} USD; ${usd(b.budgetMicros - b.spentMicros)} of ${usd(b.budgetMicros)} USD left this month, counting running tasks)`;
  }
  return `the ${whose} monthly budget is spent (${usd(b.spentMicros)} of ${usd(b.budgetMicros)} USD this month)`;
};
