export * from './errors';
export * from './manifest';
export * from './tool-result';
export * from './pinning';
export * from './hub';
