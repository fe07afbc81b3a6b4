export * from './event';
export * from './keyring';
export * from './record';
export * from './sequencer';
export * from './signing';
export * from './checkpoint';
export * from './verify';
