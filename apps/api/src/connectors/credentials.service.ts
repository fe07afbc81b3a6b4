import { createHash } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { AppError, type Config, type EgressOptions, type EgressResolver, ErrorCode, newId, orgEgressOptions, UUID_PATTERN } from '@steward/common';
import { type EntityManager, orgAllowHosts, queryReturning } from '@steward/db';
import {
  authorizationRequest,
  ConfigKeyProvider,
  credentialAad,
  exchangeCode,
  type KeyProvider,
  type OAuthClientConfig,
  type OAuthTokens,
  oauthStateAad,
  openSecret,
  refreshTokens,
  revokeAtProvider,
  sealSecret,
} from '@steward/vault';
import type { z } from 'zod';
import { AccessService } from '../access/access.service';
import { AuditService } from '../audit/audit.service';
import type { Principal } from '../auth/principal';
import { Db } from '../core/db.service';
import { CONFIG, EGRESS_RESOLVER } from '../core/tokens';
import type { CredentialView, ListCredentialsQuery, OAuthCallbackBody, OAuthStartBody, RevokedCredentialView, RotateCredentialBody, SetCredentialBody } from './connectors.schemas';
import { listRemoteTools, upstreamProblem } from './upstream';

export type AuthConfig =
  | { kind: 'none' }
  | { kind: 'api_key'; header: string; scheme: string }
  | { kind: 'oauth2'; authorizationUrl: string; tokenUrl: string; clientId: string; scopes: string[]; revocationUrl?: string };

export interface ConnectorRow {
  id: string;
  catalog_id: string | null;
  kind: 'builtin' | 'remote';
  name: string;
  url: string | null;
  auth: AuthConfig;
  credential_scope: 'org' | 'user';
  status: 'active' | 'unreachable' | 'needs_credential';
  last_error: string | null;
  discovered_at: Date | null;
  relay_sampling: boolean;
  relay_elicitation: boolean;
  created_at: Date;
  updated_at: Date;
}

interface CredentialRow {
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
  last_error: string | null;
  created_at: Date;
  rotated_at: Date | null;
  refreshed_at: Date | null;
  last_used_at: Date | null;
  revoked_at: Date | null;
}

/** Why a credential is decrypted; recorded with every decrypt. */
export type DecryptPurpose = 'discover' | 'test' | 'refresh' | 'oauth_exchange' | `tool:${string}`;

const CRED_COLUMNS = 'id, connector_id, user_id, kind, status, sealed, wrapped_key, aad_version, expires_at, last_error, created_at, rotated_at, refreshed_at, last_used_at, revoked_at';
/** Refresh an access token this long before it expires. */
const REFRESH_MARGIN_MS = 60_000;
const STATE_TTL_MS = 10 * 60_000;

const iso = (d: Date | null) => (d ? new Date(d).toISOString() : null);

function view(r: CredentialRow): z.infer<typeof CredentialView> {
  return {
    id: r.id,
    connectorId: r.connector_id,
    userId: r.user_id,
    kind: r.kind,
    status: r.status,
    expiresAt: iso(r.expires_at),
    lastError: r.last_error,
    createdAt: iso(r.created_at)!,
    rotatedAt: iso(r.rotated_at),
    refreshedAt: iso(r.refreshed_at),
    lastUsedAt: iso(r.last_used_at),
    revokedAt: iso(r.revoked_at),
  };
}

const reauth = (detail: string) => new AppError(409, ErrorCode.ReauthorizationRequired, 'Re-authorisation required', detail);

/**
 * The credential vault behind the API: write-only secrets (never returned), one random data key
 * per credential (AES-256-GCM, AAD = org, connector and credential ids) wrapped by the KEK, every
 * decrypt audited (who, which credential, why), OAuth (code + PKCE) with refresh before expiry.
 */
@Injectable()
export class CredentialsService {
  readonly keys: KeyProvider;

  constructor(
    @Inject(CONFIG) private readonly config: Config,
    @Inject(EGRESS_RESOLVER) private readonly resolver: EgressResolver,
    private readonly db: Db,
    private readonly access: AccessService,
    private readonly audit: AuditService,
  ) {
    this.keys = new ConfigKeyProvider(config.STEWARD_MASTER_KEY);
  }

  /**
   * The authorization code comes back only to this deployment's own console (or API): the origin
   * of STEWARD_CONSOLE_URL or STEWARD_PUBLIC_URL, or a loopback address outside production (or
   * when no public URL is set). Another address could collect a colleague's code where a
   * provider's redirect registration is loose.
   */
  private assertOwnRedirect(redirectUri: string): void {
    const url = new URL(redirectUri);
    const own = [this.config.STEWARD_CONSOLE_URL, this.config.STEWARD_PUBLIC_URL].filter((u): u is string => !!u).map((u) => new URL(u).origin.toLowerCase());
    const loopback = (this.config.NODE_ENV !== 'production' || !this.config.STEWARD_PUBLIC_URL) && ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname.toLowerCase());
    if (!own.includes(url.origin.toLowerCase()) && !loopback) {
      throw AppError.validation([{ path: 'redirectUri', message: `must be on this deployment's console (${own.join(', ') || 'set STEWARD_CONSOLE_URL'})` }]);
    }
  }

  /** Egress options of an org: the operator's allowlist plus the hosts the org's admins allowed. */
  async egressFor(em: EntityManager, orgId: string): Promise<EgressOptions> {
    return orgEgressOptions(this.config, await orgAllowHosts(em, orgId), { resolver: this.resolver });
  }

  async connector(em: EntityManager, orgId: string, id: string): Promise<ConnectorRow | undefined> {
    if (!UUID_PATTERN.test(id)) return undefined;
    const [row] = await em.query('SELECT * FROM connectors WHERE org_id = $1 AND id = $2', [orgId, id]);
    return row;
  }

  private async credential(em: EntityManager, orgId: string, id: string, lock = false): Promise<CredentialRow | undefined> {
    if (!UUID_PATTERN.test(id)) return undefined;
    const [row] = await em.query(`SELECT ${CRED_COLUMNS} FROM credentials WHERE org_id = $1 AND id = $2${lock ? ' FOR UPDATE' : ''}`, [orgId, id]);
    return row;
  }

  /** The live credential of a connector for an owner (null: the org's), if any. */
  private async liveCredential(em: EntityManager, orgId: string, connectorId: string, kind: CredentialRow['kind'], userId: string | null, lock = false): Promise<CredentialRow | undefined> {
    const [row] = await em.query(
      `SELECT ${CRED_COLUMNS} FROM credentials WHERE org_id = $1 AND connector_id = $2 AND kind = $3 AND user_id IS NOT DISTINCT FROM $4 AND status <> 'revoked'${lock ? ' FOR UPDATE' : ''}`,
      [orgId, connectorId, kind, userId],
    );
    return row;
  }

  /** Seals a credential's secret bound to its org, connector, id and owner (a user, or null: the org). Rows it writes say `aad_version = 2`. */
  private async seal(orgId: string, connectorId: string, id: string, owner: string | null, plaintext: string) {
    return sealSecret(this.keys, plaintext, credentialAad(orgId, connectorId, id, owner));
  }

  /** Decrypts a credential in the caller's transaction, with its audit event in the same transaction. */
  private async decrypt(em: EntityManager, p: Principal, row: CredentialRow, purpose: DecryptPurpose): Promise<string> {
    if (!row.sealed || !row.wrapped_key) throw reauth('The credential was revoked.');
    // The kill switch refuses decrypts too (read in this transaction, never from a cache).
    const [org] = await em.query('SELECT agents_paused_at FROM orgs WHERE id = $1', [p.orgId]);
    if (org?.agents_paused_at) throw AppError.conflict('Agents are paused in this org (kill switch): no credential can be used until they are resumed.');
    // The row was read in an earlier transaction: it must still be the live one now (a revocation or
    // rotation committed meanwhile wins), and stays so until this transaction ends (FOR SHARE).
    const [live]: { sealed: Buffer; wrapped_key: string }[] = await em.query(
      `SELECT sealed, wrapped_key FROM credentials WHERE org_id = $1 AND id = $2 AND status <> 'revoked' AND wrapped_key = $3 AND sealed = $4 FOR SHARE`,
      [p.orgId, row.id, row.wrapped_key, row.sealed],
    );
    if (!live) throw reauth('The credential was revoked or replaced meanwhile.');
    const plain = await openSecret(this.keys, { sealed: live.sealed, wrappedKey: live.wrapped_key }, credentialAad(p.orgId, row.connector_id, row.id, row.user_id, row.aad_version));
    await em.query('UPDATE credentials SET last_used_at = now() WHERE org_id = $1 AND id = $2', [p.orgId, row.id]);
    await this.audit.record(em, p, {
      action: 'credential.decrypt',
      targetType: 'Credential',
      targetId: row.id,
      payload: { connectorId: row.connector_id, credentialOwner: row.user_id ?? 'org', kind: row.kind, purpose },
    });
    return plain.toString('utf8');
  }

  /** Checks a scope against the connector's and the caller's permission to set credentials of that scope. */
  private async assertMaySet(p: Principal, connector: ConnectorRow, scope: 'org' | 'user'): Promise<void> {
    if (scope !== connector.credential_scope) {
      throw AppError.validation([{ path: 'scope', message: `this connector takes ${connector.credential_scope === 'org' ? "the org's shared credential" : "each member's own credential"}` }]);
    }
    if (scope === 'org') {
      if (this.access.reach(p, 'set', 'Credential') !== 'all') {
        // The connector is visible to the caller, so this is a denial (403, audited), not a 404.
        await this.db.inOrg(p, (em) =>
          this.audit.record(em, p, { action: 'credential.set', targetType: 'Connector', targetId: connector.id, outcome: 'denied', payload: { reason: 'rbac', scope: 'org' } }),
        );
        throw AppError.forbidden("Only admins set the org's shared credential of a connector.");
      }
    } else {
      await this.access.authorize(p, 'set', 'Credential', { id: connector.id, userId: p.userId });
    }
  }

  private async assertOnRecord(p: Principal, action: 'read' | 'test' | 'rotate' | 'revoke', row: CredentialRow): Promise<void> {
    await this.access.authorize(p, action, 'Credential', { id: row.id, ...(row.user_id ? { userId: row.user_id } : {}) });
  }

  // ------------------------------------------------------------------------------------------
  // Metadata

  async list(p: Principal, q: z.infer<typeof ListCredentialsQuery>) {
    await this.access.authorize(p, 'read', 'Credential');
    const reach = this.access.reach(p, 'read', 'Credential');
    return this.db.inOrg(p, async (em) => {
      const rows: CredentialRow[] = await em.query(
        `SELECT ${CRED_COLUMNS} FROM credentials WHERE org_id = $1 AND ($2::uuid IS NULL OR connector_id = $2) AND ($3::uuid IS NULL OR user_id = $3)
         ORDER BY created_at DESC LIMIT 500`,
        [p.orgId, q.connectorId ?? null, reach === 'all' ? null : p.userId],
      );
      return { items: rows.map(view) };
    });
  }

  // ------------------------------------------------------------------------------------------
  // Set, rotate, revoke

  async set(p: Principal, connectorId: string, body: z.infer<typeof SetCredentialBody>) {
    await this.access.authorize(p, 'read', 'Connector');
    return this.db.inOrg(p, async (em) => {
      const connector = await this.connector(em, p.orgId, connectorId);
      if (!connector) throw AppError.notFound('connector');
      const scope = body.scope ?? connector.credential_scope;
      await this.assertMaySet(p, connector, scope);
      await this.access.requireStepUp(em, p);
      if (connector.auth.kind !== 'api_key') {
        throw AppError.conflict(connector.auth.kind === 'oauth2' ? 'This connector uses OAuth: connect it with POST /v1/connectors/{id}/oauth/start.' : 'This connector takes no credential.');
      }
      const userId = scope === 'user' ? p.userId : null;
      if (await this.liveCredential(em, p.orgId, connector.id, 'secret', userId)) throw AppError.conflict('A credential is already set: rotate it, or revoke it first.');
      const id = newId();
      const s = await this.seal(p.orgId, connector.id, id, userId, body.secret);
      await em.query(`INSERT INTO credentials (org_id, id, connector_id, user_id, kind, status, sealed, wrapped_key, created_by) VALUES ($1, $2, $3, $4, 'secret', 'active', $5, $6, $7)`, [
        p.orgId,
        id,
        connector.id,
        userId,
        s.sealed,
        s.wrappedKey,
        p.userId,
      ]);
      if (connector.status === 'needs_credential') await em.query(`UPDATE connectors SET status = 'active', updated_at = now() WHERE org_id = $1 AND id = $2`, [p.orgId, connector.id]);
      // Never the secret: only that one was set, for whom.
      await this.audit.record(em, p, { action: 'credential.set', targetType: 'Credential', targetId: id, payload: { connectorId: connector.id, scope, kind: 'secret', kekVersion: this.keys.currentVersion() } });
      return view((await this.credential(em, p.orgId, id))!);
    });
  }

  async rotate(p: Principal, id: string, body: z.infer<typeof RotateCredentialBody>) {
    await this.access.authorize(p, 'read', 'Credential');
    const row = await this.db.inOrg(p, async (em) => {
      const r = await this.credential(em, p.orgId, id);
      if (!r) throw AppError.notFound('credential');
      await this.assertOnRecord(p, 'rotate', r);
      if (r.status === 'revoked') throw AppError.conflict('The credential is revoked: set a new one.');
      await this.access.requireStepUp(em, p);
      return r;
    });
    if (row.kind === 'oauth2') {
      if (body.secret !== undefined) throw AppError.validation([{ path: 'secret', message: 'OAuth credentials rotate by refreshing: send no secret' }]);
      await this.refresh(p, row.id, true);
    } else {
      if (body.secret === undefined) throw AppError.validation([{ path: 'secret', message: 'the new secret is required' }]);
      const s = await this.seal(p.orgId, row.connector_id, row.id, row.user_id, body.secret);
      await this.db.inOrg(p, async (em) => {
        const updated = await queryReturning(
          em,
          `UPDATE credentials SET sealed = $3, wrapped_key = $4, aad_version = 2, status = 'active', last_error = NULL, rotated_at = now() WHERE org_id = $1 AND id = $2 AND status <> 'revoked' RETURNING id`,
          [p.orgId, row.id, s.sealed, s.wrappedKey],
        );
        if (!updated.length) throw AppError.conflict('The credential was revoked meanwhile.');
        await this.audit.record(em, p, { action: 'credential.rotate', targetType: 'Credential', targetId: row.id, payload: { connectorId: row.connector_id, kind: row.kind, kekVersion: this.keys.currentVersion() } });
      });
    }
    return this.db.inOrg(p, async (em) => view((await this.credential(em, p.orgId, row.id))!));
  }

  /**
   * Revokes a credential: its sealed material is destroyed at once (even while agents are paused:
   * revoking is an emergency step). For OAuth, the grant is then revoked at the provider too
   * (RFC 7009) where the connector names a revocation endpoint — with the tokens opened one last
   * time for that purpose (audited), after the local revocation committed.
   */
  async revoke(p: Principal, id: string): Promise<z.infer<typeof RevokedCredentialView>> {
    await this.access.authorize(p, 'read', 'Credential');
    const done = await this.db.inOrg(p, async (em) => {
      const r = await this.credential(em, p.orgId, id, true);
      if (!r) throw AppError.notFound('credential');
      await this.assertOnRecord(p, 'revoke', r);
      if (r.status === 'revoked') throw AppError.conflict('The credential is already revoked.');
      let provider: { cfg: OAuthClientConfig; tokens: OAuthTokens; egress: EgressOptions } | null = null;
      const connector = await this.connector(em, p.orgId, r.connector_id);
      if (r.kind === 'oauth2' && connector?.auth.kind === 'oauth2' && connector.auth.revocationUrl && r.sealed && r.wrapped_key) {
        const a = connector.auth;
        const tokens = JSON.parse(await this.openAudited(em, p, r, 'revoke')) as OAuthTokens;
        const client = await this.liveCredential(em, p.orgId, connector.id, 'oauth_client', null);
        const clientSecret = client?.sealed ? await this.openAudited(em, p, client, 'revoke') : undefined;
        provider = { cfg: { authorizationUrl: a.authorizationUrl, tokenUrl: a.tokenUrl, revocationUrl: a.revocationUrl, clientId: a.clientId, clientSecret, scopes: a.scopes }, tokens, egress: await this.egressFor(em, p.orgId) };
      }
      // The sealed material is destroyed: a revoked credential can never be decrypted again.
      await em.query(`UPDATE credentials SET status = 'revoked', sealed = NULL, wrapped_key = NULL, revoked_at = now(), revoked_by = $3 WHERE org_id = $1 AND id = $2`, [p.orgId, id, p.userId]);
      await this.audit.record(em, p, { action: 'credential.revoke', targetType: 'Credential', targetId: id, payload: { connectorId: r.connector_id, credentialOwner: r.user_id ?? 'org', kind: r.kind } });
      return { view: view((await this.credential(em, p.orgId, id))!), provider, connectorId: r.connector_id };
    });
    if (!done.provider) return { ...done.view, providerRevocation: 'not_supported' };
    let outcome: 'revoked' | 'failed' = 'revoked';
    let reason: string | null = null;
    try {
      await revokeAtProvider(done.provider.cfg, done.provider.tokens, { egress: done.provider.egress });
    } catch (err) {
      outcome = 'failed';
      reason = (err instanceof Error ? err.message : String(err)).slice(0, 300);
    }
    await this.db.inOrg(p, (em) =>
      this.audit.record(em, p, { action: 'credential.provider_revoke', targetType: 'Credential', targetId: id, outcome: outcome === 'revoked' ? 'success' : 'failure', payload: { connectorId: done.connectorId, reason } }),
    );
    return { ...done.view, providerRevocation: outcome };
  }

  /** Opens a credential for revocation at the provider (not refused by the kill switch), the decrypt audited. */
  private async openAudited(em: EntityManager, p: Principal, row: CredentialRow, purpose: 'revoke'): Promise<string> {
    const plain = await openSecret(this.keys, { sealed: row.sealed!, wrappedKey: row.wrapped_key! }, credentialAad(p.orgId, row.connector_id, row.id, row.user_id, row.aad_version));
    await this.audit.record(em, p, { action: 'credential.decrypt', targetType: 'Credential', targetId: row.id, payload: { connectorId: row.connector_id, credentialOwner: row.user_id ?? 'org', kind: row.kind, purpose } });
    return plain.toString('utf8');
  }

  // ------------------------------------------------------------------------------------------
  // Use: headers for an upstream call

  /**
   * The headers that carry the applicable credential (the caller's own for per-user connectors,
   * the org's otherwise), decrypted for this one purpose and audited; an OAuth token is refreshed
   * first when it expires within a minute. A connector with no credential yet gets no headers.
   */
  async headersFor(p: Principal, connector: ConnectorRow, purpose: DecryptPurpose): Promise<Record<string, string>> {
    if (connector.auth.kind === 'none') return {};
    const userId = connector.credential_scope === 'user' ? p.userId : null;
    const kind = connector.auth.kind === 'oauth2' ? 'oauth2' : 'secret';
    const row = await this.db.inOrg(p, (em) => this.liveCredential(em, p.orgId, connector.id, kind, userId));
    if (!row) return {};
    return this.headersOf(p, connector, row, purpose);
  }

  private async headersOf(p: Principal, connector: ConnectorRow, row: CredentialRow, purpose: DecryptPurpose): Promise<Record<string, string>> {
    if (row.status === 'needs_reauth') throw reauth(`The connection to ${connector.name} needs re-authorisation: ${row.kind === 'oauth2' ? 'connect it again' : 'set a new credential'}.`);
    if (connector.auth.kind === 'api_key') {
      const auth = connector.auth;
      const secret = await this.db.inOrg(p, (em) => this.decrypt(em, p, row, purpose));
      return { [auth.header]: auth.scheme ? `${auth.scheme} ${secret}` : secret };
    }
    const expiring = row.expires_at && new Date(row.expires_at).getTime() - Date.now() < REFRESH_MARGIN_MS;
    const tokens = expiring ? await this.refresh(p, row.id, false) : JSON.parse(await this.db.inOrg(p, (em) => this.decrypt(em, p, row, purpose))) as OAuthTokens;
    return { authorization: `Bearer ${tokens.accessToken}` };
  }

  private async clientConfig(em: EntityManager, p: Principal, connector: ConnectorRow): Promise<OAuthClientConfig> {
    if (connector.auth.kind !== 'oauth2') throw AppError.conflict('This connector does not use OAuth.');
    const client = await this.liveCredential(em, p.orgId, connector.id, 'oauth_client', null);
    const clientSecret = client ? await this.decrypt(em, p, client, 'oauth_exchange') : undefined;
    const a = connector.auth;
    return { authorizationUrl: a.authorizationUrl, tokenUrl: a.tokenUrl, clientId: a.clientId, clientSecret, scopes: a.scopes };
  }

  /**
   * Refreshes an OAuth credential under a row lock (a concurrent refresh waits, then finds the
   * fresh token). A refused refresh marks the credential "needs re-authorisation" and answers 409.
   */
  private async refresh(p: Principal, id: string, force: boolean): Promise<OAuthTokens> {
    const outcome = await this.db.inOrg(p, async (em): Promise<{ tokens: OAuthTokens } | { error: AppError }> => {
      const row = await this.credential(em, p.orgId, id, true);
      if (!row || row.status === 'revoked') return { error: reauth('The credential was revoked.') };
      if (row.status === 'needs_reauth') return { error: reauth('The connection needs re-authorisation: connect it again.') };
      const current = JSON.parse(await this.decrypt(em, p, row, 'refresh')) as OAuthTokens;
      if (!force && row.expires_at && new Date(row.expires_at).getTime() - Date.now() >= REFRESH_MARGIN_MS) return { tokens: current };
      const connector = (await this.connector(em, p.orgId, row.connector_id))!;
      const markFailed = async (message: string) => {
        await em.query(`UPDATE credentials SET status = 'needs_reauth', last_error = $3 WHERE org_id = $1 AND id = $2`, [p.orgId, id, message.slice(0, 1000)]);
        await this.audit.record(em, p, { action: 'credential.refresh', targetType: 'Credential', targetId: id, outcome: 'failure', payload: { connectorId: row.connector_id, reason: message.slice(0, 300) } });
        return { error: reauth(`The connection to ${connector.name} needs re-authorisation: ${message.slice(0, 300)}`) };
      };
      if (!current.refreshToken) return markFailed('the access token expired and there is no refresh token');
      let next: OAuthTokens;
      try {
        next = await refreshTokens(await this.clientConfig(em, p, connector), current.refreshToken, { egress: await this.egressFor(em, p.orgId) });
      } catch (err) {
        const problem = upstreamProblem(err);
        if (problem.code === ErrorCode.ReauthorizationRequired) return markFailed(problem.detail ?? 'the refresh was refused');
        return { error: problem }; // unreachable: nothing changes, the next call tries again
      }
      const s = await this.seal(p.orgId, row.connector_id, id, row.user_id, JSON.stringify(next));
      await em.query(`UPDATE credentials SET sealed = $3, wrapped_key = $4, aad_version = 2, expires_at = $5, refreshed_at = now(), last_error = NULL WHERE org_id = $1 AND id = $2`, [
        p.orgId,
        id,
        s.sealed,
        s.wrappedKey,
        next.expiresAt ? new Date(next.expiresAt) : null,
      ]);
      await this.audit.record(em, p, { action: 'credential.refresh', targetType: 'Credential', targetId: id, payload: { connectorId: row.connector_id, forced: force } });
      return { tokens: next };
    });
    if ('error' in outcome) throw outcome.error;
    return outcome.tokens;
  }

  /** Tests a credential: a remote connector lists its tools with it; a built-in one only proves it decrypts. */
  async test(p: Principal, id: string) {
    await this.access.authorize(p, 'read', 'Credential');
    const { row, connector } = await this.db.inOrg(p, async (em) => {
      const r = await this.credential(em, p.orgId, id);
      if (!r) throw AppError.notFound('credential');
      await this.assertOnRecord(p, 'test', r);
      if (r.status === 'revoked') throw AppError.conflict('The credential is revoked.');
      return { row: r, connector: (await this.connector(em, p.orgId, r.connector_id))! };
    });
    if (row.kind === 'oauth_client') throw AppError.conflict('An OAuth client secret is tested by connecting (OAuth start).');
    const headers = await this.headersOf(p, connector, row, 'test');
    if (connector.kind !== 'remote' || !connector.url) return { ok: true, checked: 'decrypt' as const, tools: null };
    const egress = await this.db.inOrg(p, (em) => this.egressFor(em, p.orgId));
    try {
      const tools = await listRemoteTools(connector.id, connector.url, headers, egress);
      return { ok: true, checked: 'upstream' as const, tools: tools.length };
    } catch (err) {
      const problem = upstreamProblem(err);
      await this.db.inOrg(p, (em) => em.query('UPDATE credentials SET last_error = $3 WHERE org_id = $1 AND id = $2', [p.orgId, id, (problem.detail ?? problem.title).slice(0, 1000)]));
      throw problem;
    }
  }

  // ------------------------------------------------------------------------------------------
  // OAuth: authorization code with PKCE

  async storeClientSecret(em: EntityManager, p: Principal, connectorId: string, secret: string): Promise<void> {
    const id = newId();
    const s = await this.seal(p.orgId, connectorId, id, null, secret);
    await em.query(`INSERT INTO credentials (org_id, id, connector_id, user_id, kind, status, sealed, wrapped_key, created_by) VALUES ($1, $2, $3, NULL, 'oauth_client', 'active', $4, $5, $6)`, [
      p.orgId,
      id,
      connectorId,
      s.sealed,
      s.wrappedKey,
      p.userId,
    ]);
    await this.audit.record(em, p, { action: 'credential.set', targetType: 'Credential', targetId: id, payload: { connectorId, scope: 'org', kind: 'oauth_client' } });
  }

  async oauthStart(p: Principal, connectorId: string, body: z.infer<typeof OAuthStartBody>) {
    await this.access.authorize(p, 'read', 'Connector');
    return this.db.inOrg(p, async (em) => {
      const connector = await this.connector(em, p.orgId, connectorId);
      if (!connector) throw AppError.notFound('connector');
      const scope = body.scope ?? connector.credential_scope;
      await this.assertMaySet(p, connector, scope);
      await this.access.requireStepUp(em, p);
      if (connector.auth.kind !== 'oauth2') throw AppError.conflict('This connector does not use OAuth.');
      this.assertOwnRedirect(body.redirectUri);
      const a = connector.auth;
      const req = await authorizationRequest({ authorizationUrl: a.authorizationUrl, tokenUrl: a.tokenUrl, clientId: a.clientId, scopes: a.scopes }, body.redirectUri);
      const id = newId();
      const s = await sealSecret(this.keys, req.codeVerifier, oauthStateAad(p.orgId, id));
      const expiresAt = new Date(Date.now() + STATE_TTL_MS);
      await em.query('DELETE FROM oauth_states WHERE org_id = $1 AND expires_at < now()', [p.orgId]);
      await em.query(
        `INSERT INTO oauth_states (org_id, id, state_hash, connector_id, user_id, scope, redirect_uri, verifier_sealed, wrapped_key, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
        [p.orgId, id, createHash('sha256').update(req.state).digest(), connector.id, p.userId, scope, body.redirectUri, s.sealed, s.wrappedKey, expiresAt],
      );
      await this.audit.record(em, p, { action: 'credential.oauth_start', targetType: 'Connector', targetId: connector.id, payload: { scope } });
      return { authorizationUrl: req.url, state: req.state, expiresAt: expiresAt.toISOString() };
    });
  }

  /** Completes an authorisation: the state must be this user's, in this org, unused and unexpired. */
  async oauthCallback(p: Principal, body: z.infer<typeof OAuthCallbackBody>) {
    const refused = () => AppError.validation([{ path: 'state', message: 'unknown, expired or already used; start the authorisation again' }]);
    // Spend the state first (single use), whatever happens next.
    const state = await this.db.inOrg(p, async (em) => {
      const [row] = await queryReturning(
        em,
        `UPDATE oauth_states SET used_at = now() WHERE org_id = $1 AND state_hash = $2 AND user_id = $3 AND used_at IS NULL AND expires_at > now()
         RETURNING id, connector_id, scope, redirect_uri, verifier_sealed, wrapped_key`,
        [p.orgId, createHash('sha256').update(body.state).digest(), p.userId],
      );
      return row as { id: string; connector_id: string; scope: 'org' | 'user'; redirect_uri: string; verifier_sealed: Buffer; wrapped_key: string } | undefined;
    });
    if (!state) throw refused();
    const verifier = (await openSecret(this.keys, { sealed: state.verifier_sealed, wrappedKey: state.wrapped_key }, oauthStateAad(p.orgId, state.id))).toString('utf8');
    const { connector, cfg, egress } = await this.db.inOrg(p, async (em) => {
      const c = await this.connector(em, p.orgId, state.connector_id);
      if (!c) throw AppError.notFound('connector');
      await this.assertMaySet(p, c, state.scope);
      return { connector: c, cfg: await this.clientConfig(em, p, c), egress: await this.egressFor(em, p.orgId) };
    });
    let tokens: OAuthTokens;
    try {
      tokens = await exchangeCode(cfg, { code: body.code, state: body.state, expectedState: body.state, codeVerifier: verifier, redirectUri: state.redirect_uri }, { egress });
    } catch (err) {
      const problem = upstreamProblem(err);
      if (problem.code === ErrorCode.ReauthorizationRequired) throw AppError.validation([{ path: 'code', message: (problem.detail ?? 'the code was refused').slice(0, 300) }]);
      throw problem;
    }
    const userId = state.scope === 'user' ? p.userId : null;
    return this.db.inOrg(p, async (em) => {
      const previous = await this.liveCredential(em, p.orgId, connector.id, 'oauth2', userId, true);
      if (previous) {
        await em.query(`UPDATE credentials SET status = 'revoked', sealed = NULL, wrapped_key = NULL, revoked_at = now(), revoked_by = $3 WHERE org_id = $1 AND id = $2`, [p.orgId, previous.id, p.userId]);
        await this.audit.record(em, p, { action: 'credential.revoke', targetType: 'Credential', targetId: previous.id, payload: { connectorId: connector.id, reason: 'replaced by a new authorisation' } });
      }
      const id = newId();
      const s = await this.seal(p.orgId, connector.id, id, userId, JSON.stringify(tokens));
      await em.query(
        `INSERT INTO credentials (org_id, id, connector_id, user_id, kind, status, sealed, wrapped_key, expires_at, created_by) VALUES ($1, $2, $3, $4, 'oauth2', 'active', $5, $6, $7, $8)`,
        [p.orgId, id, connector.id, userId, s.sealed, s.wrappedKey, tokens.expiresAt ? new Date(tokens.expiresAt) : null, p.userId],
      );
      if (connector.status === 'needs_credential') await em.query(`UPDATE connectors SET status = 'active', updated_at = now() WHERE org_id = $1 AND id = $2`, [p.orgId, connector.id]);
      await this.audit.record(em, p, { action: 'credential.set', targetType: 'Credential', targetId: id, payload: { connectorId: connector.id, scope: state.scope, kind: 'oauth2', method: 'oauth', hasRefreshToken: Boolean(tokens.refreshToken) } });
      return view((await this.credential(em, p.orgId, id))!);
    });
  }
}
