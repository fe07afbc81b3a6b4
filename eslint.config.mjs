// One ESLint flat config for the whole monorepo (ESLint 10 + typescript-eslint 8, not type-aware).
// Every workspace package runs `eslint .` from its own folder; ESLint finds this file by walking up.
//
// Module boundaries (checked by scripts/check-boundaries.mjs, which `npm run lint` runs first):
//   - apps never import another app (package name or relative path);
//   - libs never import apps;
//   - libs/policy imports only @casl/ability and zod (no node:*, pg, typeorm, ioredis, fs, ...,
//     no require()/import(), no process/fetch): it stays pure and free of I/O;
//   - only libs/common/src reads process.env (tests, jest configs, scripts/*.mjs,
//     next.config.ts, the console's server.mjs (its port) and lib/server-env.ts (its server-side settings: the API's URL, dev or not)
//     and apps/cli — a client on the user's machine, whose only settings are where its config file
//     lives and, at login, the API key in STEWARD_API_KEY — are exempt).
import path from 'node:path';
import js from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import tseslint from 'typescript-eslint';

const root = import.meta.dirname;

const APPS = ['api', 'agent-worker', 'admin-console'];
const ALL_CODE = ['**/*.{ts,tsx,mts,cts,js,jsx,mjs,cjs}'];
const TEST_FILES = [
  '**/*.spec.{ts,tsx}',
  '**/*.int-spec.ts',
  '**/*.e2e-spec.ts',
  'test/**',
  'apps/*/test/**',
  'libs/*/test/**',
  '**/jest.config.js',
  'jest.preset.js',
];

/** `apps/api/src/x.ts` -> { kind: 'apps', name: 'api' }; anything else -> null. */
function projectOf(absPath) {
  const [kind, name] = path.relative(root, absPath).split(path.sep);
  if ((kind === 'apps' || kind === 'libs') && name) return { kind, name };
  return null;
}

/**
 * Relative imports are resolved against the importing file, so `../../../agent-worker/src/x`
 * is caught whatever the depth. Package-name imports are handled by no-restricted-imports.
 */
const boundariesRule = {
  meta: {
    type: 'problem',
    docs: { description: 'Module boundaries for relative imports between apps and libs' },
    // pureLibs: libs whose relative imports must stay inside the lib (tests of such a lib pass []).
    schema: [
      {
        type: 'object',
        properties: { pureLibs: { type: 'array', items: { type: 'string' } } },
        additionalProperties: false,
      },
    ],
    messages: {
      appToApp: "'{{source}}' reaches into apps/{{target}}: an app must not import another app.",
      libToApp: "'{{source}}' reaches into apps/{{target}}: libs must not import apps.",
      policyOut:
        "'{{source}}' leaves libs/policy: the policy library imports only @casl/ability, @ucast/mongo2js and zod.",
    },
  },
  create(context) {
    const from = projectOf(context.filename);
    if (!from) return {};
    const pure = from.kind === 'libs' && (context.options[0]?.pureLibs ?? []).includes(from.name);
    const check = (node) => {
      if (!node || node.type !== 'Literal' || typeof node.value !== 'string') return;
      const source = node.value;
      if (!source.startsWith('.')) return;
      const target = projectOf(path.resolve(path.dirname(context.filename), source));
      const same = target && target.kind === from.kind && target.name === from.name;
      if (same) return;
      if (pure) {
        context.report({ node, messageId: 'policyOut', data: { source } });
      } else if (target?.kind === 'apps' && from.kind === 'apps') {
        context.report({ node, messageId: 'appToApp', data: { source, target: target.name } });
      } else if (target?.kind === 'apps' && from.kind === 'libs') {
        context.report({ node, messageId: 'libToApp', data: { source, target: target.name } });
      }
    };
    return {
      ImportDeclaration: (n) => check(n.source),
      ExportNamedDeclaration: (n) => check(n.source),
      ExportAllDeclaration: (n) => check(n.source),
      ImportExpression: (n) => check(n.source),
      TSExternalModuleReference: (n) => check(n.expression),
      'CallExpression[callee.name="require"]': (n) => check(n.arguments[0]),
    };
  },
};

const noAppPackages = {
  regex: `^@steward/(${APPS.join('|')})(/.*)?$`,
  message: 'Apps are not libraries: apps never import apps and libs never import apps.',
};

const policyOnlyPureDeps = {
  regex: '^(?!\\.|(@casl/ability|@ucast/mongo2js|zod)(/.*)?$)',
  message: 'libs/policy has no I/O and imports only @casl/ability (with its @ucast/mongo2js matcher) and zod.',
};

const processEnv = [
  "MemberExpression[object.name='process'][property.name='env']",
  "MemberExpression[object.name='process'][property.value='env']",
  "MemberExpression[object.property.name='process'][property.name='env']",
  "VariableDeclarator[init.name='process'] > ObjectPattern > Property[key.name='env']",
  "ImportDeclaration[source.value=/^(node:)?process$/] > ImportSpecifier[imported.name='env']",
].map((selector) => ({
  selector,
  message: 'Only libs/common reads process.env: take settings from loadConfig() in @steward/common.',
}));

const policyNoDynamicLoading = [
  { selector: 'ImportExpression', message: 'libs/policy loads no modules at run time.' },
  { selector: "CallExpression[callee.name='require']", message: 'libs/policy loads no modules at run time.' },
];

// Node globals for plain JavaScript files (TypeScript files get them from @types/node).
const nodeEsmGlobals = Object.fromEntries(
  [
    'process', 'console', 'Buffer', 'URL', 'URLSearchParams', 'fetch', 'AbortController', 'AbortSignal',
    'TextEncoder', 'TextDecoder', 'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval',
    'setImmediate', 'clearImmediate', 'queueMicrotask', 'structuredClone', 'performance', 'globalThis',
  ].map((name) => [name, 'readonly']),
);
const nodeCjsGlobals = {
  ...nodeEsmGlobals,
  ...Object.fromEntries(['require', 'module', 'exports', '__dirname', '__filename'].map((n) => [n, 'readonly'])),
};

export default defineConfig(
  globalIgnores([
    '**/node_modules/**',
    '**/dist/**',
    '**/.next/**',
    '**/coverage/**',
    '**/.nx/**',
    '**/.steward/**',
    '**/tmp/**',
    '**/next-env.d.ts',
  ]),

  { files: ALL_CODE, extends: [js.configs.recommended, tseslint.configs.recommended] },

  {
    files: ALL_CODE,
    plugins: { steward: { rules: { boundaries: boundariesRule } } },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_' },
      ],
      'steward/boundaries': ['error', { pureLibs: ['policy'] }],
      'no-restricted-imports': ['error', { patterns: [noAppPackages] }],
      'no-restricted-syntax': ['error', ...processEnv],
    },
  },

  // Plain JavaScript: Node scripts (.mjs, ESM) and CommonJS configs (jest.config.js, jest.preset.js).
  { files: ['**/*.mjs'], languageOptions: { sourceType: 'module', globals: nodeEsmGlobals } },
  {
    files: ['**/*.{js,cjs}'],
    languageOptions: { sourceType: 'commonjs', globals: nodeCjsGlobals },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },

  // libs/policy: pure decisions, no I/O.
  {
    files: ['libs/policy/**'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [noAppPackages, policyOnlyPureDeps] }],
      'no-restricted-syntax': ['error', ...processEnv, ...policyNoDynamicLoading],
      'no-restricted-globals': [
        'error',
        ...['process', 'fetch', 'require', 'WebSocket', 'XMLHttpRequest', 'EventSource'].map((name) => ({
          name,
          message: 'libs/policy has no I/O and reads no environment.',
        })),
      ],
    },
  },
  // Tests of the policy library may use test helpers; the library itself may not.
  {
    files: [
      'libs/policy/**/*.spec.ts',
      'libs/policy/**/*.int-spec.ts',
      'libs/policy/test/**',
      'libs/policy/jest.config.js',
    ],
    rules: {
      'no-restricted-imports': ['error', { patterns: [noAppPackages] }],
      'no-restricted-globals': 'off',
      'steward/boundaries': ['error', { pureLibs: [] }],
    },
  },

  // Where process.env may be read.
  {
    files: ['libs/common/src/**', ...TEST_FILES, 'scripts/*.mjs', '**/next.config.ts', 'apps/admin-console/server.mjs', 'apps/admin-console/lib/server-env.ts', 'apps/cli/src/**'],
    rules: { 'no-restricted-syntax': 'off' },
  },
);
