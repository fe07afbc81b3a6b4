export * from './config';
export * from './errors';
export * from './logger';
export * from './queues';
export * from './tokens';
export * from './ids';
export * from './secretbox';
export * from './egress';
