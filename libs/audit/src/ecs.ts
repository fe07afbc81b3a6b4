import { isIP } from 'node:net';
import type { CanonicalEvent } from './event';
import type { ExportLine } from './export';
import { isAgentAction } from './ocsf';

/**
 * Elastic Common Schema 9.4 export. Steward specifics go under the custom `steward` object;
 * a sealed part is never carried, only the fact that there is one.
 */
export const ECS_VERSION = '9.4.0';

type Obj = Record<string, unknown>;

/** event.category / event.type for a Steward action (ECS allowed values). */
export function ecsClassOf(action: string, outcome: CanonicalEvent['outcome']): { category: string[]; type: string[] } {
  const dot = action.indexOf('.');
  const family = dot > 0 ? action.slice(0, dot) : '';
  const verb = dot > 0 ? action.slice(dot + 1) : action;
  const crud = /^(create|add|invite|upload|send|post|write|insert|new|enroll)/.test(verb)
    ? 'creation'
    : /^(delete|remove|revoke|purge|cancel|drop|partition_drop|destroy)/.test(verb)
      ? 'deletion'
      : /^(read|get|list|search|view|query|export|download|fetch|verify|payload_view)/.test(verb)
        ? 'access'
        : /^(update|edit|set|activate|deactivate|rename|move|patch|modify|suspend|reactivate|assign|accept|release|change|password|totp)/.test(verb)
          ? 'change'
          : 'info';
  // An MCP gateway session, opened and ended with the member's API key or access token.
  if (action === 'mcp.session_open' || action === 'mcp.session_close') return { category: ['authentication', 'session'], type: [action === 'mcp.session_open' ? 'start' : 'end'] };
  switch (family) {
    case 'auth':
      if (/^(password|totp)/.test(verb)) return { category: ['iam'], type: ['user', 'change'] };
      return { category: ['authentication'], type: [/^logout/.test(verb) ? 'end' : /^login/.test(verb) ? 'start' : 'info'] };
    case 'member':
    case 'invitation':
    case 'api_key':
      return { category: ['iam'], type: ['user', crud === 'access' ? 'info' : crud] };
    case 'role':
      return { category: ['iam'], type: ['admin', crud === 'access' ? 'info' : crud] };
    case 'group':
      return { category: ['iam'], type: ['group', /member/.test(verb) ? 'change' : crud === 'access' ? 'info' : crud] };
    case 'policy':
    case 'org':
    case 'workflow':
    case 'legal_hold':
      return { category: ['configuration'], type: [crud] };
    default: {
      // Agent actions and audit.* operations: API calls; the decision shows in allowed/denied.
      const type = [crud === 'info' ? 'info' : crud === 'access' ? 'access' : crud];
      if (isAgentAction(action)) type.push(outcome === 'denied' ? 'denied' : 'allowed');
      return { category: ['api'], type };
    }
  }
}

function compact<T extends Obj>(o: T): T {
  for (const k of Object.keys(o)) if (o[k] === undefined) delete o[k];
  return o;
}

export function toEcs(line: ExportLine): Obj {
  const e = JSON.parse(line.canonical) as CanonicalEvent;
  const { category, type } = ecsClassOf(e.action, e.outcome);
  const ip = e.ip && isIP(e.ip) ? e.ip : undefined;
  return compact({
    '@timestamp': e.at,
    ecs: { version: ECS_VERSION },
    message: e.action,
    event: compact({
      id: e.id,
      action: e.action,
      category,
      type,
      // ECS outcome is success|failure|unknown; a denial is a failure (steward.outcome keeps "denied").
      outcome: e.outcome === 'success' ? 'success' : 'failure',
      reason: e.outcome === 'denied' ? 'denied' : undefined,
      kind: 'event',
      dataset: 'steward.audit',
      module: 'steward',
      provider: e.client,
      sequence: line.seq,
      hash: line.hash,
    }),
    user: e.actor.id ? { id: e.actor.id } : undefined,
    source: ip ? { ip } : undefined,
    organization: { id: e.org },
    trace: e.req ? { id: e.req } : undefined,
    labels: { actor_type: e.actor.type },
    steward: compact({
      seq: line.seq,
      hash: line.hash,
      outcome: e.outcome,
      actor: { type: e.actor.type, id: e.actor.id },
      target: e.target ? { type: e.target.type, id: e.target.id } : undefined,
      level: e.level,
      decision: e.decision,
      policy: e.policy,
      task: e.task,
      approval: e.approval,
      connector: e.connector,
      client: e.client,
      ip: e.ip && !ip ? e.ip : undefined,
      payload: e.payload,
      sealed: e.sealed ? true : undefined,
    }),
  });
}
