import Ajv, { type ErrorObject, type Options, type ValidateFunction } from 'ajv';
import type { RegExpEngine } from 'ajv/dist/types';
import { RE2JS } from 're2js';
import Ajv2019 from 'ajv/dist/2019';
import Ajv2020 from 'ajv/dist/2020';
import draft06 from 'ajv/dist/refs/json-schema-draft-06.json';
import { toolDefinitionHash } from './pinning';
import type { ToolSpec } from './manifest';

/**
 * A remote tool's arguments checked against the input schema its approved definition pins, before
 * the policy sees them: the admin mapped and approved that schema, so a call naming a property it
 * does not declare (a `bcc` beside the `to` the mapping reads) or of another shape is refused instead
 * of being decided on the part the mapping reads and sent whole to a server that may act on the rest.
 *
 * Closed world at the top level: where the schema says nothing of properties it does not list,
 * they are refused (JSON Schema would let them pass) — a schema with no `properties` takes none; a
 * 2019-09 or 2020-12 schema composed of others (`allOf`, `$ref`, ...) gets `unevaluatedProperties:
 * false`. A schema that allows others explicitly (`additionalProperties`, `patternProperties`,
 * `unevaluatedProperties`) was approved as such, and so was a draft-07 schema composed at the top
 * (that draft has no way to close it). Nested objects follow their schema as written.
 *
 * Each definition is compiled by an Ajv instance of its own (its `$id`s resolve within it alone, and
 * it goes when it leaves the cache); drafts 06, 07, 2019-09 and 2020-12 are read, others fit nothing.
 */
/**
 * `pattern` and `patternProperties` run on RE2 (linear time), not on JavaScript's backtracking
 * RegExp: a schema is the remote server's text, and a pattern such as `^(a|a)*$` would otherwise let
 * one call's argument hold the event loop for minutes. A pattern RE2 cannot read (a backreference, a
 * lookaround) makes the definition fit nothing: its calls are refused.
 */
const re2: RegExpEngine = Object.assign((pattern: string) => RE2JS.compile(pattern), { code: 'require("re2js").RE2JS.compile' });
const OPTIONS: Options = { strict: false, allErrors: true, validateFormats: false, code: { regExp: re2 } };
const COMPOSED = ['allOf', 'anyOf', 'oneOf', '$ref', '$dynamicRef', 'if', 'dependentSchemas'];

function ajvFor(draft: string | undefined): Ajv | null {
  if (draft === undefined || /draft-07/.test(draft)) return new Ajv(OPTIONS);
  if (/2020-12/.test(draft)) return new Ajv2020(OPTIONS);
  if (/2019-09/.test(draft)) return new Ajv2019(OPTIONS);
  if (/draft-06/.test(draft)) {
    const ajv = new Ajv(OPTIONS);
    ajv.addMetaSchema(draft06);
    return ajv;
  }
  return null;
}

/** Compiled validators by definition hash (bounded: the oldest go first). */
const compiled = new Map<string, ValidateFunction | { broken: string }>();
const MAX_COMPILED = 500;

function closedAtTop(schema: Record<string, unknown>, modern: boolean): Record<string, unknown> {
  if (['additionalProperties', 'patternProperties', 'unevaluatedProperties'].some((k) => k in schema)) return schema;
  if (COMPOSED.some((k) => k in schema)) return modern ? { ...schema, unevaluatedProperties: false } : schema;
  return { ...schema, additionalProperties: false };
}

/** The same, by manifest entry (manifests are immutable once built): no hashing on a call's path. */
const bySpec = new WeakMap<object, ValidateFunction | { broken: string }>();

function validatorFor(spec: Pick<ToolSpec, 'name' | 'description' | 'inputSchema'>): ValidateFunction | { broken: string } {
  let v = bySpec.get(spec);
  if (!v) {
    v = compiledFor(spec);
    bySpec.set(spec, v);
  }
  return v;
}

function compiledFor(spec: Pick<ToolSpec, 'name' | 'description' | 'inputSchema'>): ValidateFunction | { broken: string } {
  const key = toolDefinitionHash({ name: spec.name, description: spec.description, inputSchema: spec.inputSchema as Record<string, unknown> });
  const hit = compiled.get(key);
  if (hit) {
    // Least recently used goes first: a definition in use stays compiled.
    compiled.delete(key);
    compiled.set(key, hit);
    return hit;
  }
  const given = spec.inputSchema as Record<string, unknown>;
  const draft = typeof given.$schema === 'string' ? given.$schema : undefined;
  let v: ValidateFunction | { broken: string };
  try {
    const ajv = ajvFor(draft);
    v = ajv ? ajv.compile(closedAtTop(given, draft !== undefined && /2019-09|2020-12/.test(draft))) : { broken: `the JSON Schema draft ${String(draft).slice(0, 100)} is not one Steward reads (06, 07, 2019-09, 2020-12)` };
  } catch (err) {
    v = { broken: (err as Error).message.slice(0, 200) };
  }
  if (compiled.size >= MAX_COMPILED) compiled.delete(compiled.keys().next().value!);
  compiled.set(key, v);
  return v;
}

const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n)}…` : s);

function describe(e: ErrorObject): string {
  const at = e.instancePath ? clip(e.instancePath, 80) : 'the arguments';
  if (e.keyword === 'additionalProperties') return `${at}: "${clip(String((e.params as { additionalProperty: string }).additionalProperty), 64)}" is not a property the approved definition declares`;
  return `${at} ${e.message ?? 'is not valid'}`;
}

/** Why the arguments do not fit the tool's pinned input schema (null: they fit). A schema that cannot be compiled fits nothing. */
export function argumentProblems(spec: Pick<ToolSpec, 'name' | 'description' | 'inputSchema'>, args: Record<string, unknown>): string | null {
  const v = validatorFor(spec);
  if ('broken' in v) return `the approved definition's input schema cannot be checked (${v.broken}); an admin must approve a definition Steward can check`;
  if (v(args)) return null;
  const errors = (v.errors ?? []).slice(0, 5).map(describe);
  return clip(errors.join('; '), 600);
}
