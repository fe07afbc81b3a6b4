/**
 * Resource globs: "*" matches within one path segment, "**" across segments, "?" one
 * character; everything else is literal. Matching is case-sensitive and anchored.
 * Deliberately small so it means the same in the evaluator, in CASL and in the console.
 */
export const MAX_GLOB_WILDCARDS = 8;

export function globProblem(glob: string): string | undefined {
  if (glob.length === 0) return 'empty glob';
  if (/\*{3,}/.test(glob)) return `bad glob "${glob}": more than two "*" in a row`;
  if (/[[\]{}]/.test(glob)) return `bad glob "${glob}": "[", "]", "{" and "}" are not supported (use several globs)`;
  // Each wildcard multiplies the ways a long value can be matched: a handful says any real path.
  if ((glob.match(/\*+/g) ?? []).length > MAX_GLOB_WILDCARDS) return `bad glob "${glob}": at most ${MAX_GLOB_WILDCARDS} wildcards ("*" or "**")`;
  return undefined;
}

export function globToRegExpSource(glob: string): string {
  let out = '^';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*') {
      if (glob[i + 1] === '*') {
        out += '.*';
        i++;
      } else out += '[^/]*';
    } else if (c === '?') out += '[^/]';
    else out += c.replace(/[.+^$()|\\/-]/g, '\\$&');
  }
  return out + '$';
}

export function globToRegExp(glob: string): RegExp {
  return new RegExp(globToRegExpSource(glob));
}
