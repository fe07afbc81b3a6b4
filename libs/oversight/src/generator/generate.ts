import { createHash } from 'node:crypto';
import { type ActionType, compilePolicy, decideRecorded, type Level, type PolicyDocument, type RecordedFacts } from '@steward/policy';
import type { FindingKind } from '../report/findings';
import { offsetMinutes, wallClock, zonedMidnight } from '../zone';
import { CONNECTOR, EXTERNAL_DOMAINS, generatedPolicy, makePeople, NO_REVERSIBLE_FORM, ORG_DOMAIN, type Person, type PlantedChange, plantedDraft, READ_ONLY, SAAS_HOST, TEAMS, teamOf, TOOL } from './model';
import { Rng, seedOf } from './random';

/**
 * A seeded, deterministic org: 500 people in ten teams over 180 days of agent activity with the
 * rhythms of real work (weekdays, a slow Friday, near-empty weekends, public holidays, vacations,
 * a seasonal swell, month-end closes in finance), people who join late or change teams, personal
 * habits (hours, pace, favourite tools, model spend), approvals with their latencies — and, on
 * request, planted anomalies of every kind the report looks for, in the last month (the report
 * period). Events are the gate's and the approvals' audit events, in the stored canonical form.
 */
export interface GenerateOptions {
  seed: number;
  users?: number;
  days?: number;
  /** Local midnight of the first day of a month in `timeZone`: the generated range ends here, and the report period is the month before. */
  end: Date;
  timeZone?: string;
  /** Mean agent actions per person on an ordinary working day. */
  eventsPerUserDay?: number;
  plant?: boolean;
}

export interface PlantedAnomaly {
  kind: FindingKind;
  /** The user, approver or policy the finding is about. */
  subject: string;
  action?: string;
  connector?: string;
  note: string;
}

export interface GeneratedEvent {
  id: string;
  at: number;
  canonical: string;
}

export interface GeneratedTask {
  id: string;
  user: string;
  at: number;
  workflow: string | null;
  costMicros: number;
  steps: number;
}

export interface GeneratedOrgPlan {
  orgId: string;
  timeZone: string;
  start: Date;
  end: Date;
  periodStart: Date;
  people: Person[];
  groups: Record<string, string>;
  workflows: Record<string, string>;
  policy: { id: string; version: number; document: PolicyDocument; reviewDueAt: Date };
  draft: PolicyDocument;
  changes: PlantedChange[];
  /** The person the draft's planted user rule names (never a carrier of a planted anomaly). */
  deleter: string;
  /** The id of the policy's activation event. */
  activationEventId: string;
  planted: PlantedAnomaly[];
  /** Confirmed violations (strikes) to write: user, the denied event, when decided. */
  strikes: { user: string; eventId: string; actionId: string; at: number; action: ActionType; connector: string }[];
}

/** An approval request of a Watched action, and the vote that decided it (none while pending). */
export interface GeneratedApproval {
  id: string;
  actionId: string;
  task: string;
  requestedBy: string;
  connector: string;
  tool: string;
  action: string;
  at: number;
  state: 'pending' | 'approved' | 'rejected';
  vote: { user: string; at: number; vote: 'approve' | 'reject' } | null;
}

export interface Sink {
  event(e: GeneratedEvent): void | Promise<void>;
  task(t: GeneratedTask): void | Promise<void>;
  approval(a: GeneratedApproval): void | Promise<void>;
}

export interface GenerationResult {
  events: number;
  tasks: number;
  /** Ids of the decision events whose level the planted draft changes (the replay's ground truth). */
  predictedChanges: string[];
  /** Decision events written (what a replay of the period reads). */
  decisions: number;
}

const DAY = 86_400_000;
const HOUR = 3_600_000;
const DECISION_WORD: Record<Level, string> = { autonomous: 'allowed', batched: 'allowed_reversible', watched: 'watched_pending', forbidden: 'denied' };

export function planOrg(o: GenerateOptions): GeneratedOrgPlan {
  const rng = new Rng(o.seed);
  const timeZone = o.timeZone ?? 'Europe/Berlin';
  const days = o.days ?? 180;
  const end = o.end;
  const endWall = wallClock(timeZone, end);
  const lastDay = new Date(Date.UTC(endWall.getUTCFullYear(), endWall.getUTCMonth(), endWall.getUTCDate()));
  const firstWall = new Date(lastDay.getTime() - days * DAY);
  const start = zonedMidnight(timeZone, firstWall.getUTCFullYear(), firstWall.getUTCMonth(), firstWall.getUTCDate());
  const periodStart = zonedMidnight(timeZone, endWall.getUTCFullYear(), endWall.getUTCMonth() - 1, 1);
  const idAt = (ms: number) => rng.uuid7(ms);
  const orgId = idAt(start.getTime() - 500 * DAY);
  const people = makePeople(rng, o.users ?? 500, days, idAt, start.getTime());
  const groups: Record<string, string> = {};
  const workflows: Record<string, string> = {};
  for (const t of TEAMS) groups[t.key] = idAt(start.getTime() - 450 * DAY);
  for (const t of TEAMS) workflows[t.key] = idAt(start.getTime() - 440 * DAY);
  const document = generatedPolicy(groups);
  const periodDay = Math.round((periodStart.getTime() - start.getTime()) / DAY);
  const plant = o.plant === true;
  // Reviewed on time, or (planted) overdue since the third day of the period.
  const reviewDueAt = plant ? new Date(periodStart.getTime() + 3 * DAY) : new Date(end.getTime() + 90 * DAY);
  const policy = { id: idAt(start.getTime() - 200 * DAY), version: 1, document, reviewDueAt };

  // Planted people: long-standing, in one team, at work during the period.
  const steady = people.filter((p) => p.joinsOn === 0 && p.movesOn === null && !p.approver && !p.weekendWorker);
  for (const p of steady) p.vacations = p.vacations.filter(([, to]) => to < periodDay - 1);
  // The draft's planted user rule is about someone who deletes files now and then.
  const deleter = steady.filter((p) => (p.habit['file.delete'] ?? 0) > 0).pop()!;
  const { draft, changes } = plantedDraft(document, groups, deleter.id);
  return { orgId, timeZone, start, end, periodStart, people, groups, workflows, policy, draft, changes, deleter: deleter.id, activationEventId: idAt(start.getTime()), planted: [], strikes: [] };
}

/** Public holidays (month, day) kept by the org; Easter Monday and the like vary, so a fixed set. */
const HOLIDAYS = new Set(['1-1', '5-1', '10-3', '12-24', '12-25', '12-26', '12-31', '4-21', '5-29', '6-9']);

/**
 * Streams the org's events and tasks into the sink, day by day, and returns what a replay of the
 * planted draft must find. Fills `plan.planted` and `plan.strikes` when planting.
 */
export async function generateActivity(plan: GeneratedOrgPlan, o: GenerateOptions, sink: Sink): Promise<GenerationResult> {
  const rng = new Rng(seedOf(`activity:${o.seed}`));
  const zone = plan.timeZone;
  const days = Math.round((plan.end.getTime() - plan.start.getTime()) / DAY);
  const perDay = o.eventsPerUserDay ?? 6;
  const compiled = compilePolicy(plan.policy.document);
  const startMs = plan.start.getTime();
  const endMs = plan.end.getTime();
  const periodMs = plan.periodStart.getTime();
  const periodDay = Math.round((periodMs - startMs) / DAY);
  const approvers = plan.people.filter((p) => p.approver);
  const predicted: string[] = [];
  let events = 0;
  let tasks = 0;
  let decisions = 0;
  const rateCounts = new Map<string, number>();

  // Planted anomalies and who carries them.
  const plant = o.plant === true;
  const steady = plan.people.filter((p) => p.joinsOn === 0 && p.movesOn === null && !p.approver && !p.weekendWorker);
  const pickTeam = (team: string, skip: Set<Person>) => {
    const found = steady.find((p) => TEAMS[p.team].key === team && !skip.has(p));
    if (!found) throw new Error(`no steady person in ${team}`);
    skip.add(found);
    return found;
  };
  const used = new Set<Person>(plan.people.filter((p) => p.id === plan.deleter));
  const carriers = plant
    ? {
        spike: pickTeam('ir', used),
        night: pickTeam('strategy', used),
        denied: pickTeam('finance', used),
        rejected: pickTeam('sales', used),
        wordpress: pickTeam('marketing', used),
        deletes: pickTeam('research', used),
        sends: pickTeam('sales', used),
        shares: pickTeam('marketing', used),
        cost: pickTeam('compliance', used),
        strikes: pickTeam('hr', used),
        stamp: approvers[0],
        slow: approvers[1],
      }
    : null;
  // Working days of the period (local weekdays that are not holidays), for planting.
  const workdays: number[] = [];
  for (let d = periodDay; d < days; d++) {
    const w = wallClock(zone, new Date(startMs + d * DAY + 12 * HOUR));
    const dow = w.getUTCDay();
    if (dow !== 0 && dow !== 6 && !HOLIDAYS.has(`${w.getUTCMonth() + 1}-${w.getUTCDate()}`)) workdays.push(d);
  }
  const plantDay = (k: number) => workdays[Math.min(workdays.length - 1, k)];

  interface Act {
    p: Person;
    at: number;
    action: ActionType;
    connector: string;
    task: string;
    workflow: string | null;
    tainted: boolean;
    external: boolean;
    resources: string[];
    hosts: string[];
    labels: string[];
    amount: number | null;
    invites: boolean;
    rejectP: number;
    forceApprover?: Person;
  }

  const taskFor = async (p: Person, at: number, workflow: string | null, costMicros: number, steps: number) => {
    const id = rng.uuid7(at);
    await sink.task({ id, user: p.id, at, workflow, costMicros: Math.round(costMicros), steps });
    tasks++;
    return id;
  };

  const emit = async (e: GeneratedEvent) => {
    events++;
    await sink.event(e);
  };

  const actOf = (p: Person, day: number, at: number, action: ActionType, task: string, workflow: string | null, tainted: boolean): Act => {
    const team = TEAMS[teamOf(p, day)];
    const saas = rng.pick(team.saas);
    const connector = action.startsWith('saas.') ? saas : CONNECTOR[action] ?? 'files';
    const external = (action === 'email.send' || action === 'email.draft') && rng.chance(0.25);
    const hosts = action.startsWith('saas.') ? [SAAS_HOST[saas]] : action === 'web.read' ? [rng.pick(['www.reuters.com', 'www.ft.com', 'sec.gov', 'www.bloomberg.com', 'en.wikipedia.org'])] : [];
    const resources =
      action.startsWith('file.') ? [`/${team.key === 'finance' && rng.chance(0.4) ? 'finance/scratch' : team.key}/${rng.int(1, 400)}.xlsx`] : action.startsWith('drive.') ? [`drive:${team.key}-${rng.int(1, 900)}`] : [];
    return {
      p, at, action, connector, task, workflow, tainted, external, resources, hosts,
      labels: action === 'email.send' && rng.chance(0.05) ? ['pii'] : [],
      amount: action === 'payment.execute' ? rng.int(100, 50_000) : null,
      invites: action === 'calendar.create' && rng.chance(0.6),
      rejectP: 0.05,
    };
  };

  const approverFor = (a: Act): Person => {
    if (a.forceApprover) return a.forceApprover;
    let ap = rng.pick(approvers);
    if (ap.id === a.p.id) ap = approvers[(approvers.indexOf(ap) + 1) % approvers.length];
    return ap;
  };

  const decideAndEmit = async (a: Act, day: number) => {
    const dayTeam = teamOf(a.p, day);
    const groups = [plan.groups[TEAMS[dayTeam].key]];
    // Rate limits as the gate reserves them: fixed windows per user.
    const rateExceeded: string[] = [];
    for (const l of plan.policy.document.rateLimits) {
      if (!(l.actions as string[]).includes(a.action)) continue;
      const win = l.per === 'hour' ? HOUR : l.per === 'minute' ? 60_000 : DAY;
      const key = `${l.id}:${a.p.id}:${Math.floor(a.at / win)}`;
      const n = (rateCounts.get(key) ?? 0) + 1;
      rateCounts.set(key, n);
      if (n > l.max) rateExceeded.push(l.id);
    }
    const domains = a.external ? [rng.pick(EXTERNAL_DOMAINS)] : a.action === 'email.send' || a.action === 'email.draft' ? [ORG_DOMAIN] : [];
    const facts: RecordedFacts = {
      user: a.p.id,
      groups,
      workflow: a.workflow,
      resources: a.resources,
      hosts: a.hosts,
      recipientScope: domains.length ? (a.external ? 'external' : 'internal') : 'none',
      recipientDomains: domains,
      invitesOthers: a.invites,
      labels: a.labels,
      tainted: a.tainted,
      amount: a.amount,
      rateExceeded: rateExceeded.sort(),
    };
    const d = decideRecorded(compiled, facts, a.action, a.connector, new Date(a.at));
    const noUndo = d.level === 'batched' && !READ_ONLY.has(a.action) && NO_REVERSIBLE_FORM.has(a.action);
    const level: Level = noUndo ? 'watched' : d.level;
    const id = rng.uuid7(a.at);
    const actionId = rng.uuid7(a.at);
    const refused = level === 'forbidden';
    // Keys in RFC 8785 order, so this is the stored canonical form.
    const canonical = JSON.stringify({
      action: a.action,
      actor: { id: a.task, type: 'agent_task' },
      at: new Date(a.at).toISOString(),
      client: 'worker',
      connector: a.connector,
      decision: refused ? 'denied' : DECISION_WORD[level],
      id,
      level,
      org: plan.orgId,
      outcome: refused ? 'denied' : 'success',
      payload: {
        actionId,
        argsDigest: createHash('sha256').update(id).digest('hex'),
        decided: d.level,
        facts: {
          amount: facts.amount,
          groups: facts.groups,
          hosts: facts.hosts,
          invitesOthers: facts.invitesOthers,
          labels: facts.labels,
          rateExceeded: facts.rateExceeded,
          recipientDomains: facts.recipientDomains,
          recipientScope: facts.recipientScope,
          resources: facts.resources,
          tainted: facts.tainted,
          user: facts.user,
          workflow: facts.workflow,
        },
        labels: facts.labels,
        ...(NO_REVERSIBLE_FORM.has(a.action) ? { noReversibleForm: true } : {}),
        rateLimited: facts.rateExceeded,
        rateLimitsUnavailable: false,
        reversible: level === 'batched' && !READ_ONLY.has(a.action),
        ruleIds: d.ruleIds,
        tainted: a.tainted,
        tool: TOOL[a.action] ?? 'tool',
      },
      policy: plan.policy.version,
      target: { id: null, type: 'Tool' },
      task: a.task,
      v: 1,
    });
    await emit({ id, at: a.at, canonical });
    decisions++;
    for (const c of plan.changes) if (c.predicts({ user: a.p.id, groups, workflow: a.workflow, action: a.action, level, tainted: a.tainted })) predicted.push(id);
    if (level === 'watched') await approve(a, actionId, day);
    return { id, actionId, level };
  };

  const approve = async (a: Act, actionId: string, day: number) => {
    const ap = approverFor(a);
    let latency: number;
    let rejected = rng.chance(a.rejectP);
    if (carriers && ap === carriers.stamp && a.at >= periodMs) {
      latency = 1500 + rng.next() * 4000;
      rejected = false;
    } else if (carriers && ap === carriers.slow && a.at >= periodMs) {
      // Slow, yet inside the approval's 24-hour life.
      latency = (9 + rng.next() * 13) * HOUR;
    } else {
      latency = rng.logNormal(20 * 60_000 * ap.approverPace, 0.9);
      // Requests outside the approver's day wait for the next morning.
      const local = new Date(a.at + offsetMinutes(zone, new Date(a.at)) * 60_000);
      const hour = local.getUTCHours();
      if (hour >= 19) latency += (24 - hour + 8.5) * HOUR;
      else if (hour < 8) latency += (8.5 - hour) * HOUR;
    }
    const at = Math.round(a.at + latency);
    const approvalId = rng.uuid7(a.at);
    const request = { id: approvalId, actionId, task: a.task, requestedBy: a.p.id, connector: a.connector, tool: TOOL[a.action] ?? 'tool', action: a.action, at: a.at };
    if (at >= endMs) {
      await sink.approval({ ...request, state: 'pending', vote: null });
      return;
    }
    await sink.approval({ ...request, state: rejected ? 'rejected' : 'approved', vote: { user: ap.id, at, vote: rejected ? 'reject' : 'approve' } });
    const id = rng.uuid7(at);
    const payload = rejected ? { actionId, reasonBytes: rng.int(10, 200), taskId: a.task } : { actionId, approvals: 1, approved: true, quorum: 1, taskId: a.task };
    await emit({
      id,
      at,
      canonical: JSON.stringify({
        action: rejected ? 'approval.reject' : 'approval.approve',
        actor: { id: ap.id, type: 'user' },
        at: new Date(at).toISOString(),
        client: 'console',
        id,
        org: plan.orgId,
        outcome: 'success',
        payload,
        target: { id: approvalId, type: 'Approval' },
        v: 1,
      }),
    });
    void day;
  };

  for (let day = 0; day < days; day++) {
    const dayStart = startMs + day * DAY;
    const noon = new Date(dayStart + 12 * HOUR);
    const wall = wallClock(zone, noon);
    const dayMidnight = zonedMidnight(zone, wall.getUTCFullYear(), wall.getUTCMonth(), wall.getUTCDate()).getTime();
    const dow = wall.getUTCDay();
    const holiday = HOLIDAYS.has(`${wall.getUTCMonth() + 1}-${wall.getUTCDate()}`);
    const dayOfYear = Math.floor((Date.UTC(wall.getUTCFullYear(), wall.getUTCMonth(), wall.getUTCDate()) - Date.UTC(wall.getUTCFullYear(), 0, 1)) / DAY);
    const season = 1 + 0.12 * Math.sin((2 * Math.PI * (dayOfYear - 80)) / 365) - (wall.getUTCMonth() === 7 ? 0.2 : 0);
    const daysInMonth = new Date(Date.UTC(wall.getUTCFullYear(), wall.getUTCMonth() + 1, 0)).getUTCDate();
    const monthEnd = wall.getUTCDate() > daysInMonth - 3;
    const weekday = dow === 0 || dow === 6 ? 0 : dow === 1 ? 1.05 : dow === 5 ? 0.85 : 1;
    for (const p of plan.people) {
      if (day < p.joinsOn) continue;
      if (p.vacations.some(([from, to]) => day >= from && day < to)) continue;
      const team = TEAMS[teamOf(p, day)];
      let f = weekday === 0 ? (p.weekendWorker ? 0.3 : 0.02) : weekday;
      if (holiday) f *= 0.05;
      if (monthEnd && team.key === 'finance') f *= 1.4;
      const n = rng.poisson(perDay * p.activity * f * season);
      if (!n) continue;
      const mix = Object.entries(p.habit) as [ActionType, number][];
      const weights = mix.map(([, w]) => w);
      const total = weights.reduce((x, y) => x + y, 0);
      const times: number[] = [];
      for (let i = 0; i < n; i++) {
        let h = rng.normal(p.centre, p.spread);
        h = Math.min(21.9, Math.max(6.5, h));
        times.push(dayMidnight + Math.floor(h * HOUR + rng.next() * 60_000));
      }
      times.sort((a, b) => a - b);
      // Tasks of about eight steps each, under the team's workflow most of the time.
      let task = '';
      let workflow: string | null = null;
      let tainted = false;
      for (let i = 0; i < n; i++) {
        if (i % 8 === 0) {
          workflow = rng.chance(0.7) ? team.workflow : null;
          tainted = rng.chance(0.04);
          task = await taskFor(p, times[i], workflow, rng.logNormal(p.costPerTask, 0.35) * Math.min(8, n - i) / 4, Math.min(8, n - i));
        }
        const action = rng.weighted(mix.map(([a]) => a), weights, total);
        const a = actOf(p, day, times[i], action, task, workflow, tainted);
        if (carriers && p === carriers.rejected && a.at >= periodMs) a.rejectP = 0.9;
        await decideAndEmit(a, day);
      }
    }
    if (carriers) await plantOn(day);
  }

  async function plantOn(day: number) {
    const c = carriers!;
    const at = (d: number, hour: number, spreadMin: number) => {
      const w = wallClock(zone, new Date(startMs + d * DAY + 12 * HOUR));
      return zonedMidnight(zone, w.getUTCFullYear(), w.getUTCMonth(), w.getUTCDate()).getTime() + hour * HOUR + Math.floor(rng.next() * spreadMin * 60_000);
    };
    const burst = async (p: Person, d: number, action: ActionType, count: number, hour: number, minutes: number, tweak?: (a: Act) => void) => {
      const task = await taskFor(p, at(d, hour, 0), null, p.costPerTask, count);
      const times = Array.from({ length: count }, () => at(d, hour, minutes)).sort((x, y) => x - y);
      for (const t of times) {
        const a = actOf(p, d, t, action, task, null, false);
        tweak?.(a);
        await decideAndEmit(a, d);
      }
    };
    if (day === plantDay(2)) {
      await burst(c.spike, day, 'drive.read', 140, 10, 360);
      plan.planted.push({ kind: 'volume_spike', subject: c.spike.id, action: 'drive.read', note: '140 extra drive reads in one working day' });
    }
    if (day === plantDay(4) || day === plantDay(5) || day === plantDay(6)) {
      await burst(c.night, day, 'file.read', 18, 1, 150);
      if (day === plantDay(6)) plan.planted.push({ kind: 'unusual_hours', subject: c.night.id, note: 'file reads between 01:00 and 03:30 on three nights' });
    }
    if (workdays.includes(day) && day >= plantDay(1) && day <= plantDay(16)) {
      await burst(c.denied, day, 'payment.execute', 2, 11, 240);
      if (day === plantDay(16)) plan.planted.push({ kind: 'denial_rate', subject: c.denied.id, action: 'payment.execute', note: 'two payment attempts a day (Forbidden) for three weeks' });
    }
    if (workdays.includes(day) && day >= plantDay(1) && day <= plantDay(15)) {
      await burst(c.rejected, day, 'email.send', 1, 14, 120, (a) => {
        a.external = true;
        a.rejectP = 0.9;
      });
      if (day === plantDay(15)) plan.planted.push({ kind: 'rejection_rate', subject: c.rejected.id, note: 'most external mails rejected by approvers' });
    }
    if (day === plantDay(8)) {
      await burst(c.wordpress, day, 'saas.write', 12, 15, 90, (a) => {
        a.connector = 'wordpress';
        a.hosts = [SAAS_HOST.wordpress];
      });
      plan.planted.push({ kind: 'first_connector', subject: c.wordpress.id, connector: 'wordpress', note: 'WordPress used for the first time in the org' });
    }
    if (day === plantDay(9)) {
      await burst(c.deletes, day, 'file.delete', 150, 16, 30);
      plan.planted.push({ kind: 'mass_delete', subject: c.deletes.id, action: 'file.delete', note: '150 deletions in 30 minutes' });
    }
    if (day === plantDay(10)) {
      await burst(c.sends, day, 'email.send', 70, 9, 40, (a) => {
        a.external = false;
      });
      plan.planted.push({ kind: 'mass_send', subject: c.sends.id, action: 'email.send', note: '70 mails in 40 minutes' });
    }
    if (day === plantDay(11)) {
      await burst(c.shares, day, 'drive.update', 60, 17, 45, (a) => {
        a.external = true;
      });
      plan.planted.push({ kind: 'bulk_external_share', subject: c.shares.id, action: 'drive.update', note: '60 drive files shared outside in 45 minutes' });
    }
    if (day === plantDay(12)) {
      // One task of 40 model turns (each one a gate decision) that spent 60 times the usual.
      const t = at(day, 11, 0);
      const task = await taskFor(c.cost, t, null, Math.max(25_000_000, c.cost.costPerTask * 60), 40);
      for (let i = 0; i < 40; i++) await decideAndEmit(actOf(c.cost, day, t + i * 45_000, 'model.invoke', task, null, false), day);
      plan.planted.push({ kind: 'cost_spike', subject: c.cost.id, note: 'one task spent 60× the usual model cost' });
    }
    if (day === plantDay(13)) {
      // Two Forbidden writes to payroll data, confirmed by security as the user's own (strikes).
      for (let i = 0; i < 2; i++) {
        const t = at(day, 10 + i, 30);
        const task = await taskFor(c.strikes, t, null, c.strikes.costPerTask, 1);
        const r = await decideAndEmit(actOf(c.strikes, day, t, 'hr.write', task, null, false), day);
        plan.strikes.push({ user: c.strikes.id, eventId: r.id, actionId: r.actionId, at: t + 2 * HOUR, action: 'hr.write', connector: 'workday' });
      }
      plan.planted.push({ kind: 'user_strikes', subject: c.strikes.id, note: 'two confirmed violations' });
    }
    if (day === days - 1) {
      // The approvers' planted behaviour needs requests: Watched mails by steady people, routed to them.
      const others = steady.filter((p) => !Object.values(c).includes(p)).slice(0, 30);
      for (const [k, ap] of [[0, c.stamp], [1, c.slow]] as const) {
        for (let i = 0; i < 30; i++) {
          const d = workdays[(i + k * 3) % Math.max(1, workdays.length - 3)];
          const p = others[i % others.length];
          const a = actOf(p, d, at(d, 9 + (i % 6), 50), 'email.send', await taskFor(p, at(d, 9, 0), null, p.costPerTask, 1), null, false);
          a.external = true;
          a.forceApprover = ap;
          a.rejectP = 0;
          await decideAndEmit(a, d);
        }
      }
      plan.planted.push({ kind: 'rubber_stamp', subject: c.stamp.id, note: '30+ approvals, all approved within seconds' });
      plan.planted.push({ kind: 'slow_approval', subject: c.slow.id, note: 'approvals taking 9–22 hours' });
      plan.planted.push({ kind: 'policy_review_overdue', subject: plan.policy.id, note: 'the active policy was due for review on the third day of the period' });
    }
  }

  return { events, tasks, predictedChanges: predicted, decisions };
}
