import { Inject, Injectable } from '@nestjs/common';
import { type DataSource, type EntityManager, inOrg, outsideOrg, type TenantScope } from '@steward/db';
import { DATA_SOURCE } from './tokens';

/** Database access for services: every tenant read or write runs inside inOrg (RLS set). */
@Injectable()
export class Db {
  constructor(@Inject(DATA_SOURCE) readonly dataSource: DataSource) {}

  inOrg<T>(scope: TenantScope, work: (em: EntityManager) => Promise<T>): Promise<T> {
    return inOrg(this.dataSource, scope, work);
  }

  outsideOrg<T>(work: (em: EntityManager) => Promise<T>): Promise<T> {
    return outsideOrg(this.dataSource, work);
  }
}
