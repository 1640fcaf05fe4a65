/**
 * cdk-nag (AwsSolutions) on the real app: zero unacknowledged errors or warnings, every
 * acknowledgement narrow and documented in README.md, and proof the check is live.
 *
 * How cdk-nag 3 reports: it is a policy-validation plugin (Validations.of(app).addPlugins). At
 * synth it returns violations with severity "error" or "warning"; any violation makes app.synth()
 * throw "Validation failed" and writes validation-report.json. validateScope(app) returns the same
 * violations without synthesizing, which is what the assertions below inspect.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { App, Validations } from 'aws-cdk-lib';
import { Annotations, Match } from 'aws-cdk-lib/assertions';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { buildApp, PROJECT_DIR } from '../lib/app';
import { assetDir, CDK_JSON_CONTEXT, tempDir } from './helpers';

/** The app as `cdk synth` builds it (nag on), with `context` on top. */
function nagApp(context: Record<string, unknown> = {}) {
  const outdir = tempDir('curflow-nag-');
  const app = new App({ context: { ...CDK_JSON_CONTEXT, lambdaAssetDir: assetDir(), ...context }, outdir });
  return { ...buildApp(app, {}), outdir };
}

function violations(scope: IConstruct) {
  return new AwsSolutionsChecks().validateScope(scope).violations.map((v) => ({
    rule: v.ruleName,
    severity: v.severity,
    where: v.violatingResources.map((r) => r.constructPath),
  }));
}

/** [id, reason] of every acknowledgement recorded in the tree. */
function acknowledgements(scope: IConstruct): [string, string][] {
  const out: [string, string][] = [];
  for (const c of scope.node.findAll()) {
    for (const m of c.node.metadata) {
      if (m.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
      for (const [id, reason] of Object.entries(m.data as Record<string, string>)) {
        out.push([id.replace(/^annotation::/i, ''), reason]);
      }
    }
  }
  return out;
}

const variants: [string, Record<string, unknown>][] = [
  ['defaults', {}],
  ['every option on', {
    legacyCur: 'true',
    evidenceLogGroups: '/aws/eks/prod/cluster,/ecs/billing',
    alertEmail: 'ops@example.com',
    lambdaArch: 'x86_64',
    reservedConcurrency: '0',
    connectedAccounts: '[{"name":"prod","accountId":"111111111111","roleArn":"arn:aws:iam::111111111111:role/curflow-ce","externalId":"curflow-1"}]',
  }],
  ['export off, schedule off', { dataExport: 'false', nightlySchedule: 'off' }],
];

for (const [name, context] of variants) {
  test(`AwsSolutions: zero unacknowledged errors and warnings (${name})`, () => {
    const { app, stack, outdir } = nagApp(context);
    assert.deepEqual(violations(app), []);
    // The real synth path (plugin registered by buildApp) must pass too.
    app.synth();
    assert.ok(fs.existsSync(path.join(outdir, 'CurflowStack.template.json')));
    const report = path.join(outdir, 'validation-report.json');
    if (fs.existsSync(report)) assert.doesNotMatch(fs.readFileSync(report, 'utf8'), /"severity"\s*:\s*"(error|warning)"/);
    // And CDK itself has nothing to warn about.
    const ann = Annotations.fromStack(stack);
    assert.deepEqual(ann.findError('*', Match.anyValue()), []);
    assert.deepEqual(ann.findWarning('*', Match.anyValue()), []);
  });
}

test('the check is live: a non-compliant bucket is reported and fails synth', () => {
  const { app, stack } = nagApp();
  new s3.Bucket(stack, 'NonCompliant');
  const v = violations(app);
  assert.deepEqual(v.map((x) => x.rule).sort(), ['AwsSolutions-S1', 'AwsSolutions-S10']);
  assert.ok(v.every((x) => x.severity === 'error' && x.where[0] === 'CurflowStack/NonCompliant/Resource'));
  assert.throws(() => quietly(() => app.synth()), /Validation failed/);
});

test('nag=false does not attach cdk-nag', () => {
  const { app, stack } = nagApp({ nag: 'false' });
  new s3.Bucket(stack, 'NonCompliant');
  app.synth();
});

test('acknowledgements are few, narrow and each one is documented in README.md with its reason', () => {
  const readme = fs.readFileSync(path.join(PROJECT_DIR, 'README.md'), 'utf8').replace(/\s+/g, ' ');
  const accounts = [{ name: 'prod', accountId: '111111111111', roleArn: 'arn:aws:iam::111111111111:role/curflow-ce', externalId: 'curflow-1' }];
  const evidenceSources = [{ name: 'usage', location: 's3://usage-logs/lambda/' }];
  const context = { legacyCur: 'true', evidenceLogGroups: '/aws/eks/prod/cluster', connectedAccounts: accounts, evidenceSources };
  const { app } = nagApp(context);
  const acks = acknowledgements(app);
  const ids = acks.map(([id]) => id).sort();
  assert.deepEqual(ids, [
    'AwsSolutions-IAM5[Resource::*]',
    'AwsSolutions-IAM5[Resource::<StorageReportBucketC5ACC6CD.Arn>/cur/*]',
    'AwsSolutions-IAM5[Resource::<StorageReportBucketC5ACC6CD.Arn>/cur2/*]',
    'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:us-east-1:123456789012:log-group:/aws/eks/prod/cluster:*]',
    'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:us-east-1:123456789012:log-group:/aws/lambda/CurflowStack-*]',
    'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::usage-logs/lambda/*]',
    'AwsSolutions-SQS3',
  ]);
  for (const [id, reason] of acks) {
    // IAM5 is only ever acknowledged per finding, never wholesale.
    if (id.startsWith('AwsSolutions-IAM5')) assert.match(id, /^AwsSolutions-IAM5\[Resource::.+\]$/);
    assert.ok(readme.includes(id.replace(/\[.*$/, '')), `README names ${id}`);
    assert.ok(readme.includes(reason.replace(/\s+/g, ' ')), `README gives the reason for ${id}: "${reason}"`);
  }
  // No acknowledgement of a rule that does not fire (it would hide a future regression):
  // with acknowledgements stripped, exactly these findings appear.
  const raw = new AwsSolutionsChecks();
  const stripped = nagAppWithoutAcks(context);
  assert.deepEqual(raw.validateScope(stripped).violations.map((v) => v.ruleName).sort(), ids);
});

/** Runs `f` with console output swallowed (CDK prints the expected validation report). */
function quietly<T>(f: () => T): T {
  const saved = { log: console.log, error: console.error, warn: console.warn, info: console.info };
  console.log = console.error = console.warn = console.info = () => undefined;
  try {
    return f();
  } finally {
    Object.assign(console, saved);
  }
}

/** Builds the app with Validations.acknowledge turned into a no-op. */
function nagAppWithoutAcks(context: Record<string, unknown>): App {
  const proto = Validations.prototype as unknown as { acknowledge: (...a: unknown[]) => void };
  const original = proto.acknowledge;
  proto.acknowledge = () => undefined;
  try {
    return nagApp({ ...context, nag: 'false' }).app;
  } finally {
    proto.acknowledge = original;
  }
}
