export * from './gate';
export * from './policy-source';
export * from './rate-limits';
export * from './credentials';
export * from './claims';
export * from './outcome-unknown';
