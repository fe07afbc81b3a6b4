/** How long an account recovery link works (an org's or the operator's). */
export const RECOVERY_TTL_HOURS = 24;
