import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { toEcs } from './ecs';
import { canonical, type CanonicalEvent } from './event';
import type { ExportLine } from './export';
import { toOcsf } from './ocsf';

/*
 * Conformance of the OCSF 1.8.0 and ECS 9.4 exports. The schemas come from the small extracts in
 * test-fixtures/ (regenerate with `node libs/audit/test-fixtures/extract.mjs`); when the full
 * standards documents are present (../shared/standards next to the repo) the same validators
 * also run against them.
 */

// ---------------------------------------------------------------- OCSF validator
interface OcsfAttr {
  type: string;
  requirement: string;
  is_array?: boolean;
  object_type?: string;
  profiles?: string[];
  sibling?: string;
  enum?: Record<string, { caption: string }>;
}
interface OcsfShape {
  name: string;
  uid?: number;
  category_uid?: number;
  constraints?: { at_least_one?: string[]; just_one?: string[] };
  attributes: Record<string, OcsfAttr>;
}
interface OcsfType {
  type?: string;
  regex?: string;
  max_len?: number;
  range?: [number, number];
  values?: unknown[];
}
interface OcsfSchema {
  version: string;
  classes: Record<string, OcsfShape>;
  objects: Record<string, OcsfShape>;
  dictionary: { types: { attributes: Record<string, OcsfType> } };
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function validateOcsf(schema: OcsfSchema, event: Record<string, unknown>): string[] {
  const errors: string[] = [];
  const cls = Object.values(schema.classes).find((c) => c.uid === event.class_uid);
  if (!cls) return [`class_uid ${String(event.class_uid)} is not an OCSF ${schema.version} class (in the extract)`];
  const metadata = isPlainObject(event.metadata) ? event.metadata : {};
  const profiles = Array.isArray(metadata.profiles) ? (metadata.profiles as string[]) : [];
  for (const p of profiles) if (!(cls as { profiles?: string[] }).profiles?.includes(p)) errors.push(`metadata.profiles: ${p} is not a profile of ${cls.name}`);
  const active = (a: OcsfAttr) => !a.profiles || a.profiles.length === 0 || a.profiles.some((p) => profiles.includes(p));
  const types = schema.dictionary.types.attributes;

  const checkPrimitive = (typeName: string, v: unknown, path: string): void => {
    const chain: string[] = [];
    for (let t: string | undefined = typeName; t; t = types[t]?.type) {
      if (chain.includes(t)) break;
      chain.push(t);
    }
    const base = chain[chain.length - 1];
    if (!types[typeName]) errors.push(`${path}: unknown OCSF type ${typeName}`);
    const ok =
      base === 'string_t' ? typeof v === 'string'
      : base === 'integer_t' ? Number.isInteger(v) && Math.abs(v as number) <= 2 ** 31
      : base === 'long_t' ? Number.isSafeInteger(v)
      : base === 'float_t' ? typeof v === 'number' && Number.isFinite(v)
      : base === 'boolean_t' ? typeof v === 'boolean'
      : base === 'json_t';
    if (!ok) {
      errors.push(`${path}: ${JSON.stringify(v)} is not ${typeName} (${base})`);
      return;
    }
    for (const t of chain) {
      const d = types[t];
      if (!d) continue;
      if (d.regex && typeof v === 'string' && !new RegExp(d.regex).test(v)) errors.push(`${path}: ${JSON.stringify(v)} does not match ${t}`);
      if (d.max_len && typeof v === 'string' && v.length > d.max_len) errors.push(`${path}: longer than ${d.max_len} (${t})`);
      if (d.range && typeof v === 'number' && (v < d.range[0] || v > d.range[1])) errors.push(`${path}: out of range for ${t}`);
      if (d.values && !d.values.includes(v)) errors.push(`${path}: ${JSON.stringify(v)} not allowed for ${t}`);
    }
  };

  const checkShape = (shape: OcsfShape, value: Record<string, unknown>, path: string): void => {
    for (const [k, v] of Object.entries(value)) {
      const p = path ? `${path}.${k}` : k;
      const a = shape.attributes[k];
      if (!a) {
        errors.push(`${p}: not an attribute of ${shape.name}`);
        continue;
      }
      if (!active(a)) errors.push(`${p}: belongs to profile(s) ${a.profiles!.join(',')} not listed in metadata.profiles`);
      if (v === null || v === undefined) {
        errors.push(`${p}: null`);
        continue;
      }
      if (a.is_array !== Array.isArray(v) && !(a.is_array === undefined && !Array.isArray(v))) {
        errors.push(`${p}: ${a.is_array ? 'must' : 'must not'} be an array`);
        continue;
      }
      const items = Array.isArray(v) ? v : [v];
      items.forEach((item, i) => checkValue(a, item, Array.isArray(v) ? `${p}[${i}]` : p));
      if (a.enum && a.sibling && typeof v === 'number' && v !== 99 && v in a.enum && typeof value[a.sibling] === 'string' && value[a.sibling] !== a.enum[String(v)].caption) {
        errors.push(`${path ? `${path}.` : ''}${a.sibling}: "${String(value[a.sibling])}" is not the caption of ${k}=${v} ("${a.enum[String(v)].caption}")`);
      }
    }
    for (const [k, a] of Object.entries(shape.attributes)) {
      if (a.requirement === 'required' && active(a) && value[k] === undefined) errors.push(`${path ? `${path}.` : ''}${k}: required by ${shape.name}`);
    }
    const c = shape.constraints ?? {};
    if (c.at_least_one && !c.at_least_one.some((k) => value[k] !== undefined)) errors.push(`${path || shape.name}: needs at least one of ${c.at_least_one.join(', ')}`);
    if (c.just_one && c.just_one.filter((k) => value[k] !== undefined).length !== 1) errors.push(`${path || shape.name}: needs exactly one of ${c.just_one.join(', ')}`);
  };

  const checkValue = (a: OcsfAttr, v: unknown, path: string): void => {
    if (a.type === 'object_t') {
      if (!isPlainObject(v)) return void errors.push(`${path}: must be an object`);
      if (a.object_type === 'object') return; // free-form (unmapped)
      const obj = schema.objects[a.object_type ?? ''];
      if (!obj) return void errors.push(`${path}: object ${a.object_type} is not in the schema extract`);
      return checkShape(obj, v, path);
    }
    checkPrimitive(a.type, v, path);
    if (a.enum && !(String(v) in a.enum)) errors.push(`${path}: ${JSON.stringify(v)} is not one of ${Object.keys(a.enum).join(',')}`);
  };

  checkShape(cls, event, '');
  if (event.category_uid !== cls.category_uid) errors.push(`category_uid: ${String(event.category_uid)} != ${cls.category_uid}`);
  if (event.type_uid !== (cls.uid ?? 0) * 100 + (event.activity_id as number)) errors.push('type_uid: not class_uid * 100 + activity_id');
  if (metadata.version !== schema.version) errors.push(`metadata.version: ${String(metadata.version)} != ${schema.version}`);
  return errors;
}

// ---------------------------------------------------------------- ECS validator
interface EcsField {
  type: string;
  normalize: string[];
  allowed_values?: { name: string; expected_event_types?: string[] }[];
}
interface EcsSchema {
  version: string;
  fields: Record<string, EcsField>;
}

const ECS_CUSTOM = ['steward'];
const ISO_DATE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

function ecsTypeOk(type: string, v: unknown): boolean {
  switch (type) {
    case 'keyword':
    case 'constant_keyword':
    case 'wildcard':
    case 'text':
    case 'match_only_text':
      return typeof v === 'string';
    case 'long':
      return Number.isSafeInteger(v);
    case 'integer':
      return Number.isInteger(v) && Math.abs(v as number) < 2 ** 31;
    case 'short':
      return Number.isInteger(v) && Math.abs(v as number) < 2 ** 15;
    case 'byte':
      return Number.isInteger(v) && Math.abs(v as number) < 2 ** 7;
    case 'float':
    case 'double':
    case 'half_float':
    case 'scaled_float':
      return typeof v === 'number' && Number.isFinite(v);
    case 'boolean':
      return typeof v === 'boolean';
    case 'date':
      return typeof v === 'string' && ISO_DATE.test(v) && !Number.isNaN(Date.parse(v));
    case 'ip':
      return typeof v === 'string' && isIP(v) !== 0;
    case 'object':
    case 'flattened':
      return isPlainObject(v);
    default:
      return false;
  }
}

export function validateEcs(schema: EcsSchema, doc: Record<string, unknown>): string[] {
  const errors: string[] = [];
  const used = new Map<string, unknown>();
  const walk = (value: Record<string, unknown>, prefix: string): void => {
    for (const [k, v] of Object.entries(value)) {
      const name = prefix ? `${prefix}.${k}` : k;
      if (!prefix && ECS_CUSTOM.includes(k)) {
        if (Object.keys(schema.fields).some((f) => f === k || f.startsWith(`${k}.`))) errors.push(`${k}: custom object collides with an ECS field`);
        continue;
      }
      const f = schema.fields[name];
      if (!f) {
        if (isPlainObject(v)) walk(v, name);
        else errors.push(`${name}: not an ECS ${schema.version} field`);
        continue;
      }
      used.set(name, v);
      const items = Array.isArray(v) ? v : [v];
      if (Array.isArray(v) && !f.normalize.includes('array')) errors.push(`${name}: ECS does not normalise it to an array`);
      for (const item of items) if (!ecsTypeOk(f.type, item)) errors.push(`${name}: ${JSON.stringify(item)} is not ECS ${f.type}`);
      if (name === 'labels' && isPlainObject(v)) for (const [lk, lv] of Object.entries(v)) if (typeof lv !== 'string' || /[.\s*]/.test(lk)) errors.push(`labels.${lk}: labels are keyword key/values`);
      if (f.allowed_values) for (const item of items) if (!f.allowed_values.some((a) => a.name === item)) errors.push(`${name}: ${JSON.stringify(item)} is not an allowed value`);
    }
  };
  walk(doc, '');
  for (const required of ['@timestamp']) if (!used.has(required)) errors.push(`${required}: required`);
  const categories = (used.get('event.category') as string[] | undefined) ?? [];
  const expected = new Set(categories.flatMap((c) => schema.fields['event.category']?.allowed_values?.find((a) => a.name === c)?.expected_event_types ?? []));
  for (const t of (used.get('event.type') as string[] | undefined) ?? []) if (!expected.has(t)) errors.push(`event.type: ${t} is not expected for event.category ${categories.join(',')}`);
  return errors;
}

// ---------------------------------------------------------------- sample events
const uuid = (n: number) => `0195c000-0000-7000-8000-${String(n).padStart(12, '0')}`;
const ORG = uuid(1);
let counter = 100;

function ev(action: string, outcome: CanonicalEvent['outcome'], extra: Partial<CanonicalEvent> = {}): CanonicalEvent {
  counter += 1;
  return {
    v: 1,
    id: uuid(counter),
    org: ORG,
    at: `2026-11-21T10:${String(counter % 60).padStart(2, '0')}:00.000Z`,
    actor: { type: 'user', id: uuid(2) },
    action,
    outcome,
    client: 'console',
    payload: {},
    ...extra,
  };
}

const full = (): Partial<CanonicalEvent> => ({
  target: { type: 'Thing', id: uuid(900) },
  ip: '203.0.113.7',
  req: 'req-0001',
  payload: { name: 'x', count: 2 },
});
const agent = (extra: Partial<CanonicalEvent> = {}): Partial<CanonicalEvent> => ({
  actor: { type: 'agent_task', id: uuid(3) },
  client: 'mcp',
  level: 'watched',
  decision: 'allow',
  policy: 4,
  task: uuid(4),
  connector: 'google-workspace',
  ...extra,
});

const AGENT_FAMILIES = ['file', 'email', 'drive', 'chat', 'calendar', 'web', 'saas', 'git', 'payment', 'hr', 'contract', 'data', 'model', 'unknown'];
const OUTCOMES: CanonicalEvent['outcome'][] = ['success', 'failure', 'denied'];

const EVENTS: CanonicalEvent[] = [
  // agent actions: every family, each outcome, minimal and full
  ...AGENT_FAMILIES.flatMap((f, i) => OUTCOMES.map((o) => ev(`${f}.${['read', 'create', 'update', 'delete', 'send', 'execute'][i % 6]}`, o, i % 2 ? agent() : { ...agent(), ...full() }))),
  ev('email.send', 'denied', agent({ level: 'forbidden', decision: 'deny' })),
  ev('payment.execute', 'success', agent({ level: 'watched', decision: 'require_approval', approval: uuid(5), ...full() })),
  ev('file.delete', 'success', { ...agent(), sealed: { month: '2026-11-01', ct: 'c2VjcmV0LWNpcGhlcnRleHQ' }, blind: ['aa', 'bb'] }),
  ev('web.fetch', 'success', { actor: { type: 'system', id: null }, client: 'worker', payload: {} }),
  ev('file.read', 'success', { ...agent(), ip: 'not-an-ip' }),
  // identity
  ...OUTCOMES.flatMap((o) => ['auth.login', 'auth.logout', 'auth.step_up', 'auth.password_change', 'auth.totp_enable', 'auth.totp_disable', 'auth.totp_enroll_start'].map((a) => ev(a, o, a === 'auth.login' ? full() : { client: 'rest' }))),
  ev('auth.login', 'failure', { actor: { type: 'user', id: null }, ip: '2001:db8::1' }),
  ...['mcp.session_open', 'mcp.session_close'].map((a) => ev(a, 'success', { client: 'mcp', target: { type: 'McpSession', id: uuid(900) }, payload: { mcp: { session: uuid(900), clientName: 'Claude Desktop', clientVersion: '1.0' } } })),
  ev('mcp.resource.read', 'denied', { client: 'mcp', target: { type: 'Connector', id: uuid(901) } }),
  // admin changes
  ...OUTCOMES.flatMap((o) =>
    ['member.suspend', 'member.reactivate', 'member.assign_roles', 'invitation.create', 'invitation.accept', 'invitation.revoke', 'role.create', 'role.update', 'role.delete', 'api_key.create', 'api_key.revoke', 'group.create', 'group.update', 'group.delete', 'group.add_member', 'group.remove_member'].map((a, i) =>
      ev(a, o, i % 2 ? { target: { type: 'Member', id: uuid(700 + i) }, payload: { name: 'n', roles: ['admin'], userId: uuid(800) } } : { actor: { type: 'api_key', id: uuid(6) }, client: 'rest' }),
    ),
  ),
  ev('group.create', 'success', { target: { type: 'Group', id: null } }),
  // everything else
  ...['policy.create', 'policy.update', 'policy.activate', 'policy.delete', 'audit.search', 'audit.export', 'audit.verify', 'audit.payload_view', 'audit.purge', 'audit.checkpoint', 'audit.partition_drop', 'org.create', 'org.update', 'workflow.create', 'workflow.update', 'workflow.delete', 'legal_hold.create', 'legal_hold.release'].flatMap((a, i) => [
    ev(a, OUTCOMES[i % 3], i % 2 ? full() : {}),
    ev(a, 'success', { actor: { type: 'system', id: null }, client: 'system' }),
  ]),
];

const lines: ExportLine[] = EVENTS.map((e, i) => ({ seq: i + 1, hash: (i + 1).toString(16).padStart(64, '0'), canonical: canonical(e) }));

const fixtures = join(__dirname, '..', 'test-fixtures');
const ocsfSubset = JSON.parse(readFileSync(join(fixtures, 'ocsf-1.8.0-subset.json'), 'utf8')) as OcsfSchema;
const ecsSubset = JSON.parse(readFileSync(join(fixtures, 'ecs-9.4.0-subset.json'), 'utf8')) as EcsSchema;

const byAction = (action: string, n = 0) => lines.filter((l) => (JSON.parse(l.canonical) as CanonicalEvent).action === action)[n];

describe('OCSF 1.8.0 export', () => {
  it.each(lines.map((l) => [(JSON.parse(l.canonical) as CanonicalEvent).action, l] as const))('%s conforms', (_a, line) => {
    expect(validateOcsf(ocsfSubset, toOcsf(line))).toEqual([]);
  });

  it('maps the families to the expected classes and activities', () => {
    const cls = (a: string) => {
      const o = toOcsf(byAction(a));
      return `${String(o.class_uid)}/${String(o.activity_id)}`;
    };
    expect(cls('email.create')).toBe('6003/1');
    expect(cls('email.send')).toBe('6003/1');
    expect(cls('file.read')).toBe('6003/2');
    expect(cls('auth.login')).toBe('3002/1');
    expect(cls('auth.logout')).toBe('3002/2');
    expect(cls('auth.step_up')).toBe('3002/99');
    expect(cls('auth.password_change')).toBe('3001/3');
    expect(cls('auth.totp_enable')).toBe('3001/10');
    expect(cls('auth.totp_disable')).toBe('3001/11');
    expect(cls('mcp.session_open')).toBe('3002/1');
    expect(cls('mcp.session_close')).toBe('3002/2');
    expect(cls('mcp.resource.read')).toBe('6003/2');
    expect(cls('member.suspend')).toBe('3001/5');
    expect(cls('member.reactivate')).toBe('3001/2');
    expect(cls('member.assign_roles')).toBe('3005/1');
    expect(cls('api_key.revoke')).toBe('3001/6');
    expect(cls('role.create')).toBe('3001/1');
    expect(cls('group.add_member')).toBe('3006/3');
    expect(cls('group.create')).toBe('3006/6');
    expect(cls('policy.activate')).toBe('6003/3');
    expect(cls('audit.search')).toBe('6003/2');
    expect(cls('legal_hold.release')).toBe('6003/3');
  });

  it('derives the security_control action and disposition, and keeps Steward specifics in unmapped', () => {
    const denied = toOcsf(byAction('email.send'));
    expect(denied).toMatchObject({ action_id: 2, action: 'Denied', disposition_id: 2, status_id: 2, metadata: { profiles: ['security_control'] } });
    const approved = toOcsf(lines.find((l) => l.canonical.includes('"approval"'))!);
    expect(approved).toMatchObject({ action_id: 1, disposition_id: 8, policy: { version: '4' }, unmapped: { approval: uuid(5), level: 'watched', policy_version: 4 } });
    const admin = toOcsf(byAction('member.suspend'));
    expect(admin.action_id).toBeUndefined();
    expect((admin.metadata as { profiles?: unknown }).profiles).toBeUndefined();
    const withReq = toOcsf(byAction('auth.login'));
    expect(withReq).toMatchObject({ time: Date.parse(JSON.parse(byAction('auth.login').canonical).at), metadata: { version: '1.8.0', product: { name: 'Steward', vendor_name: 'Steward' }, correlation_uid: 'req-0001' }, src_endpoint: { ip: '203.0.113.7' } });
  });

  it('never carries a sealed part, only the fact that there is one', () => {
    const line = lines.find((l) => l.canonical.includes('"sealed"'))!;
    const o = toOcsf(line);
    expect(JSON.stringify(o)).not.toContain('c2VjcmV0LWNpcGhlcnRleHQ');
    expect((o.unmapped as Record<string, unknown>).sealed).toBe(true);
    expect(JSON.stringify(toEcs(line))).not.toContain('c2VjcmV0LWNpcGhlcnRleHQ');
  });

  it('the validator catches what it should', () => {
    const o = toOcsf(byAction('email.send'));
    const bad = { ...o, type_uid: 600399, severity_id: 7, time: '2026-11-21', bogus: 1, metadata: { ...(o.metadata as object), version: '1.7.0' }, api: {}, disposition_id: 1 };
    delete (bad as Record<string, unknown>).actor;
    const errs = validateOcsf(ocsfSubset, bad).join('\n');
    for (const needle of ['type_uid', 'severity_id: 7', 'time:', 'bogus', 'metadata.version', 'api.operation: required', 'actor: required']) expect(errs).toContain(needle);
    const noProfile = { ...o, metadata: { ...(o.metadata as object), profiles: undefined } };
    expect(validateOcsf(ocsfSubset, JSON.parse(JSON.stringify(noProfile)) as Record<string, unknown>).join('\n')).toContain('not listed in metadata.profiles');
  });
});

describe('ECS 9.4 export', () => {
  it.each(lines.map((l) => [(JSON.parse(l.canonical) as CanonicalEvent).action, l] as const))('%s conforms', (_a, line) => {
    expect(validateEcs(ecsSubset, toEcs(line))).toEqual([]);
  });

  it('fills the core fields', () => {
    const d = toEcs(byAction('auth.login'));
    expect(d).toMatchObject({
      '@timestamp': JSON.parse(byAction('auth.login').canonical).at,
      event: { action: 'auth.login', category: ['authentication'], type: ['start'], outcome: 'success', dataset: 'steward.audit', kind: 'event' },
      source: { ip: '203.0.113.7' },
      organization: { id: ORG },
      trace: { id: 'req-0001' },
      steward: { seq: expect.any(Number), client: 'console' },
    });
    const denied = toEcs(byAction('email.send'));
    expect(denied).toMatchObject({ event: { outcome: 'failure', type: expect.arrayContaining(['denied']) }, steward: { outcome: 'denied', level: 'forbidden' } });
    // An MCP gateway session: an authentication session started and ended.
    expect(toEcs(byAction('mcp.session_open')).event).toMatchObject({ category: ['authentication', 'session'], type: ['start'] });
    expect(toEcs(byAction('mcp.session_close')).event).toMatchObject({ category: ['authentication', 'session'], type: ['end'] });
  });

  it('the validator catches what it should', () => {
    const d = toEcs(byAction('auth.login'));
    const bad = { ...d, '@timestamp': 5, source: { ip: 'nope' }, event: { ...(d.event as object), category: ['nonsense'], outcome: 'denied', kind: ['event'] }, usr: { id: 'x' }, labels: { a: 1 } };
    const errs = validateEcs(ecsSubset, bad).join('\n');
    for (const needle of ['@timestamp', 'source.ip', 'event.category', 'event.outcome', 'event.kind: ECS does not normalise', 'usr.id: not an ECS', 'labels.a']) expect(errs).toContain(needle);
  });
});

describe('the schema extracts', () => {
  const standards = join(__dirname, '..', '..', '..', '..', 'shared', 'standards');
  const present = existsSync(join(standards, 'ocsf-1.8.0-compiled.json')) && existsSync(join(standards, 'ecs_flat_9.4.0.yml'));

  if (present) {
    it('every export also conforms to the full OCSF 1.8.0 and ECS 9.4.0 documents, and the extracts match them', () => {
      const fullOcsf = JSON.parse(readFileSync(join(standards, 'ocsf-1.8.0-compiled.json'), 'utf8')) as OcsfSchema;
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- yaml is only needed when the full standards are present
      const YAML = require('yaml') as { parse(s: string): Record<string, EcsField> };
      const fullEcs: EcsSchema = { version: '9.4.0', fields: YAML.parse(readFileSync(join(standards, 'ecs_flat_9.4.0.yml'), 'utf8')) };
      expect(fullOcsf.version).toBe('1.8.0');
      for (const line of lines) {
        expect(validateOcsf(fullOcsf, toOcsf(line))).toEqual([]);
        expect(validateEcs(fullEcs, toEcs(line))).toEqual([]);
      }
      for (const kind of ['classes', 'objects'] as const) {
        for (const [name, shape] of Object.entries(ocsfSubset[kind])) {
          const f = fullOcsf[kind][name];
          expect(Object.keys(shape.attributes).sort()).toEqual(Object.keys(f.attributes).sort());
          for (const [k, a] of Object.entries(shape.attributes)) {
            expect([k, a.type, a.requirement, Object.keys(a.enum ?? {})]).toEqual([k, f.attributes[k].type, f.attributes[k].requirement ?? 'optional', Object.keys(f.attributes[k].enum ?? {})]);
          }
        }
      }
      for (const [name, field] of Object.entries(ecsSubset.fields)) expect([name, field.type]).toEqual([name, fullEcs.fields[name]?.type]);
    });
  } else {
    it('(full standards absent) the extracts carry the expected versions and classes', () => {
      expect(ocsfSubset.version).toBe('1.8.0');
      expect(ecsSubset.version).toBe('9.4.0');
      expect(Object.values(ocsfSubset.classes).map((c) => c.uid).sort()).toEqual([3001, 3002, 3005, 3006, 6003]);
      expect(ecsSubset.fields['event.category'].allowed_values?.length).toBeGreaterThan(10);
    });
  }
});
