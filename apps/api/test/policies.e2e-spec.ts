import { inOrg } from '@steward/db';
import { newId } from '@steward/common';
import { type Harness, login, type SeededOrg, seedOrg, startHarness } from './support/harness';

describe('Trust Level policies', () => {
  let h: Harness;
  let org: SeededOrg;
  let owner: string;
  let admin: string;
  let member: string;

  beforeAll(async () => {
    h = await startHarness();
    org = await seedOrg(h.ds, 'acme');
    owner = await login(h, org.users.owner.email);
    admin = await login(h, org.users.admin.email);
    member = await login(h, org.users.member.email);
  });
  afterAll(() => h?.close());

  it('starts a new org on the seed table as version 1, due for review in six months', async () => {
    const res = await h.http.get('/v1/policies/active').set('Cookie', member);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ version: 1, status: 'active', document: { baseline: { 'email.send': 'watched', 'payment.execute': 'forbidden', 'file.read': 'autonomous' } } });
    const activated = new Date(res.body.activatedAt);
    const due = new Date(res.body.reviewDueAt);
    expect(due.getUTCMonth()).toBe((activated.getUTCMonth() + 6) % 12);
  });

  it('refuses an invalid document with every problem listed, and leaves the active version untouched', async () => {
    const before = (await h.http.get('/v1/policies/active').set('Cookie', owner)).body;
    const document = structuredClone(before.document);
    document.baseline['email.send'] = 'autonomous';
    document.baseline['mail.teleport'] = 'watched';
    document.rules.push({ id: 'x.glob', scope: { type: 'org' }, actions: ['file.read'], level: 'watched', when: { resources: ['/a/{b,c}'] }, reason: 'bad glob' });
    document.rateLimits[0].max = 0;
    document.approvals.push({ id: 'route.ghost', actions: ['email.send'], approverGroup: '0195a000-0000-7000-8000-00000000dead', quorum: 2 });
    const res = await h.http.post('/v1/policies').set('Cookie', owner).send({ note: 'broken', document });
    expect(res.status).toBe(400);
    expect(res.headers['content-type']).toMatch(/problem\+json/);
    const paths = res.body.errors.map((e: { path: string }) => e.path).sort();
    expect(paths).toEqual(['document.approvals.0.approverGroup', 'document.baseline.email.send', 'document.baseline.mail.teleport', 'document.rateLimits.0.max', 'document.rules.4.when.resources.0'].sort());
    const after = (await h.http.get('/v1/policies/active').set('Cookie', owner)).body;
    expect(after).toEqual(before);
    expect((await h.http.get('/v1/policies').set('Cookie', owner)).body.total).toBe(1);
  });

  it('takes a draft through diff, simulation and activation, keeping the history', async () => {
    const draft = await h.http.post('/v1/policies').set('Cookie', admin).send({ note: 'Deletes need two eyes in finance' });
    expect(draft.status).toBe(201);
    expect(draft.body).toMatchObject({ version: 2, status: 'draft' });
    const document = draft.body.document;
    document.baseline['file.create'] = 'watched';
    document.rules.push({ id: 'org.tmp-cleanup', scope: { type: 'org' }, actions: ['file.delete'], level: 'autonomous', when: { resources: ['/tmp/**'] }, reason: 'scratch files may go' });
    const patched = await h.http.patch(`/v1/policies/${draft.body.id}`).set('Cookie', admin).send({ document });
    expect(patched.status).toBe(200);

    const diff = await h.http.get(`/v1/policies/${draft.body.id}/diff`).set('Cookie', member);
    expect(diff.body.changes.map((c: { path: string; kind: string }) => `${c.kind} ${c.path}`)).toEqual(['changed baseline.file.create', 'added rules[org.tmp-cleanup]']);

    const sim = await h.http.post(`/v1/policies/${draft.body.id}/simulate`).set('Cookie', member).send({
      actions: [
        { action: 'file.delete', context: { resources: ['/tmp/build.log'] } },
        { action: 'file.delete', context: { resources: ['/finance/q3.xlsx'] } },
        { action: 'file.create', context: {} },
      ],
    });
    expect(sim.status).toBe(200);
    expect(sim.body.summary).toEqual({ total: 3, changed: 2, stricter: 1, looser: 1 });
    expect(sim.body.results[0]).toMatchObject({ before: { level: 'watched' }, after: { level: 'autonomous', ruleIds: ['org.tmp-cleanup'] } });

    expect((await h.http.post(`/v1/policies/${draft.body.id}/activate`).set('Cookie', admin).send({})).status).toBe(403);
    const activated = await h.http.post(`/v1/policies/${draft.body.id}/activate`).set('Cookie', owner).send({ note: 'Reviewed with legal' });
    expect(activated.status).toBe(200);
    expect(activated.body).toMatchObject({ status: 'active', version: 2, note: 'Reviewed with legal' });
    expect((await h.http.patch(`/v1/policies/${draft.body.id}`).set('Cookie', owner).send({ note: 'x' })).status).toBe(409);

    const history = await h.http.get('/v1/policies').set('Cookie', member);
    expect(history.body.items.map((v: { version: number; status: string }) => `${v.version}:${v.status}`)).toEqual(['2:active', '1:archived']);
    const events = await h.http.get('/v1/audit-events').query({ action: 'policy.activate' }).set('Cookie', owner);
    expect(events.body.items[0]).toMatchObject({ targetId: draft.body.id, payload: { version: 2, changes: ['changed baseline.file.create', 'added rules[org.tmp-cleanup]'] } });
  });

  it('activates what was reviewed: an edit made since is refused at activation, and an edit racing an activation never changes the active version', async () => {
    const draft = (await h.http.post('/v1/policies').set('Cookie', admin).send({ note: 'reviewed version' })).body;
    const reviewed = draft.updatedAt as string;
    const edited = { ...draft.document, baseline: { ...draft.document.baseline, 'file.delete': 'autonomous' } };
    expect((await h.http.patch(`/v1/policies/${draft.id}`).set('Cookie', admin).send({ document: edited })).status).toBe(200);
    const stale = await h.http.post(`/v1/policies/${draft.id}/activate`).set('Cookie', owner).send({ reviewedUpdatedAt: reviewed });
    expect({ status: stale.status, detail: stale.body.detail }).toEqual({ status: 409, detail: expect.stringMatching(/changed since it was reviewed/) });
    expect((await h.http.get('/v1/policies/active').set('Cookie', owner)).body.id).not.toBe(draft.id);
    // The owner reviews it again and activates it, while the admin edits it at the same moment, many times over.
    const current = (await h.http.get(`/v1/policies/${draft.id}`).set('Cookie', owner)).body;
    const sneaky = { ...current.document, baseline: { ...current.document.baseline, 'email.send': 'watched', 'file.delete': 'autonomous', 'drive.update': 'autonomous' } };
    const [activated, ...edits] = await Promise.all([
      h.http.post(`/v1/policies/${draft.id}/activate`).set('Cookie', owner).send({ reviewedUpdatedAt: current.updatedAt }),
      ...Array.from({ length: 5 }, () => h.http.patch(`/v1/policies/${draft.id}`).set('Cookie', admin).send({ document: sneaky })),
    ]);
    const active = (await h.http.get('/v1/policies/active').set('Cookie', owner)).body;
    if (activated.status === 200) {
      // Activated as reviewed: every edit either came before and made the activation fail (not so here) or found it active.
      expect(active.id).toBe(draft.id);
      expect(active.document).toEqual(current.document);
      expect(edits.every((e) => e.status === 409)).toBe(true);
    } else {
      // An edit came first: the activation was refused, and the version is still a draft.
      expect(activated.status).toBe(409);
      expect(active.id).not.toBe(draft.id);
    }
  });

  it('does not let a draft made from an older version silently undo a version activated since', async () => {
    const base = (await h.http.get('/v1/policies/active').set('Cookie', owner)).body;
    // An admin drafts a change; meanwhile the owner drafts and activates an urgent one from the same version.
    const slow = (await h.http.post('/v1/policies').set('Cookie', admin).send({ note: 'group exception' })).body;
    const urgent = (await h.http.post('/v1/policies').set('Cookie', owner).send({ note: 'incident: no deletes', document: { ...base.document, baseline: { ...base.document.baseline, 'file.delete': 'forbidden' } } })).body;
    expect((await h.http.post(`/v1/policies/${urgent.id}/activate`).set('Cookie', owner).send({ reviewedUpdatedAt: urgent.updatedAt, reviewedAgainst: base.id })).status).toBe(200);
    // The first draft, reviewed against the version that was active then, or not said: refused, saying why.
    const stale = await h.http.post(`/v1/policies/${slow.id}/activate`).set('Cookie', owner).send({ reviewedUpdatedAt: slow.updatedAt, reviewedAgainst: base.id });
    expect({ status: stale.status, detail: stale.body.detail }).toEqual({ status: 409, detail: expect.stringMatching(/became active since you reviewed/) });
    const unsaid = await h.http.post(`/v1/policies/${slow.id}/activate`).set('Cookie', owner).send({ reviewedUpdatedAt: slow.updatedAt });
    expect({ status: unsaid.status, detail: unsaid.body.detail }).toEqual({ status: 409, detail: expect.stringMatching(new RegExp(`not drafted from the active version ${urgent.version}.*reviewedAgainst "${urgent.id}"`)) });
    expect((await h.http.get('/v1/policies/active').set('Cookie', owner)).body.document.baseline['file.delete']).toBe('forbidden');
    // Reviewed against what is active now (its diff shows the deletes opening again): it may go live.
    const diff = (await h.http.get(`/v1/policies/${slow.id}/diff`).set('Cookie', owner)).body;
    expect(diff.from).toBe(urgent.id);
    expect((await h.http.post(`/v1/policies/${slow.id}/activate`).set('Cookie', owner).send({ reviewedUpdatedAt: slow.updatedAt, reviewedAgainst: diff.from })).status).toBe(200);
    // Put back as it was for the cases below.
    const back = (await h.http.post('/v1/policies').set('Cookie', owner).send({ note: 'restore', document: base.document })).body;
    expect((await h.http.post(`/v1/policies/${back.id}/activate`).set('Cookie', owner).send({})).status).toBe(200);
  });

  it("a glob that would backtrack for ever on a long resource answers at once (no org's policy holds the API); more than 8 wildcards are refused", async () => {
    const active = (await h.http.get('/v1/policies/active').set('Cookie', owner)).body;
    const rule = (resources: string[]) => ({ id: 'org.many-stars', scope: { type: 'org' }, actions: ['file.read'], level: 'watched', when: { resources }, reason: 'a pathological glob' });
    const tooMany = await h.http.post('/v1/policies').set('Cookie', owner).send({ note: 'nine', document: { ...active.document, rules: [...active.document.rules, rule(['*a*a*a*a*a*a*a*a*b'])] } });
    expect(tooMany.status).toBe(400);
    expect(JSON.stringify(tooMany.body)).toMatch(/at most 8 wildcards/);
    const draft = await h.http.post('/v1/policies').set('Cookie', owner).send({ note: 'eight', document: { ...active.document, rules: [...active.document.rules, rule(['*a*a*a*a*a*a*a*b'])] } });
    expect(draft.status).toBe(201);
    const res = await h.http.post('/v1/policies/explain').set('Cookie', owner).send({ policyId: draft.body.id, action: 'file.read', context: { resources: ['a'.repeat(2000)] } });
    expect(res.status).toBe(200);
    expect(res.body.ruleIds).not.toContain('org.many-stars');
    const hit = await h.http.post('/v1/policies/explain').set('Cookie', owner).send({ policyId: draft.body.id, action: 'file.read', context: { resources: [`${'a'.repeat(1000)}b`] } });
    expect(hit.body).toMatchObject({ level: 'watched', ruleIds: expect.arrayContaining(['org.many-stars']) });
    expect((await h.http.delete(`/v1/policies/${draft.body.id}`).set('Cookie', owner)).status).toBe(204);
  });

  it('the revision history cannot be rewritten, even with the runtime role: no active or archived document changes, no version goes back, only drafts are deleted', async () => {
    const [active] = await inOrg(h.ds, { orgId: org.id }, (em) => em.query(`SELECT id, document FROM policies WHERE org_id = $1 AND status = 'active'`, [org.id]));
    const [archived] = await inOrg(h.ds, { orgId: org.id }, (em) => em.query(`SELECT id FROM policies WHERE org_id = $1 AND status = 'archived' LIMIT 1`, [org.id]));
    expect(archived).toBeDefined();
    const attempt = (sql: string, params: unknown[]) => inOrg(h.ds, { orgId: org.id }, (em) => em.query(sql, params)).then(() => 'done', (e: Error) => e.message);
    const loosened = { ...active.document, forbiddenAreas: [] };
    expect(await attempt(`UPDATE policies SET document = $2, updated_at = now() WHERE org_id = $1 AND id = $3`, [org.id, JSON.stringify(loosened), active.id])).toMatch(/its document is history/);
    expect(await attempt(`UPDATE policies SET status = 'active' WHERE org_id = $1 AND id = $2`, [org.id, archived.id])).toMatch(/cannot go from archived to active/);
    expect(await attempt(`DELETE FROM policies WHERE org_id = $1 AND id = $2`, [org.id, archived.id])).toMatch(/only drafts are deleted/);
    const [still] = await inOrg(h.ds, { orgId: org.id }, (em) => em.query(`SELECT document FROM policies WHERE org_id = $1 AND id = $2`, [org.id, active.id]));
    expect(still.document).toEqual(active.document);
    // What the API does still works: a draft is edited, deleted, or activated (the active one archived).
    const draft = (await h.http.post('/v1/policies').set('Cookie', owner).send({ note: 'still editable' })).body;
    expect((await h.http.patch(`/v1/policies/${draft.id}`).set('Cookie', owner).send({ document: draft.document, note: 'edited' })).status).toBe(200);
    expect((await h.http.delete(`/v1/policies/${draft.id}`).set('Cookie', owner)).status).toBe(204);
  });

  it('explains a decision for a member of a group, rule by rule', async () => {
    const group = await h.http.post('/v1/groups').set('Cookie', owner).send({ name: 'Finance' });
    expect((await h.http.put(`/v1/groups/${group.body.id}/members/${org.users.member.id}`).set('Cookie', owner)).status).toBe(204);
    const active = (await h.http.get('/v1/policies/active').set('Cookie', owner)).body;
    const document = active.document;
    document.rules.push({ id: 'finance.drive-update', scope: { type: 'group', id: group.body.id }, actions: ['drive.update'], level: 'batched', reason: 'finance edits its own models' });
    document.approvals.push({ id: 'route.finance', actions: ['email.send'], approverGroup: group.body.id, quorum: 2 });
    const draft = await h.http.post('/v1/policies').set('Cookie', owner).send({ note: 'finance', document });
    expect(draft.status).toBe(201);
    expect((await h.http.post(`/v1/policies/${draft.body.id}/activate`).set('Cookie', owner).send({})).status).toBe(200);

    const mine = await h.http.post('/v1/policies/explain').set('Cookie', member).send({ action: 'drive.update', context: {} });
    expect(mine.body).toMatchObject({ level: 'batched', ruleIds: ['finance.drive-update'], caslAuthorized: true });
    expect(mine.body.steps.map((s: { stage: string; effect: string }) => `${s.stage}:${s.effect}`)).toEqual(['base:set', 'user:no_match', 'workflow:no_match', 'group:set']);
    const theirs = await h.http.post('/v1/policies/explain').set('Cookie', owner).send({ action: 'drive.update', userId: org.users.auditor.id, context: {} });
    expect(theirs.body).toMatchObject({ level: 'watched', ruleIds: ['baseline.drive.update'] });
    // A member may not decide for someone else: it would tell who is a member and which groups they are in.
    const probing = await h.http.post('/v1/policies/explain').set('Cookie', member).send({ action: 'drive.update', userId: org.users.auditor.id, context: {} });
    expect(probing.status).toBe(403);
    const unknown = await h.http.post('/v1/policies/explain').set('Cookie', member).send({ action: 'drive.update', userId: newId(), context: {} });
    expect(unknown.status).toBe(403);
    const mail = await h.http.post('/v1/policies/explain').set('Cookie', member).send({ action: 'email.send', context: { recipients: ['client@customer.example'] } });
    expect(mail.body).toMatchObject({ level: 'watched', routing: { routeId: 'route.finance', approverGroup: group.body.id, quorum: 2 } });
    expect(mail.body.reason).toBe('Watched: email to an external domain (rule org.email-external)');
    // A post that reaches outside the org (a channel shared with another company) carrying personal data: the seed's forbidden area.
    const shared = await h.http.post('/v1/policies/explain').set('Cookie', member).send({ action: 'chat.send', context: { labels: ['pii'], outside: true } });
    expect(shared.body).toMatchObject({ level: 'forbidden', ruleIds: expect.arrayContaining(['fa.pii-external-write']), caslAuthorized: false });
    // The group is referenced by the active policy; activating a draft after it is gone is refused.
    const stale = await h.http.post('/v1/policies').set('Cookie', owner).send({ note: 'stale' });
    expect((await h.http.delete(`/v1/groups/${group.body.id}`).set('Cookie', owner)).status).toBe(204);
    const refused = await h.http.post(`/v1/policies/${stale.body.id}/activate`).set('Cookie', owner).send({});
    expect(refused.status).toBe(400);
    expect(refused.body.errors.map((e: { message: string }) => e.message)).toEqual(expect.arrayContaining([`no group ${group.body.id} in this org`]));
  });

  it('documents each workflow\'s classification from the policy', async () => {
    const wf = await h.http.post('/v1/workflows').set('Cookie', admin).send({
      key: 'contract-triage',
      name: 'Contract risk triage',
      description: 'Pull unsigned contracts from DocuSign, grade them, ping legal on Slack',
      actionTypes: ['saas.read', 'drive.create', 'chat.send', 'contract.send'],
    });
    expect(wf.status).toBe(201);
    const active = (await h.http.get('/v1/policies/active').set('Cookie', owner)).body;
    const document = active.document;
    document.rules = document.rules.filter((r: { id: string }) => r.id !== 'finance.drive-update');
    document.approvals = [];
    document.rules.push({ id: 'wf.triage-slack', scope: { type: 'workflow', id: 'contract-triage' }, actions: ['chat.send'], level: 'batched', reason: 'pings to #legal are reviewed afterwards' });
    const draft = await h.http.post('/v1/policies').set('Cookie', owner).send({ note: 'triage', document });
    expect(draft.status).toBe(201);
    expect((await h.http.post(`/v1/policies/${draft.body.id}/activate`).set('Cookie', owner).send({})).status).toBe(200);
    const c = await h.http.get(`/v1/workflows/${wf.body.id}/classification`).set('Cookie', member);
    expect(c.status).toBe(200);
    expect(c.body.classification).toBe('forbidden');
    expect(c.body.actions.map((a: { action: string; level: string }) => `${a.action}:${a.level}`)).toEqual(['saas.read:autonomous', 'drive.create:batched', 'chat.send:batched', 'contract.send:forbidden']);
    expect((await h.http.delete(`/v1/workflows/${wf.body.id}`).set('Cookie', admin)).status).toBe(409);
  });

  it('serves the action catalog with defaults and floors', async () => {
    const res = await h.http.get('/v1/catalog/actions').set('Cookie', member);
    const send = res.body.actions.find((a: { type: string }) => a.type === 'email.send');
    expect(send).toMatchObject({ default: 'watched', floor: 'watched', facts: ['recipients', 'content'] });
    expect(res.body.actions.map((a: { type: string }) => a.type)).toEqual(expect.arrayContaining(['model.invoke', 'unknown']));
    const pay = await h.http.post('/v1/policies/explain').set('Cookie', member).send({ action: 'payment.execute', context: { amount: 10 } });
    expect(pay.body).toMatchObject({ level: 'forbidden', ruleIds: ['baseline.payment.execute', 'fa.payments'], caslAuthorized: false });
  });
});
