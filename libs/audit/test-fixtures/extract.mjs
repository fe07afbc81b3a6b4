// Regenerates the small schema extracts the OCSF/ECS conformance tests use, from the full
// standards documents (default ../shared/standards relative to the repo root, or argv[2]).
//   node libs/audit/test-fixtures/extract.mjs [standardsDir]
// Output is deterministic (sorted keys, no descriptions).
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const dir = resolve(process.argv[2] ?? join(here, '../../../../shared/standards'));

export const OCSF_CLASSES = ['api_activity', 'authentication', 'account_change', 'group_management', 'user_access'];
export const OCSF_OBJECTS = ['actor', 'api', 'group', 'metadata', 'network_endpoint', 'object', 'policy', 'product', 'request', 'resource_details', 'service', 'user'];
export const ECS_PREFIXES = ['@timestamp', 'ecs.', 'event.', 'labels', 'message', 'organization.', 'related.', 'source.', 'tags', 'trace.', 'user.'];

function sortKeys(v) {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys(v[k])]));
  return v;
}

function attr(a) {
  const out = { type: a.type, requirement: a.requirement ?? 'optional' };
  if (a.is_array) out.is_array = true;
  if (a.object_type) out.object_type = a.object_type;
  if (a.profiles) out.profiles = a.profiles;
  if (a.sibling) out.sibling = a.sibling;
  if (a.enum) out.enum = Object.fromEntries(Object.entries(a.enum).map(([k, e]) => [k, { caption: e.caption }]));
  return out;
}

const attrs = (m) => Object.fromEntries(Object.entries(m).map(([k, a]) => [k, attr(a)]));

export function extractOcsf(full) {
  const classes = {};
  for (const name of OCSF_CLASSES) {
    const c = full.classes[name];
    classes[name] = { name, uid: c.uid, category_uid: c.category_uid, profiles: c.profiles ?? [], constraints: c.constraints ?? {}, attributes: attrs(c.attributes) };
  }
  const objects = {};
  for (const name of OCSF_OBJECTS) {
    const o = full.objects[name];
    objects[name] = { name, constraints: o.constraints ?? {}, attributes: attrs(o.attributes) };
  }
  const types = Object.fromEntries(
    Object.entries(full.dictionary.types.attributes).map(([k, t]) => {
      const out = {};
      for (const f of ['type', 'regex', 'max_len', 'range', 'values']) if (t[f] !== undefined) out[f] = t[f];
      return [k, out];
    }),
  );
  return sortKeys({ version: full.version, classes, objects, dictionary: { types: { attributes: types } } });
}

export function extractEcs(flat) {
  const fields = {};
  for (const [name, f] of Object.entries(flat)) {
    if (!ECS_PREFIXES.some((p) => name === p || (p.endsWith('.') && name.startsWith(p)))) continue;
    const out = { type: f.type, normalize: f.normalize ?? [] };
    if (f.allowed_values) out.allowed_values = f.allowed_values.map((v) => ({ name: v.name, ...(v.expected_event_types ? { expected_event_types: v.expected_event_types } : {}) }));
    fields[name] = out;
  }
  return sortKeys({ version: '9.4.0', fields });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const require = createRequire(import.meta.url);
  const YAML = require('yaml'); // already in node_modules (via nx); only this script and the optional full-schema test use it
  const ocsf = extractOcsf(JSON.parse(readFileSync(join(dir, 'ocsf-1.8.0-compiled.json'), 'utf8')));
  const ecs = extractEcs(YAML.parse(readFileSync(join(dir, 'ecs_flat_9.4.0.yml'), 'utf8')));
  writeFileSync(join(here, 'ocsf-1.8.0-subset.json'), `${JSON.stringify(ocsf, null, 1)}\n`);
  writeFileSync(join(here, 'ecs-9.4.0-subset.json'), `${JSON.stringify(ecs, null, 1)}\n`);
  console.log(`wrote OCSF ${ocsf.version} (${Object.keys(ocsf.classes).length} classes, ${Object.keys(ocsf.objects).length} objects), ECS ${ecs.version} (${Object.keys(ecs.fields).length} fields)`);
}
