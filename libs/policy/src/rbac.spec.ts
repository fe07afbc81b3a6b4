import { BUILTIN_ROLE_RULES, BUILTIN_ROLES, PERMISSIONS, SUBJECTS, buildAbility, canGrant, rulesOfAssignments, subjectOf } from './rbac';

describe('RBAC', () => {
  it('gives the owner every pair and nobody anything unlisted', () => {
    const owner = buildAbility(BUILTIN_ROLE_RULES.owner, 'u1');
    for (const s of SUBJECTS) for (const a of PERMISSIONS[s]) expect(owner.can(a as never, s as never)).toBe(true);
    const member = buildAbility(BUILTIN_ROLE_RULES.member, 'u1');
    expect(member.can('update', 'Org')).toBe(false);
    expect(member.can('read', 'AuditEvent')).toBe(false);
  });

  it('every subject has at least one rule in some built-in role besides the owner', () => {
    for (const s of SUBJECTS) {
      const holders = BUILTIN_ROLES.filter((r) => r !== 'owner' && BUILTIN_ROLE_RULES[r].some((rule) => rule.subject === s));
      expect({ subject: s, holders: holders.length > 0 }).toEqual({ subject: s, holders: true });
    }
  });

  it('limits "own" rules to the caller\'s records', () => {
    const member = buildAbility(BUILTIN_ROLE_RULES.member, 'u1');
    expect(member.can('revoke', subjectOf('ApiKey', { userId: 'u1' }))).toBe(true);
    expect(member.can('revoke', subjectOf('ApiKey', { userId: 'u2' }))).toBe(false);
  });

  it('intersects an API key\'s scopes with its user\'s roles', () => {
    const key = buildAbility(BUILTIN_ROLE_RULES.admin, 'u1', ['read:Member']);
    expect(key.can('read', 'Member')).toBe(true);
    expect(key.can('invite', 'Member')).toBe(false);
    const noRole = buildAbility(BUILTIN_ROLE_RULES.member, 'u1', ['read:AuditEvent']);
    expect(noRole.can('read', 'AuditEvent')).toBe(false);
  });

  it('refuses to grant what the granter does not hold', () => {
    expect(canGrant(BUILTIN_ROLE_RULES.admin, [{ action: 'read', subject: 'Member' }])).toBe(true);
    expect(canGrant(BUILTIN_ROLE_RULES.admin, [{ action: 'update', subject: 'Org' }])).toBe(false);
    expect(canGrant(BUILTIN_ROLE_RULES.member, [{ action: 'revoke', subject: 'ApiKey' }])).toBe(false);
    expect(canGrant(BUILTIN_ROLE_RULES.member, [{ action: 'revoke', subject: 'ApiKey', own: true }])).toBe(true);
  });
});

describe('rulesOfAssignments', () => {
  it("adds up built-in and custom roles; a custom role that is gone adds nothing", () => {
    const custom = { key: 'group-reader', permissions: [{ action: 'read', subject: 'Group' }] };
    const r = rulesOfAssignments([
      { role: 'member', custom: null },
      { role: 'custom', custom },
      { role: 'custom', custom: null },
    ]);
    expect(r.roles).toEqual(['member', 'custom:group-reader']);
    expect(r.rules).toEqual([...BUILTIN_ROLE_RULES.member, ...custom.permissions]);
  });
});
