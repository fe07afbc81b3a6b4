export * from './data-source';
export * from './entities';
export * from './migrate';
export * from './embedded';
export { MIGRATIONS } from './migrations';
export { DataSource, EntityManager, IsNull, In, Not, MoreThan, LessThan } from 'typeorm';
export * from './batch-writer';
export * from './egress-hosts';
export * from './unreachable';
