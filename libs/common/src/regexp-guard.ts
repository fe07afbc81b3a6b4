import { setFlagsFromString } from 'node:v8';

let guarded = false;

/**
 * Bounds the time any regular expression of this process can take: past V8's backtrack limit a
 * match continues on V8's linear-time engine (same results for expressions without backreferences
 * or lookarounds, which is all that policy globs, host patterns and labellers compile to). A policy
 * glob such as "*a*a*a*a*a*b" matched against a long resource otherwise backtracks for minutes and
 * holds the event loop of a process that serves every org. Called once at start by the API and the
 * worker, before they serve anything.
 */
export function guardRegExpBacktracking(): void {
  if (guarded) return;
  setFlagsFromString('--enable-experimental-regexp-engine-on-excessive-backtracks');
  guarded = true;
}
