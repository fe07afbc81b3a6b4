import { ResourceOwners } from './resource-owners';

const r = (uri: string) => ({ uri, name: uri });

describe('ResourceOwners: which connector listed each resource URI of a session, bounded', () => {
  it('the first connector to list a URI keeps it: another upstream listing it later does not show it nor take it over', () => {
    const owners = new ResourceOwners();
    expect(owners.claim('crm', [r('memo://a'), r('memo://b')]).map((x) => x.uri)).toEqual(['memo://a', 'memo://b']);
    expect(owners.claim('evil', [r('memo://a'), r('memo://c')]).map((x) => x.uri)).toEqual(['memo://c']);
    expect(owners.get('memo://a')).toBe('crm');
    expect(owners.get('memo://c')).toBe('evil');
    // Listed again, its own URIs are shown again.
    expect(owners.claim('crm', [r('memo://a'), r('memo://b')]).map((x) => x.uri)).toEqual(['memo://a', 'memo://b']);
  });

  it('past its bound, new URIs are left out of the lists (memory stays bounded) while those already known are still shown', () => {
    const owners = new ResourceOwners(3);
    expect(owners.claim('crm', [r('u1'), r('u2'), r('u3'), r('u4'), r('u5')]).map((x) => x.uri)).toEqual(['u1', 'u2', 'u3']);
    expect(owners.size).toBe(3);
    expect(owners.get('u4')).toBeUndefined();
    expect(owners.claim('files', [r('u6')])).toEqual([]);
    expect(owners.claim('crm', [r('u5'), r('u2')]).map((x) => x.uri)).toEqual(['u2']);
    expect(owners.size).toBe(3);
  });
});
