import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import Ajv2020 from 'ajv/dist/2020';
import { toolDefinitionHash } from './pinning';
import type { ToolSpec } from './manifest';

/**
 * A remote tool's arguments checked against the input schema its approved definition pins, before
 * the policy sees them: the admin mapped and approved that schema, so a call naming a property it
 * does not declare (a `bcc` beside the `to` the mapping reads) or of another shape is refused instead
 * of being decided on the part the mapping reads and sent whole to a server that may act on the rest.
 *
 * Closed world at the top level: where the schema lists `properties` and says nothing of others,
 * others are refused (JSON Schema would let them pass). A schema that allows others explicitly
 * (`additionalProperties: true` or a schema) was approved as such.
 */
const draft07 = new Ajv({ strict: false, allErrors: true, validateFormats: false });
const draft2020 = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });

/** Compiled validators by definition hash (bounded: the oldest go first). */
const compiled = new Map<string, ValidateFunction | { broken: string }>();
const MAX_COMPILED = 500;

function closedAtTop(schema: Record<string, unknown>): Record<string, unknown> {
  const composed = ['allOf', 'anyOf', 'oneOf', '$ref', 'if', 'dependentSchemas', 'unevaluatedProperties'].some((k) => k in schema);
  if (composed || !schema.properties || typeof schema.properties !== 'object' || 'additionalProperties' in schema || 'patternProperties' in schema) return schema;
  return { ...schema, additionalProperties: false };
}

function validatorFor(spec: Pick<ToolSpec, 'name' | 'description' | 'inputSchema'>): ValidateFunction | { broken: string } {
  const key = toolDefinitionHash({ name: spec.name, description: spec.description, inputSchema: spec.inputSchema as Record<string, unknown> });
  const hit = compiled.get(key);
  if (hit) return hit;
  const schema = closedAtTop(spec.inputSchema as Record<string, unknown>);
  let v: ValidateFunction | { broken: string };
  try {
    const ajv = typeof schema.$schema === 'string' && /2019-09|2020-12/.test(schema.$schema) ? draft2020 : draft07;
    // Compiled without its $id, so that two definitions naming the same $id do not collide in the shared instance.
    const { $id: _id, ...rest } = schema;
    v = ajv.compile(rest);
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
