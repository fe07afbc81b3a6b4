/** Where the test PostgreSQL is. Tests connect as the real roles, never as a superuser. */
export function adminUrl(): string {
  return process.env.TEST_PG_ADMIN_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
}

export function dbUrl(role: 'steward_owner' | 'steward_app', database: string): string {
  const url = new URL(adminUrl());
  url.username = role;
  url.password = '';
  url.pathname = `/${database}`;
  return url.toString();
}

export function redisUrl(): string {
  return process.env.TEST_REDIS_URL || 'redis://127.0.0.1:6379';
}
