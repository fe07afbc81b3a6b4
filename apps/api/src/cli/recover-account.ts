#!/usr/bin/env node
import { AuditKeyring, recordEvent } from '@steward/audit';
import { ConfigError, createLogger, hashToken, loadConfig, newId, newToken, TokenPrefix } from '@steward/common';
import { createDataSource, inOrg } from '@steward/db';
import { ConfigKeyProvider } from '@steward/vault';
import { RECOVERY_TTL_HOURS } from '../auth/recovery-ttl';

/**
 * The operator's account recovery, for what no org may do: the only owner of an org locked out,
 * or an account that belongs to several orgs.
 *   npm run account:recover -- <email> [--second-factor]
 * Run where the API runs, with its environment (DATABASE_URL, STEWARD_TOKEN_PEPPER,
 * STEWARD_MASTER_KEY). Prints a one-time link (24 hours) with which the person sets a new password
 * (POST /v1/auth/recover); `--second-factor` also removes their
 * authenticator. Audited in the account's first org as the operator's (`member.recovery_issue`,
 * `operator: true`); its use ends the account's sessions, API keys and MCP grants in every org.
 * Exit codes: 0 issued, 1 refused or failed, 2 bad usage.
 */
const USAGE = 'usage: npm run account:recover -- <email> [--second-factor]';

class Refused extends Error {}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const unknown = args.filter((a) => a.startsWith('-') && a !== '--second-factor');
  const emails = args.filter((a) => !a.startsWith('-'));
  if (unknown.length || emails.length !== 1) {
    process.stderr.write(`steward-recover-account: ${unknown.length ? `unknown option ${unknown[0]}` : emails.length ? 'give one email' : 'give the email of the account'} (${USAGE})\n`);
    process.exit(2);
  }
  const email = emails[0]!.trim().toLowerCase();
  if (email.length > 320 || !/^[^\s@]+@[^\s@]+$/.test(email)) {
    process.stderr.write(`steward-recover-account: "${email.slice(0, 80)}" is not an email address (${USAGE})\n`);
    process.exit(2);
  }
  const secondFactor = args.includes('--second-factor');
  const config = loadConfig();
  if (!config.DATABASE_URL) throw new ConfigError(['DATABASE_URL: set it to the database the API uses']);
  const log = createLogger({ level: 'error', name: 'steward-recover-account' });
  const ds = createDataSource({ url: config.DATABASE_URL, poolMax: 2, applicationName: 'steward-recover-account', logger: log });
  await ds.initialize();
  try {
    const [account]: { user_id: string; totp_enabled: boolean }[] = await ds.query('SELECT user_id, totp_enabled FROM steward_auth_user_by_email($1)', [email]);
    if (!account) throw new Refused(`no account has the email ${email}`);
    if (secondFactor && !account.totp_enabled) throw new Refused(`${email} has no authenticator to remove (leave out --second-factor)`);
    const [{ org_id: orgId }]: { org_id: string | null }[] = await ds.query('SELECT steward_account_first_org($1) AS org_id', [account.user_id]);
    if (!orgId) throw new Refused(`${email} belongs to no org: there is nothing to sign in to`);
    const token = newToken(TokenPrefix.Recovery);
    const expiresAt = new Date(Date.now() + RECOVERY_TTL_HOURS * 3_600_000);
    const keyring = new AuditKeyring(new ConfigKeyProvider(config.STEWARD_MASTER_KEY));
    await inOrg(ds, { orgId }, async (em) => {
      await em.query(`UPDATE account_recoveries SET revoked_at = now() WHERE org_id = $1 AND user_id = $2 AND used_at IS NULL AND revoked_at IS NULL`, [orgId, account.user_id]);
      const id = newId();
      await em.query(`INSERT INTO account_recoveries (org_id, id, user_id, token_hash, second_factor, created_by, expires_at) VALUES ($1, $2, $3, $4, $5, NULL, $6)`, [
        orgId, id, account.user_id, hashToken(config.STEWARD_TOKEN_PEPPER, token), secondFactor, expiresAt,
      ]);
      await recordEvent(em, keyring, {
        id: newId(),
        orgId,
        occurredAt: new Date(),
        actor: { type: 'system', id: null },
        action: 'member.recovery_issue',
        target: { type: 'Member', id: account.user_id },
        outcome: 'success',
        client: 'cli',
        payload: { recoveryId: id, secondFactor, expiresAt: expiresAt.toISOString(), operator: true },
      });
    });
    process.stdout.write(`${token}\n`);
    // The token in the fragment: browsers never send it to a server (no access log or Referer holds it).
    const link = config.STEWARD_CONSOLE_URL ? ` (${config.STEWARD_CONSOLE_URL.replace(/\/+$/, '')}/recover#token=${token})` : ' (the console\'s /recover page takes it)';
    process.stderr.write(`steward-recover-account: a recovery token for ${email}, valid until ${expiresAt.toISOString()}${secondFactor ? ' (it also removes the authenticator)' : ''}: give it to the person, who sets a new password with it${link}\n`);
  } finally {
    await ds.destroy();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`steward-recover-account: ${err instanceof ConfigError || err instanceof Refused ? err.message : (err?.message ?? err)}\n`);
    process.exit(1);
  },
);
