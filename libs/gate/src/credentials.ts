import { AsyncLocalStorage } from 'node:async_hooks';
import type { DataSource, EntityManager } from 'typeorm';
import { type AuditKeyring, type Client, prepareEvent, recordEvent } from '@steward/audit';
import { type EgressOptions, newId } from '@steward/common';
import { ConnectorError } from '@steward/connectors';
import { inOrg } from '@steward/db';
import { credentialAad, type KeyProvider, OAuthError, type OAuthTokens, openSecret, refreshTokens, sealSecret } from '@steward/vault';

/**
 * Credentials for agent actions, decrypted for one call only.
 *
 * The gate runs each connector call inside `actionScope` (org, employee, action id). A connector
 * runtime asks `CredentialBroker.forCall()` for its credential at the moment it sends the request;
 * the broker reads the live credential (the employee's own for per-user connectors, the org's
 * otherwise) in one transaction that also reads the kill switch, decrypts it, and records the
 * decrypt as an audit event naming the action — so every use of a secret is tied to the action
 * it served, and nothing decrypted outlives the call. OAuth access tokens that expire within a
 * minute are refreshed first (under a row lock: concurrent actions wait and share the new token);
 * a refused refresh marks the connection "needs re-authorisation" and the tool fails clearly.
 */
export interface ActionScope {
  orgId: string;
  userId: string;
  /** The action the call serves (null: a remote server's session set-up for the task). */
  actionId: string | null;
  taskId: string | null;
  client: Client;
  /** Not an agent's action: Steward's own notice, posted through the org's connector with the credential of the member the settings name (audited as such). */
  purpose?: 'notice';
  /** Credentials the gate opened for this action after its claim committed (connector id → credential). */
  prefetched?: Map<string, CallCredential>;
}

/** A credential read ahead of an action's claim: sealed; opened only once the claim (with its decrypt event) committed. */
export interface PreparedCredential {
  target: CredentialTarget;
  row: Row;
}

export const actionScope = new AsyncLocalStorage<ActionScope>();

/** Who a credential's use is audited as: the agent's task, or the system for Steward's own notices. */
const actorOf = (scope: ActionScope): { type: 'agent_task' | 'system'; id: string | null } => (scope.purpose === 'notice' ? { type: 'system', id: null } : { type: 'agent_task', id: scope.taskId });

/** What the broker needs to know of an installed connector. */
export interface CredentialTarget {
  id: string;
  name: string;
  credentialScope: 'org' | 'user';
  auth:
    | { kind: 'none' }
    | { kind: 'api_key'; header: string; scheme?: string | null }
    | { kind: 'oauth2'; authorizationUrl: string; tokenUrl: string; clientId: string; scopes: string[] };
}

/** The credential a connector runtime sends (the shape libs/connectors' built-ins take). */
export type CallCredential = { accessToken: string } | { apiKey: string };

const REFRESH_MARGIN_MS = 60_000;

interface Row {
  id: string;
  connector_id: string;
  user_id: string | null;
  kind: 'secret' | 'oauth2' | 'oauth_client';
  status: 'active' | 'needs_reauth' | 'revoked';
  sealed: Buffer | null;
  wrapped_key: string | null;
  /** Which credentialAad sealed it: 2 names the owner, 1 (sealed before) does not. */
  aad_version: number;
  expires_at: Date | null;
}

const authRequired = (target: CredentialTarget, why: string) => new ConnectorError('auth_required', `${target.name}: ${why}`, { connector: target.name });

export class CredentialBroker {
  private readonly rows = new Map<string, { row: Row; until: number }>();

  constructor(
    private readonly ds: DataSource,
    private readonly keys: KeyProvider,
    private readonly keyring: AuditKeyring,
    /** Egress rules for the OAuth token endpoint (the org's allowed hosts added by the caller). */
    private readonly egress: (orgId: string) => Promise<EgressOptions> = async () => ({}),
  ) {}

  /**
   * The credential of `target` for the action in scope (or, outside any action, the `fallback`
   * scope: a task's session set-up); throws a ConnectorError the gate reports as the call's failure.
   */
  async forCall(target: CredentialTarget, fallback?: ActionScope): Promise<CallCredential> {
    const scope = actionScope.getStore() ?? fallback;
    if (!scope) throw authRequired(target, 'a credential is only released for an action that passed the gate');
    const ready = scope.prefetched?.get(target.id);
    if (ready) return ready;
    if (target.auth.kind === 'none') throw authRequired(target, 'this connector takes no credential');
    const kind = target.auth.kind === 'oauth2' ? 'oauth2' : 'secret';
    const owner = target.credentialScope === 'user' ? scope.userId : null;
    const tokens = await inOrg(this.ds, { orgId: scope.orgId, userId: scope.userId }, async (em): Promise<{ plain: string; refreshId?: undefined } | { plain?: undefined; refreshId: string }> => {
      await this.assertRunning(em, scope, target);
      const row = await this.live(em, scope.orgId, target.id, kind, owner, false);
      if (!row) throw authRequired(target, owner ? 'you have not connected this connector yet' : 'the org has not set its credential yet');
      if (row.status === 'needs_reauth') throw authRequired(target, 'the connection needs re-authorisation');
      if (kind === 'secret' || !row.expires_at || row.expires_at.getTime() - Date.now() >= REFRESH_MARGIN_MS) {
        return { plain: await this.decrypt(em, scope, target, row, scope.purpose ?? (scope.actionId ? 'action' : 'session')) };
      }
      return { refreshId: row.id };
    });
    if (tokens.plain !== undefined) return kind === 'secret' ? { apiKey: tokens.plain } : { accessToken: (JSON.parse(tokens.plain) as OAuthTokens).accessToken };
    return { accessToken: (await this.refresh(scope, target, tokens.refreshId)).accessToken };
  }

  /**
   * The gate's fast path: the live credential of `target` for this employee, read (from a cache of
   * at most a second) before the action's claim, so that the decrypt's audit event commits with the
   * claim — whose statement checks again that this is still the live credential. Null where the
   * usual path must run instead (none yet, needs re-authorisation, an OAuth token to refresh).
   */
  async prepare(target: CredentialTarget, orgId: string, userId: string): Promise<PreparedCredential | null> {
    const row = await this.liveRow(target, orgId, userId);
    if (!row || row.status !== 'active' || !row.sealed || !row.wrapped_key) return null;
    if (row.kind === 'oauth2' && row.expires_at && row.expires_at.getTime() - Date.now() < REFRESH_MARGIN_MS) return null;
    return { target, row };
  }

  /** The id of the credential an action of this employee would run with (what an approval is bound to). */
  async liveCredentialId(target: CredentialTarget, orgId: string, userId: string): Promise<string | null> {
    return (await this.liveRow(target, orgId, userId))?.id ?? null;
  }

  private async liveRow(target: CredentialTarget, orgId: string, userId: string): Promise<Row | undefined> {
    if (target.auth.kind === 'none') return undefined;
    const kind = target.auth.kind === 'oauth2' ? 'oauth2' : 'secret';
    const owner = target.credentialScope === 'user' ? userId : null;
    const key = `${orgId}/${target.id}/${owner ?? 'org'}`;
    const hit = this.rows.get(key);
    let row: Row | undefined;
    if (hit && hit.until > Date.now()) row = hit.row;
    else {
      row = await inOrg(this.ds, { orgId }, (em) => this.live(em, orgId, target.id, kind, owner, false));
      if (this.rows.size >= 10_000) this.rows.clear();
      if (row) this.rows.set(key, { row, until: Date.now() + 1000 });
    }
    return row;
  }

  /** Forgets what `prepare` cached for a connector (its credential changed). */
  forget(orgId: string, connectorId: string): void {
    for (const key of this.rows.keys()) if (key.startsWith(`${orgId}/${connectorId}/`)) this.rows.delete(key);
  }

  /** The audit event of a prepared credential's decrypt, to commit with the action's claim. */
  async decryptEvent(p: PreparedCredential, scope: ActionScope, em: EntityManager): Promise<{ id: string; at: Date; canonical: string }> {
    const e = await prepareEvent(em, this.keyring, this.decryptEventInput(scope, p.target, p.row, 'action'));
    return { id: e.id, at: e.occurredAt, canonical: e.canonical };
  }

  /** Opens a prepared credential (after the claim with its decrypt event committed). */
  async open(p: PreparedCredential, orgId: string): Promise<CallCredential> {
    const plain = (await openSecret(this.keys, { sealed: p.row.sealed!, wrappedKey: p.row.wrapped_key! }, credentialAad(orgId, p.row.connector_id, p.row.id, p.row.user_id, p.row.aad_version))).toString('utf8');
    return p.row.kind === 'secret' ? { apiKey: plain } : { accessToken: (JSON.parse(plain) as OAuthTokens).accessToken };
  }

  private decryptEventInput(scope: ActionScope, target: CredentialTarget, row: Row, purpose: 'action' | 'session' | 'refresh' | 'oauth_client' | 'notice') {
    return {
      id: newId(),
      orgId: scope.orgId,
      occurredAt: new Date(),
      actor: actorOf(scope),
      action: 'credential.decrypt',
      target: { type: 'Credential', id: row.id },
      outcome: 'success' as const,
      task: scope.taskId,
      connector: target.name,
      client: scope.client,
      payload: { connectorId: row.connector_id, credentialOwner: row.user_id ?? 'org', kind: row.kind, purpose, actionId: scope.actionId, userId: scope.userId },
    };
  }

  private async assertRunning(em: EntityManager, scope: ActionScope, target: CredentialTarget): Promise<void> {
    // The kill switch refuses decrypts, and so does the suspension of the member an agent acts for
    // (a task's connector session opens before its first action reaches the gate). Read in this
    // transaction, never from a cache. A reviewer's undo or finishing step (client `rest`) is a
    // person's act on the member's work: the review itself decides whether the member must be active.
    const [org]: { paused: boolean; status: string | null }[] = await em.query(
      'SELECT o.agents_paused_at IS NOT NULL AS paused, m.status FROM orgs o LEFT JOIN memberships m ON m.org_id = o.id AND m.user_id = $2 WHERE o.id = $1',
      [scope.orgId, scope.userId],
    );
    if (!org || org.paused) throw new ConnectorError('auth_required', `${target.name}: agents are paused in this org (kill switch); no credential is released`, { connector: target.name, paused: true });
    if (scope.client !== 'rest' && org.status !== 'active') throw new ConnectorError('auth_required', `${target.name}: the member this agent acts for is not active (suspended or removed); no credential is released`, { connector: target.name, suspended: true });
  }

  private async live(em: EntityManager, orgId: string, connectorId: string, kind: Row['kind'], owner: string | null, lock: boolean): Promise<Row | undefined> {
    const [row] = await em.query(
      `SELECT id, connector_id, user_id, kind, status, sealed, wrapped_key, aad_version, expires_at FROM credentials
        WHERE org_id = $1 AND connector_id = $2 AND kind = $3 AND user_id IS NOT DISTINCT FROM $4 AND status <> 'revoked'${lock ? ' FOR UPDATE' : ''}`,
      [orgId, connectorId, kind, owner],
    );
    return row;
  }

  /** Decrypts in the caller's transaction, with its audit event in the same transaction. */
  private async decrypt(em: EntityManager, scope: ActionScope, target: CredentialTarget, row: Row, purpose: 'action' | 'session' | 'refresh' | 'oauth_client' | 'notice'): Promise<string> {
    if (!row.sealed || !row.wrapped_key) throw authRequired(target, 'the credential was revoked');
    const plain = await openSecret(this.keys, { sealed: row.sealed, wrappedKey: row.wrapped_key }, credentialAad(scope.orgId, row.connector_id, row.id, row.user_id, row.aad_version));
    await em.query('UPDATE credentials SET last_used_at = now() WHERE org_id = $1 AND id = $2', [scope.orgId, row.id]);
    await recordEvent(em, this.keyring, this.decryptEventInput(scope, target, row, purpose));
    return plain.toString('utf8');
  }

  /** Refreshes an OAuth credential under its row lock; a refused refresh marks it "needs re-authorisation". */
  private async refresh(scope: ActionScope, target: CredentialTarget, id: string): Promise<OAuthTokens> {
    if (target.auth.kind !== 'oauth2') throw authRequired(target, 'this connector does not use OAuth');
    const auth = target.auth;
    const egress = await this.egress(scope.orgId);
    const outcome = await inOrg(this.ds, { orgId: scope.orgId, userId: scope.userId }, async (em): Promise<{ tokens: OAuthTokens } | { error: ConnectorError }> => {
      await this.assertRunning(em, scope, target);
      const [row]: Row[] = await em.query(`SELECT id, connector_id, user_id, kind, status, sealed, wrapped_key, aad_version, expires_at FROM credentials WHERE org_id = $1 AND id = $2 FOR UPDATE`, [scope.orgId, id]);
      if (!row || row.status === 'revoked') return { error: authRequired(target, 'the credential was revoked') };
      if (row.status === 'needs_reauth') return { error: authRequired(target, 'the connection needs re-authorisation') };
      const current = JSON.parse(await this.decrypt(em, scope, target, row, 'refresh')) as OAuthTokens;
      // Another action refreshed it while this one waited for the lock.
      if (row.expires_at && row.expires_at.getTime() - Date.now() >= REFRESH_MARGIN_MS) return { tokens: current };
      const markFailed = async (message: string) => {
        await em.query(`UPDATE credentials SET status = 'needs_reauth', last_error = $3 WHERE org_id = $1 AND id = $2`, [scope.orgId, id, message.slice(0, 1000)]);
        await recordEvent(em, this.keyring, {
          id: newId(),
          orgId: scope.orgId,
          occurredAt: new Date(),
          actor: actorOf(scope),
          action: 'credential.refresh',
          target: { type: 'Credential', id },
          outcome: 'failure',
          task: scope.taskId,
          connector: target.name,
          client: scope.client,
          payload: { connectorId: row.connector_id, actionId: scope.actionId, reason: message.slice(0, 300) },
        });
        return { error: authRequired(target, `the connection needs re-authorisation (${message.slice(0, 300)})`) };
      };
      if (!current.refreshToken) return markFailed('the access token expired and there is no refresh token');
      const client = await this.live(em, scope.orgId, target.id, 'oauth_client', null, false);
      const clientSecret = client ? await this.decrypt(em, scope, target, client, 'oauth_client') : undefined;
      let next: OAuthTokens;
      try {
        next = await refreshTokens({ authorizationUrl: auth.authorizationUrl, tokenUrl: auth.tokenUrl, clientId: auth.clientId, clientSecret, scopes: auth.scopes }, current.refreshToken, { egress });
      } catch (err) {
        if (err instanceof OAuthError && (err.kind === 'invalid_grant' || err.kind === 'refused')) return markFailed(err.message);
        // Unreachable or a bad answer: nothing changes, the next action tries again.
        return { error: new ConnectorError('upstream_unreachable', `${target.name}: the token refresh failed (${err instanceof Error ? err.message.slice(0, 300) : 'error'})`, { connector: target.name }) };
      }
      const s = await sealSecret(this.keys, JSON.stringify(next), credentialAad(scope.orgId, row.connector_id, id, row.user_id));
      await em.query(`UPDATE credentials SET sealed = $3, wrapped_key = $4, aad_version = 2, expires_at = $5, refreshed_at = now(), last_error = NULL WHERE org_id = $1 AND id = $2`, [
        scope.orgId,
        id,
        s.sealed,
        s.wrappedKey,
        next.expiresAt ? new Date(next.expiresAt) : null,
      ]);
      await recordEvent(em, this.keyring, {
        id: newId(),
        orgId: scope.orgId,
        occurredAt: new Date(),
        actor: actorOf(scope),
        action: 'credential.refresh',
        target: { type: 'Credential', id },
        outcome: 'success',
        task: scope.taskId,
        connector: target.name,
        client: scope.client,
        payload: { connectorId: row.connector_id, actionId: scope.actionId },
      });
      return { tokens: next };
    });
    if ('error' in outcome) throw outcome.error;
    return outcome.tokens;
  }
}
