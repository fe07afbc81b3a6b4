import { DataSource, type EntityManager, type Logger as TypeOrmLogger } from 'typeorm';
import type { Logger } from '@steward/common';
import { ENTITIES } from './entities';
import { MIGRATIONS } from './migrations';

export interface DataSourceOptions {
  url: string;
  poolMax?: number;
  applicationName?: string;
  logger?: Logger;
}

class PinoTypeOrmLogger implements TypeOrmLogger {
  constructor(private readonly out: Logger) {}
  logQuery(): void {}
  logQueryError(error: string | Error, query: string): void {
    // Parameters are never logged: they may hold secrets.
    this.out.warn({ err: error, query: query.slice(0, 500) }, 'query failed');
  }
  logQuerySlow(time: number, query: string): void {
    this.out.warn({ ms: time, query: query.slice(0, 500) }, 'slow query');
  }
  logSchemaBuild(message: string): void {
    this.out.debug({ message }, 'schema');
  }
  logMigration(message: string): void {
    this.out.info({ message }, 'migration');
  }
  log(level: 'log' | 'info' | 'warn', message: unknown): void {
    if (level === 'warn') this.out.warn({ message }, 'typeorm');
    else this.out.debug({ message }, 'typeorm');
  }
}

/** The one DataSource definition used by the api, the worker and the migration CLI. */
export function createDataSource(options: DataSourceOptions): DataSource {
  return new DataSource({
    type: 'postgres',
    url: options.url,
    entities: ENTITIES,
    migrations: MIGRATIONS,
    migrationsTableName: 'typeorm_migrations',
    migrationsTransactionMode: 'each',
    synchronize: false,
    migrationsRun: false,
    logger: options.logger ? new PinoTypeOrmLogger(options.logger) : undefined,
    logging: options.logger ? ['error', 'warn', 'migration'] : false,
    maxQueryExecutionTime: 2000,
    applicationName: options.applicationName ?? 'steward',
    extra: { max: options.poolMax ?? 10, connectionTimeoutMillis: 10_000, statement_timeout: 30_000 },
  });
}

/** Who is acting, for Row Level Security and the audit trail. */
export interface TenantScope {
  orgId: string;
  userId?: string | null;
}

/**
 * Runs `work` in one transaction with the org (and user) set for Row Level Security.
 * Everything a request changes, and its audit event, commit or roll back together.
 */
export async function inOrg<T>(
  dataSource: DataSource,
  scope: TenantScope,
  work: (em: EntityManager) => Promise<T>,
  /** Transaction-local planner settings for queries whose plan must not depend on statistics. */
  settings: Record<string, 'on' | 'off'> = {},
): Promise<T> {
  return dataSource.transaction(async (em) => {
    const names = Object.keys(settings);
    await em.query(
      `SELECT set_config('app.org_id', $1, true), set_config('app.user_id', $2, true)${names.map((_, i) => `, set_config($${3 + 2 * i}, $${4 + 2 * i}, true)`).join('')}`,
      [scope.orgId, scope.userId ?? '', ...names.flatMap((n) => [n, settings[n]])],
    );
    return work(em);
  });
}

/** Runs `work` in a transaction with no org set: tenant tables are empty; only narrow functions answer. */
export async function outsideOrg<T>(dataSource: DataSource, work: (em: EntityManager) => Promise<T>): Promise<T> {
  return dataSource.transaction(async (em) => {
    await em.query(`SELECT set_config('app.org_id', '', true), set_config('app.user_id', '', true)`);
    return work(em);
  });
}

/**
 * The rows of an INSERT/UPDATE/DELETE ... RETURNING. TypeORM's PostgreSQL driver answers an UPDATE
 * or DELETE with `[rows, affectedCount]` (a SELECT or INSERT with the rows alone): read
 * `.length` of its raw answer and it is always 2.
 */
export async function queryReturning<T = Record<string, unknown>>(em: { query(sql: string, params?: unknown[]): Promise<unknown> }, sql: string, params: unknown[]): Promise<T[]> {
  const r = await em.query(sql, params);
  return (Array.isArray(r) && r.length === 2 && Array.isArray(r[0]) && typeof r[1] === 'number' ? r[0] : r) as T[];
}
