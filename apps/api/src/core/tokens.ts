/** Injection tokens of the core providers. */
export const CONFIG = Symbol('CONFIG');
export const LOGGER = Symbol('LOGGER');
export const DATA_SOURCE = Symbol('DATA_SOURCE');
export const REDIS = Symbol('REDIS');
export const METRICS = Symbol('METRICS');
/** How outbound hosts are resolved for the egress guard (tests inject one: there is no DNS in CI). */
export const EGRESS_RESOLVER = Symbol('EGRESS_RESOLVER');
/** DNS TXT lookups (domain verification): `(name) => records`, each record its strings. */
export const TXT_RESOLVER = Symbol('TXT_RESOLVER');
export type TxtResolver = (name: string) => Promise<string[][]>;
