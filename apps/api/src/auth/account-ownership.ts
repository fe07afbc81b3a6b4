import type { Db } from '../core/db.service';

/**
 * Whether the account with this email is somebody's own beyond `orgId`: it signs in with a
 * password or a second factor of its own, or it belongs to another org. An org's identity provider
 * (SSO sign-in, SCIM) may not claim such an account by its address: it joins by invitation,
 * accepted with its password. An account an identity provider created that belongs to no org any
 * more (deprovisioned earlier) may be provisioned again.
 */
export async function accountOwnedElsewhere(db: Db, email: string, orgId: string): Promise<boolean> {
  return db.outsideOrg(async (em) => {
    const [a]: { user_id: string; has_password: boolean; totp_enabled: boolean }[] = await em.query(
      'SELECT user_id, password_hash IS NOT NULL AS has_password, totp_enabled FROM steward_auth_user_by_email($1)',
      [email],
    );
    if (!a) return false;
    if (a.has_password || a.totp_enabled) return true;
    const orgs: { org_id: string }[] = await em.query('SELECT org_id FROM steward_auth_user_orgs($1)', [a.user_id]);
    return orgs.some((o) => o.org_id !== orgId);
  });
}
