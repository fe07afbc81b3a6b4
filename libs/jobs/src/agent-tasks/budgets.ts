import type { EntityManager } from '@steward/db';

/**
 * Monthly budgets (org settings): the org's whole spend and each user's, per calendar month in
 * UTC, counted as the model cost of the tasks created that month. Checked when a task is accepted
 * (API), when a schedule fires and before every model turn (worker), so work stops once spent.
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
  const rows: { user_id: string; spent: string; tasks: number; input_tokens: string; output_tokens: string }[] = await em.query(
    `SELECT user_id, sum(cost_micros)::bigint AS spent, count(*)::int AS tasks, sum(input_tokens)::bigint AS input_tokens, sum(output_tokens)::bigint AS output_tokens
       FROM tasks WHERE org_id = $1 AND created_at >= $2 GROUP BY user_id ORDER BY user_id`,
    [orgId, start],
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

export interface BudgetBlock {
  scope: 'org' | 'user';
  budgetMicros: number;
  spentMicros: number;
}

/** Which monthly budget is spent for this user's agent work, if any. */
export async function monthlyBudgetBlock(em: EntityManager, orgId: string, userId: string, now = new Date()): Promise<BudgetBlock | null> {
  const [r]: { org_budget: string | null; user_budget: string | null; org_spent: string; user_spent: string }[] = await em.query(
    `SELECT o.monthly_budget_micros AS org_budget, o.user_monthly_budget_micros AS user_budget,
            coalesce((SELECT sum(cost_micros) FROM tasks t WHERE t.org_id = o.id AND t.created_at >= $3), 0)::bigint AS org_spent,
            coalesce((SELECT sum(cost_micros) FROM tasks t WHERE t.org_id = o.id AND t.created_at >= $3 AND t.user_id = $2), 0)::bigint AS user_spent
       FROM orgs o WHERE o.id = $1`,
    [orgId, userId, monthStart(now)],
  );
  if (!r) return null;
  if (r.org_budget !== null && Number(r.org_spent) >= Number(r.org_budget)) return { scope: 'org', budgetMicros: Number(r.org_budget), spentMicros: Number(r.org_spent) };
  if (r.user_budget !== null && Number(r.user_spent) >= Number(r.user_budget)) return { scope: 'user', budgetMicros: Number(r.user_budget), spentMicros: Number(r.user_spent) };
  return null;
}

export const budgetMessage = (b: BudgetBlock) =>
  `the ${b.scope === 'org' ? "org's" : "user's"} monthly budget is spent (${(b.spentMicros / 1e6).toFixed(2)} of ${(b.budgetMicros / 1e6).toFixed(2)} USD this month)`;
