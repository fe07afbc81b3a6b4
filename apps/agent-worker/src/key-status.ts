/**
 * `npm run vault:status`: which key-encryption key versions still protect something, so that an
 * operator rotating STEWARD_MASTER_KEY knows when the worker's re-wrap job is done and an old
 * version can be removed from the configuration. Prints one JSON document; exit 1 with a one-line
 * message on bad configuration.
 */
import { ConfigError, loadConfig, SecretBox } from '@steward/common';
import { createDataSource } from '@steward/db';
import { ConfigKeyProvider, credentialsUnbound, kekVersionsInUse, userSecretVersions } from '@steward/vault';
import { wrappedKeySources } from './wrapped-keys';

async function main(): Promise<void> {
  const config = loadConfig();
  if (config.embedded) throw new Error('needs DATABASE_URL (the embedded development database has no worker that rotates keys)');
  const keys = new ConfigKeyProvider(config.STEWARD_MASTER_KEY);
  const ds = createDataSource({ url: config.DATABASE_URL!, poolMax: 2, applicationName: 'steward-vault-status' });
  await ds.initialize();
  try {
    const inUse = await kekVersionsInUse(ds, wrappedKeySources(new SecretBox(config.STEWARD_MASTER_KEY)));
    for (const [version, n] of Object.entries(await userSecretVersions(ds))) (inUse[version] ??= {}).user_totp_secrets = n;
    const configured = config.STEWARD_MASTER_KEY.split(',').map((p) => p.trim().split(':', 1)[0]);
    const current = keys.currentVersion();
    process.stdout.write(
      `${JSON.stringify(
        {
          current,
          configured,
          inUse,
          // Versions nothing uses any more: safe to remove from STEWARD_MASTER_KEY.
          removable: configured.filter((v) => v !== current && !inUse[v]),
          // Versions something still uses that the configuration lacks: those secrets cannot be opened.
          missing: Object.keys(inUse).filter((v) => !configured.includes(v)),
          // Connector credentials sealed before their owner was named in their AAD (the worker's key job binds them).
          credentialsWithoutOwnerBinding: await credentialsUnbound(ds),
        },
        null,
        2,
      )}\n`,
    );
  } finally {
    await ds.destroy();
  }
}

main().catch((err: unknown) => {
  const message = err instanceof ConfigError ? err.problems.join('; ') : err instanceof Error ? err.message : String(err);
  process.stderr.write(`vault:status: ${message}\n`);
  process.exit(1);
});
