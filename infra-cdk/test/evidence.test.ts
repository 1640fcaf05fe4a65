/** The usage ledger's evidence sources: CURFLOW_EVIDENCE and exactly the read grants they need. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { readEvidenceSources } from '../lib/config';
import { asArray, build, functionRoleStatements, logicalId } from './helpers';

const SOURCES = [
  { name: 'api-logs', location: 'cloudwatch:///aws/lambda/api' },
  { name: 'usage', location: 's3://usage-logs/lambda/' },
  { name: 'inventory', location: 's3://usage-logs/inventory/' },
  { name: 'access', location: 's3://access-logs-bucket/' },
];
const METRICS = {
  name: 'metrics',
  location: 'cloudwatch-metrics://Curflow/App?metric=BilledGbSeconds&dimension=accountant_id&driver=lambda_gb_seconds',
};
const withMetrics = build({ evidenceSources: JSON.stringify([METRICS]) }).template;
const withSources = build({ evidenceSources: JSON.stringify(SOURCES) }).template;
const without = build().template;

function statement(template: ReturnType<typeof build>['template'], sid: string): any {
  return functionRoleStatements(template).find((s) => s.Sid === sid);
}

function joined(r: any): string {
  return typeof r === 'string' ? r : r['Fn::Join'][1].map((p: any) => (typeof p === 'string' ? p : '<ref>')).join('');
}

test('the function gets the sources as CURFLOW_EVIDENCE (TOML), only when configured', () => {
  const fnId = logicalId(withSources, 'AWS::Lambda::Function', 'ProcessingFunction');
  assert.equal(
    withSources.toJSON().Resources[fnId].Properties.Environment.Variables.CURFLOW_EVIDENCE,
    '[{name = "api-logs", location = "cloudwatch:///aws/lambda/api"}, {name = "usage", location = "s3://usage-logs/lambda/"}, ' +
      '{name = "inventory", location = "s3://usage-logs/inventory/"}, {name = "access", location = "s3://access-logs-bucket/"}]',
  );
  const noneId = logicalId(without, 'AWS::Lambda::Function', 'ProcessingFunction');
  assert.equal(without.toJSON().Resources[noneId].Properties.Environment.Variables.CURFLOW_EVIDENCE, undefined);
});

test('IAM: FilterLogEvents on the source log groups, ListBucket per bucket limited to its prefixes, GetObject under them', () => {
  const logs = statement(withSources, 'ReadEvidenceLogs');
  assert.equal(logs.Action, 'logs:FilterLogEvents');
  assert.deepEqual(asArray(logs.Resource).map(joined), ['arn:<ref>:logs:us-east-1:123456789012:log-group:/aws/lambda/api:*']);
  const list0 = statement(withSources, 'ListEvidencePrefixes0');
  assert.equal(list0.Action, 's3:ListBucket');
  assert.equal(joined(list0.Resource), 'arn:<ref>:s3:::usage-logs');
  assert.deepEqual(list0.Condition, { StringLike: { 's3:prefix': ['lambda/*', 'inventory/*'] } });
  const list1 = statement(withSources, 'ListEvidencePrefixes1');
  assert.equal(joined(list1.Resource), 'arn:<ref>:s3:::access-logs-bucket');
  assert.deepEqual(list1.Condition, { StringLike: { 's3:prefix': ['*'] } });
  const get = statement(withSources, 'ReadEvidenceObjects');
  assert.equal(get.Action, 's3:GetObject');
  assert.deepEqual(asArray(get.Resource).map(joined).sort(), [
    'arn:<ref>:s3:::access-logs-bucket/*',
    'arn:<ref>:s3:::usage-logs/inventory/*',
    'arn:<ref>:s3:::usage-logs/lambda/*',
  ]);
  for (const sid of ['ReadEvidenceLogs', 'ListEvidencePrefixes0', 'ReadEvidenceObjects', 'ReadEvidenceMetrics']) {
    assert.equal(statement(without, sid), undefined, `${sid} without sources`);
  }
  assert.equal(statement(withSources, 'ReadEvidenceMetrics'), undefined, 'no metrics source, no metrics reads');
});

test('IAM: a cloudwatch-metrics:// source gets ListMetrics and GetMetricData (no resource-level permissions exist)', () => {
  const metrics = statement(withMetrics, 'ReadEvidenceMetrics');
  assert.deepEqual(asArray(metrics.Action).sort(), ['cloudwatch:GetMetricData', 'cloudwatch:ListMetrics']);
  assert.equal(metrics.Resource, '*');
  for (const sid of ['ReadEvidenceLogs', 'ListEvidencePrefixes0', 'ReadEvidenceObjects']) {
    assert.equal(statement(withMetrics, sid), undefined, `${sid} without such sources`);
  }
  assert.throws(() => readEvidenceSources('[{"name": "m", "location": "cloudwatch-metrics://N?metric=X"}]'), /evidenceSources/);
});

test('evidenceSources: bad names, locations and duplicates fail synth', () => {
  assert.deepEqual(readEvidenceSources(undefined), []);
  for (const bad of [
    '[{"name": "x y", "location": "s3://b/p"}]',
    '[{"name": "x", "location": "/var/log/app"}]',
    '[{"name": "x", "location": "s3://Bad_Bucket/p"}]',
    '[{"name": "x", "location": "s3://b/p", "extra": 1}]',
    '[{"name": "x", "location": "s3://bucket/p"}, {"name": "x", "location": "cloudwatch://g"}]',
    '{"name": "x"}',
    '[not json',
  ]) {
    assert.throws(() => readEvidenceSources(bad), /evidenceSources/, bad);
  }
  assert.throws(() => build({ evidenceSources: '[{"name": "x", "location": "/tmp/logs"}]' }), /evidenceSources/);
});

test('attribution settings files: their variables and GetObject on exactly those objects, only when configured', () => {
  const { template } = build({
    attributionRules: 's3://curflow-config/attribution/rules.toml',
    s3PrefixMap: 's3://curflow-config/attribution/s3-prefixes.toml',
    agentSessionMap: 's3://other-config/sessions.csv',
  });
  const fnId = logicalId(template, 'AWS::Lambda::Function', 'ProcessingFunction');
  const vars = template.toJSON().Resources[fnId].Properties.Environment.Variables;
  assert.equal(vars.CURFLOW_ATTRIBUTION_RULES, 's3://curflow-config/attribution/rules.toml');
  assert.equal(vars.CURFLOW_S3_PREFIXES, 's3://curflow-config/attribution/s3-prefixes.toml');
  assert.equal(vars.CURFLOW_AGENT_SESSIONS, 's3://other-config/sessions.csv');
  assert.equal(vars.CURFLOW_ASSIGNMENTS, undefined);
  const get = statement(template, 'ReadAttributionSettings');
  assert.equal(get.Action, 's3:GetObject');
  assert.deepEqual(asArray(get.Resource).map(joined).sort(), [
    'arn:<ref>:s3:::curflow-config/attribution/rules.toml',
    'arn:<ref>:s3:::curflow-config/attribution/s3-prefixes.toml',
    'arn:<ref>:s3:::other-config/sessions.csv',
  ]);
  assert.equal(statement(without, 'ReadAttributionSettings'), undefined);
  const noneId = logicalId(without, 'AWS::Lambda::Function', 'ProcessingFunction');
  assert.equal(without.toJSON().Resources[noneId].Properties.Environment.Variables.CURFLOW_ATTRIBUTION_RULES, undefined);
});

test('an attribution settings file must be one S3 object: local paths and prefixes fail synth', () => {
  assert.throws(() => build({ attributionRules: '/etc/curflow/rules.toml' }), /attributionRules.*s3:\/\/BUCKET\/KEY/);
  assert.throws(() => build({ assignments: 's3://curflow-config/attribution/' }), /assignments.*one S3 object/);
});
