import { Init1763769600000 } from './1763769600000-init';
import { TenancyAndRoles1763769600001 } from './1763769600001-tenancy-and-roles';

/** Every migration, in order. Schema changes are migrations only (synchronize is never on). */
export const MIGRATIONS = [Init1763769600000, TenancyAndRoles1763769600001];
