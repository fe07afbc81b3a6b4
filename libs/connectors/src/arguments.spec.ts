import { argumentProblems } from './arguments';

describe("a remote tool's arguments against its pinned input schema", () => {
  const send = {
    name: 'send_mail',
    description: 'Send a mail.',
    inputSchema: { type: 'object', properties: { to: { type: 'array', items: { type: 'string' } }, subject: { type: 'string', maxLength: 200 } }, required: ['to'] },
  };

  it('passes arguments that fit, and refuses a property the definition does not declare (closed at the top level)', () => {
    expect(argumentProblems(send, { to: ['a@acme.example'], subject: 'Hi' })).toBeNull();
    expect(argumentProblems(send, { to: ['a@acme.example'], bcc: ['eve@evil.example'] })).toBe('the arguments: "bcc" is not a property the approved definition declares');
  });

  it('refuses a wrong shape, a missing required property and a broken limit, naming each', () => {
    const problems = argumentProblems(send, { to: 'a@acme.example', subject: 'x'.repeat(201) })!;
    expect(problems).toContain('/to must be array');
    expect(problems).toContain('/subject must NOT have more than 200 characters');
    expect(argumentProblems(send, { subject: 'Hi' })).toContain("must have required property 'to'");
  });

  it('lets other properties pass where the approved schema allows them, or composes its properties', () => {
    expect(argumentProblems({ ...send, inputSchema: { ...send.inputSchema, additionalProperties: true } }, { to: ['a@acme.example'], extra: 1 })).toBeNull();
    const composed = { name: 'q', description: '', inputSchema: { type: 'object', allOf: [{ properties: { a: { type: 'string' } } }, { properties: { b: { type: 'string' } } }] } };
    expect(argumentProblems(composed, { a: 'x', b: 'y' })).toBeNull();
    // Nested objects follow their schema as written (JSON Schema's default).
    const nested = { name: 'n', description: '', inputSchema: { type: 'object', properties: { filter: { type: 'object', properties: { q: { type: 'string' } }, additionalProperties: false } } } };
    expect(argumentProblems(nested, { filter: { q: 'x', drop: true } })).toBe('/filter: "drop" is not a property the approved definition declares');
  });

  it('a tool that declares no properties takes none; a modern schema composed of others is closed over what they declare', () => {
    const bare = { name: 'ping', description: '', inputSchema: { type: 'object' } };
    expect(argumentProblems(bare, {})).toBeNull();
    expect(argumentProblems(bare, { to: 'eve@evil.example' })).toContain('"to" is not a property the approved definition declares');
    const composed = {
      name: 'c',
      description: '',
      inputSchema: { $schema: 'https://json-schema.org/draft/2020-12/schema', type: 'object', allOf: [{ properties: { a: { type: 'string' } } }, { $ref: '#/$defs/b' }], $defs: { b: { properties: { b: { type: 'string' } } } } },
    };
    expect(argumentProblems(composed, { a: 'x', b: 'y' })).toBeNull();
    expect(argumentProblems(composed, { a: 'x', cc: 'eve@evil.example' })).toContain('must NOT have unevaluated properties');
    const older = { ...composed, name: 'c19', inputSchema: { ...composed.inputSchema, $schema: 'https://json-schema.org/draft/2019-09/schema' } };
    expect(argumentProblems(older, { a: 'x', cc: 'eve@evil.example' })).toContain('must NOT have unevaluated properties');
  });

  it('compiles each definition alone: two that name the same $id do not read each other', () => {
    const one = { name: 'one', description: '', inputSchema: { type: 'object', properties: { v: { $ref: 'https://shared.example/id' } }, $defs: { x: { $id: 'https://shared.example/id', type: 'string' } } } };
    const two = { name: 'two', description: '', inputSchema: { type: 'object', properties: { v: { $ref: 'https://shared.example/id' } }, $defs: { x: { $id: 'https://shared.example/id', type: 'number' } } } };
    expect(argumentProblems(one, { v: 'text' })).toBeNull();
    expect(argumentProblems(two, { v: 3 })).toBeNull();
    expect(argumentProblems(two, { v: 'text' })).toContain('/v must be number');
  });

  it("runs a schema's patterns on RE2: a pattern that backtracks without end on JavaScript's RegExp answers at once; one RE2 cannot read fits nothing", () => {
    // ^(a|a)*$ against 40 a's and a b: 2^40 paths for a backtracking engine (the call would never return).
    const evil = { name: 'lookup', description: '', inputSchema: { type: 'object', properties: { code: { type: 'string', pattern: '^(a|a)*$' } } } };
    expect(argumentProblems(evil, { code: `${'a'.repeat(40)}b` })).toContain('/code must match pattern');
    expect(argumentProblems(evil, { code: 'aaaa' })).toBeNull();
    const keyed = { name: 'tags', description: '', inputSchema: { type: 'object', properties: { tags: { type: 'object', patternProperties: { '^(x|x)*$': { type: 'string' } }, additionalProperties: false } } } };
    expect(argumentProblems(keyed, { tags: { [`${'x'.repeat(40)}y`]: 'v' } })).toContain('is not a property the approved definition declares');
    expect(argumentProblems(keyed, { tags: { xxxx: 'v' } })).toBeNull();
    const lookahead = { name: 'la', description: '', inputSchema: { type: 'object', properties: { a: { type: 'string', pattern: '^(?=x)x$' } } } };
    expect(argumentProblems(lookahead, { a: 'x' })).toMatch(/^the approved definition's input schema cannot be checked/);
  });

  it('reads a draft 2020-12 schema (as the MCP SDK writes them) and refuses everything under a schema it cannot compile', () => {
    const modern = { name: 'm', description: '', inputSchema: { $schema: 'https://json-schema.org/draft/2020-12/schema', type: 'object', properties: { ids: { type: 'array', prefixItems: [{ type: 'string' }], items: false } } } };
    expect(argumentProblems(modern, { ids: ['a'] })).toBeNull();
    expect(argumentProblems(modern, { ids: ['a', 'b'] })).toContain('/ids must NOT have more than 1 items');
    const broken = { name: 'b', description: '', inputSchema: { type: 'object', properties: { a: { type: 'no-such-type' } } } };
    expect(argumentProblems(broken, { a: 1 })).toMatch(/^the approved definition's input schema cannot be checked/);
    const draft04 = { name: 'd4', description: '', inputSchema: { $schema: 'http://json-schema.org/draft-04/schema#', type: 'object', properties: { a: { type: 'string' } } } };
    expect(argumentProblems(draft04, { a: 'x' })).toContain('is not one Steward reads');
    const draft06 = { name: 'd6', description: '', inputSchema: { $schema: 'http://json-schema.org/draft-06/schema#', type: 'object', properties: { a: { type: 'string' } } } };
    expect(argumentProblems(draft06, { a: 'x' })).toBeNull();
  });
});
