import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv from 'ajv';
import { parse } from 'yaml';

/**
 * The Helm chart's values against its schema, and every value a template reads present in
 * values.yaml (a template reading `.Values.api.replicas` when values.yaml says `replicaCount`
 * renders an empty field instead of failing). `helm lint` and `helm template` run in .ci/run
 * where a helm binary exists; this test needs none.
 */
const chart = join(__dirname, '../../helm/steward');
const values = parse(readFileSync(join(chart, 'values.yaml'), 'utf8')) as Record<string, unknown>;
const schema = JSON.parse(readFileSync(join(chart, 'values.schema.json'), 'utf8')) as object;
const templates = readdirSync(join(chart, 'templates'))
  .filter((f) => /\.(yaml|tpl|txt)$/.test(f))
  .map((f) => ({ file: f, text: readFileSync(join(chart, 'templates', f), 'utf8') }));

const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);
const clone = <T>(v: T): T => structuredClone(v);

function has(root: unknown, path: string[]): boolean {
  let cur: unknown = root;
  for (const key of path) {
    if (cur === null || typeof cur !== 'object' || !(key in (cur as object))) return false;
    cur = (cur as Record<string, unknown>)[key];
  }
  return true;
}

/** Every `.Values.a.b` a template reads (also through `$.Values` and `.ctx.Values`) that values.yaml lacks. */
function missingReferences(files: { file: string; text: string }[], vals: unknown): string[] {
  const missing = new Set<string>();
  for (const { file, text } of files) {
    for (const m of text.matchAll(/\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)/g)) {
      const path = m[1]!.slice(1).split('.');
      if (!has(vals, path)) missing.add(`${file}: .Values.${path.join('.')}`);
    }
    // Helpers called with (dict ... "values" .Values.<component>) read `.values.<key>`: each key must exist for each component passed.
    const components = [...text.matchAll(/"values"\s+\.Values\.([A-Za-z0-9_]+)/g)].map((c) => c[1]!);
    for (const other of files) {
      for (const k of other.text.matchAll(/\.values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)/g)) {
        for (const c of components) {
          const path = [c, ...k[1]!.slice(1).split('.')];
          if (!has(vals, path)) missing.add(`${file} → ${other.file}: .Values.${path.join('.')}`);
        }
      }
    }
  }
  return [...missing].sort();
}

describe('Helm chart', () => {
  it('validates values.yaml against values.schema.json', () => {
    const ok = validate(values);
    expect(validate.errors ?? []).toEqual([]);
    expect(ok).toBe(true);
  });

  it('refuses values the chart cannot use (the schema is not a rubber stamp)', () => {
    const typo = clone(values) as { api: Record<string, unknown> };
    typo.api.replicas = 3;
    expect(validate(typo)).toBe(false);
    const wrongType = clone(values) as { worker: { concurrency: unknown } };
    wrongType.worker.concurrency = 'lots';
    expect(validate(wrongType)).toBe(false);
    const badUrl = clone(values) as { config: { publicUrl: string } };
    badUrl.config.publicUrl = 'steward.example.com';
    expect(validate(badUrl)).toBe(false);
    const badCollector = clone(values) as { config: { otlpEndpoint: string } };
    badCollector.config.otlpEndpoint = 'otel-collector:4318';
    expect(validate(badCollector)).toBe(false);
    const badCaKey = clone(values) as { extraCaCerts: { key: string } };
    badCaKey.extraCaCerts.key = '../etc/passwd';
    expect(validate(badCaKey)).toBe(false);
    const noSecret = clone(values) as Record<string, unknown>;
    delete noSecret.secret;
    expect(validate(noSecret)).toBe(false);
    const filled = clone(values) as { secret: { existingSecret: string; keys: { otlpHeaders: string } }; config: { publicUrl: string; otlpEndpoint: string }; extraCaCerts: { configMapName: string } };
    filled.secret.existingSecret = 'steward-secrets';
    filled.config.publicUrl = 'https://steward.example.com';
    filled.config.otlpEndpoint = 'http://otel-collector.observability:4318';
    filled.secret.keys.otlpHeaders = 'OTEL_EXPORTER_OTLP_HEADERS';
    filled.extraCaCerts.configMapName = 'steward-ca';
    expect(validate(filled)).toBe(true);
  });

  it('reads no value that values.yaml lacks', () => {
    expect(templates.length).toBeGreaterThanOrEqual(10);
    expect(missingReferences(templates, values)).toEqual([]);
  });

  it('would notice a template reading a value that does not exist', () => {
    const broken = [...templates, { file: 'broken.yaml', text: 'replicas: {{ .Values.api.replicas }}\nx: {{ $.Values.networkPolicy.egressTo }}' }];
    expect(missingReferences(broken, values)).toEqual(['broken.yaml: .Values.api.replicas', 'broken.yaml: .Values.networkPolicy.egressTo']);
  });

  it('has the pieces a cluster install needs', () => {
    const kinds = templates.flatMap((t) => [...t.text.matchAll(/^kind:\s*(\w+)/gm)].map((m) => m[1]));
    for (const kind of ['Deployment', 'Service', 'Job', 'HorizontalPodAutoscaler', 'PodDisruptionBudget', 'NetworkPolicy']) expect(kinds).toContain(kind);
    const job = templates.find((t) => /^kind: Job$/m.test(t.text))!.text;
    expect(job).toMatch(/"helm\.sh\/hook":\s*pre-install,pre-upgrade/);
    for (const t of templates.filter((x) => /^kind: Deployment$/m.test(x.text))) {
      expect(t.text).toMatch(/readinessProbe/);
      expect(t.text).toMatch(/livenessProbe/);
      expect(t.text).toMatch(/resources/);
      expect(t.text).toMatch(/securityContext/);
    }
    // A managed database's private CA reaches every pod that connects to it (NODE_EXTRA_CA_CERTS names the mounted file).
    for (const file of ['api-deployment.yaml', 'worker-deployment.yaml', 'migrate-job.yaml']) {
      const text = templates.find((t) => t.file === file)!.text;
      expect(text).toContain('include "steward.caVolume" .');
      expect(text).toContain('include "steward.caVolumeMount" .');
      expect(text).toContain('include "steward.commonEnv" .');
    }
    // Several API replicas serve MCP sessions without affinity: each advertises its pod address, and the policy lets replicas reach each other.
    const api = templates.find((t) => t.file === 'api-deployment.yaml')!.text;
    expect(api).toMatch(/- name: POD_IP\n\s+valueFrom:\n\s+fieldRef:\n\s+fieldPath: status\.podIP/);
    expect(api).toContain('value: "http://$(POD_IP):{{ .Values.api.port }}"');
    const netpol = templates.find((t) => t.file === 'networkpolicy.yaml')!.text;
    expect(netpol.split('kind: NetworkPolicy')[1]).toContain('(dict "ctx" $ "component" "api") | nindent 14');
    const helpers = templates.find((t) => t.file === '_helpers.tpl')!.text;
    // The worker's outcome sweeper knows how long a gateway call may run: the API's settings, in the env both share.
    const common = helpers.split('define "steward.commonEnv"')[1]!.split('{{- end }}\n\n')[0]!;
    expect(common).toContain('- name: GATEWAY_UPSTREAM_TIMEOUT_SECONDS\n  value: {{ .Values.config.gatewayUpstreamTimeoutSeconds');
    expect(common).toContain('- name: GATEWAY_ELICITATION_WAIT_SECONDS\n  value: {{ .Values.config.gatewayElicitationWaitSeconds');
    expect(helpers).toMatch(/mountPath: \/etc\/steward\/ca\n/);
    expect(helpers).toContain('printf "/etc/steward/ca/%s" .Values.extraCaCerts.key');
  });
});
