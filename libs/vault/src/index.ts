export * from './keys';
export * from './envelope';
export * from './rotation';
export * from './oauth';
export * from './user-secrets';
export * from './credential-binding';
