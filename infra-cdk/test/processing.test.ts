/** The curflow Lambda: runtime, sizing, environment, async config, S3 triggers, IAM. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Match } from 'aws-cdk-lib/assertions';
import { asArray, build, functionRoleStatements, iamStatements, logicalId, resourcesOfType } from './helpers';

const { template } = build();
const fnId = logicalId(template, 'AWS::Lambda::Function', 'ProcessingFunction');
const fn = template.toJSON().Resources[fnId];
const tableId = logicalId(template, 'AWS::DynamoDB::Table', 'StorageUsageTable');
const topicId = logicalId(template, 'AWS::SNS::Topic', 'AlertingAlertsTopic');
const queueId = logicalId(template, 'AWS::SQS::Queue', 'AlertingFailureQueue');
const bucketId = logicalId(template, 'AWS::S3::Bucket', 'StorageReportBucket');
const logGroupId = logicalId(template, 'AWS::Logs::LogGroup', 'ProcessingLogGroup');

test('Lambda: provided.al2023, arm64, bootstrap, 2048 MB, 15 min, 4096 MB /tmp, reserved concurrency 2', () => {
  const p = fn.Properties;
  assert.equal(p.Runtime, 'provided.al2023');
  assert.deepEqual(p.Architectures, ['arm64']);
  assert.equal(p.Handler, 'bootstrap');
  assert.equal(p.MemorySize, 2048);
  assert.equal(p.Timeout, 900);
  assert.deepEqual(p.EphemeralStorage, { Size: 4096 });
  assert.equal(p.ReservedConcurrentExecutions, 2);
  assert.ok(p.Code.S3Key.endsWith('.zip'), 'code is a file asset');
});

test('Lambda environment', () => {
  assert.deepEqual(fn.Properties.Environment.Variables, {
    CURFLOW_STORE: { 'Fn::Join': ['', ['dynamodb://', { Ref: tableId }]] },
    CURFLOW_TAG_KEY: 'accountant_id',
    CURFLOW_MEMORY_LIMIT_MB: '1024',
    CURFLOW_SPILL_DIR: '/tmp/curflow-spill',
    CURFLOW_SPILL_MAX_MB: '3584',
    CURFLOW_ALERT_SNS_TOPIC_ARN: { Ref: topicId },
    CURFLOW_LOG: 'info',
  });
});

test('Lambda logs: own log group, 1 year retention, JSON format', () => {
  assert.deepEqual(fn.Properties.LoggingConfig, { LogFormat: 'JSON', LogGroup: { Ref: logGroupId } });
  template.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 365 });
});

test('context: lambdaArch=x86_64, tagKey, sizing, reservedConcurrency=0, logRetentionDays', () => {
  const t = build({
    lambdaArch: 'x86_64',
    tagKey: 'team',
    lambdaMemoryMb: '3008',
    lambdaEphemeralMb: 8192,
    memoryLimitMb: '1504',
    reservedConcurrency: '0',
    logRetentionDays: '90',
  }).template;
  const id = logicalId(t, 'AWS::Lambda::Function', 'ProcessingFunction');
  const p = t.toJSON().Resources[id].Properties;
  assert.deepEqual(p.Architectures, ['x86_64']);
  assert.equal(p.Environment.Variables.CURFLOW_TAG_KEY, 'team');
  assert.equal(p.Environment.Variables.CURFLOW_MEMORY_LIMIT_MB, '1504');
  assert.equal(p.MemorySize, 3008);
  assert.deepEqual(p.EphemeralStorage, { Size: 8192 });
  assert.equal(p.Environment.Variables.CURFLOW_SPILL_MAX_MB, '7680');
  assert.equal(p.ReservedConcurrentExecutions, undefined);
  t.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 90 });
});

test('async invocation: 2 retries, max event age, on-failure to the SQS queue', () => {
  template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
    FunctionName: { Ref: fnId },
    Qualifier: '$LATEST',
    MaximumRetryAttempts: 2,
    MaximumEventAgeInSeconds: 21600,
    DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [queueId, 'Arn'] } } },
  });
});

test('S3 notifications: ObjectCreated with suffix Manifest.json for cur2/ and cur/', () => {
  const [[, n]] = resourcesOfType(template, 'Custom::S3BucketNotifications');
  assert.deepEqual(n.Properties.BucketName, { Ref: bucketId });
  const configs = n.Properties.NotificationConfiguration.LambdaFunctionConfigurations;
  assert.equal(configs.length, 2);
  const prefixes = configs.map((c: any) => {
    assert.deepEqual(c.Events, ['s3:ObjectCreated:*']);
    assert.deepEqual(c.LambdaFunctionArn, { 'Fn::GetAtt': [fnId, 'Arn'] });
    const rules = Object.fromEntries(c.Filter.Key.FilterRules.map((r: any) => [r.Name, r.Value]));
    assert.equal(rules.suffix, 'Manifest.json');
    return rules.prefix;
  });
  assert.deepEqual(prefixes.sort(), ['cur/', 'cur2/']);
  // S3 may invoke the function, from this bucket and account only.
  template.hasResourceProperties('AWS::Lambda::Permission', {
    Action: 'lambda:InvokeFunction',
    Principal: 's3.amazonaws.com',
    FunctionName: { 'Fn::GetAtt': [fnId, 'Arn'] },
    SourceAccount: '123456789012',
    SourceArn: { 'Fn::GetAtt': [bucketId, 'Arn'] },
  });
});

test('overlapping report prefixes are refused (S3 would reject the notification configuration)', () => {
  assert.throws(() => build({ cur2Prefix: 'cur/v2' }), /overlap/);
});

test('IAM: no statement grants s3:* or dynamodb:* actions on Resource "*"', () => {
  const statements = iamStatements(template);
  assert.ok(statements.length > 0);
  for (const { source, statement } of statements) {
    const actions = asArray<string>(statement.Action);
    if (!actions.some((a) => a.startsWith('s3:') || a.startsWith('dynamodb:'))) continue;
    assert.ok(!asArray(statement.Resource).includes('*'), `${source}: ${JSON.stringify(statement)}`);
  }
});

test('IAM: no managed policies (no AWSLambdaBasicExecutionRole) on any role', () => {
  for (const [id, role] of resourcesOfType(template, 'AWS::IAM::Role')) {
    assert.equal(role.Properties.ManagedPolicyArns, undefined, id);
  }
});

test('IAM: function role statements are exactly the least-privilege set', () => {
  const bySid = Object.fromEntries(functionRoleStatements(template).map((s) => [s.Sid ?? asArray(s.Action).join(','), s]));
  const arn = { 'Fn::GetAtt': [bucketId, 'Arn'] };
  assert.deepEqual(bySid.ReadReports.Action, 's3:GetObject');
  const sorted = (xs: unknown[]) => xs.map((x) => JSON.stringify(x)).sort();
  assert.deepEqual(
    sorted(bySid.ReadReports.Resource),
    sorted([{ 'Fn::Join': ['', [arn, '/cur2/*']] }, { 'Fn::Join': ['', [arn, '/cur/*']] }]),
  );
  assert.deepEqual(bySid.ListReportPrefixes, {
    Sid: 'ListReportPrefixes',
    Effect: 'Allow',
    Action: 's3:ListBucket',
    Resource: arn,
    Condition: { StringLike: { 's3:prefix': ['cur2/*', 'cur/*'] } },
  });
  assert.deepEqual([...bySid.UsageTable.Action].sort(), [
    'dynamodb:BatchWriteItem',
    'dynamodb:DeleteItem',
    'dynamodb:DescribeTable',
    'dynamodb:GetItem',
    'dynamodb:PutItem',
    'dynamodb:Query',
  ]);
  assert.deepEqual(bySid.UsageTable.Resource, [
    { 'Fn::GetAtt': [tableId, 'Arn'] },
    { 'Fn::Join': ['', [{ 'Fn::GetAtt': [tableId, 'Arn'] }, '/index/month-index']] },
  ]);
  assert.deepEqual(bySid.PublishAlerts, { Sid: 'PublishAlerts', Effect: 'Allow', Action: 'sns:Publish', Resource: { Ref: topicId } });
  assert.deepEqual(bySid.WriteOwnLogs.Resource, { 'Fn::GetAtt': [logGroupId, 'Arn'] });
  assert.deepEqual(bySid.WriteOwnLogs.Action, ['logs:CreateLogStream', 'logs:PutLogEvents']);
  assert.deepEqual(bySid.UseAlertsKeyForPublish.Condition, { StringEquals: { 'kms:ViaService': 'sns.us-east-1.amazonaws.com' } });
  assert.equal(bySid.ReadEvidenceLogs, undefined, 'no evidence log groups by default');
  // The on-failure destination needs SendMessage on the queue (added by CDK).
  const sqs = Object.values(bySid).find((s: any) => asArray(s.Action).includes('sqs:SendMessage')) as any;
  assert.deepEqual(sqs.Resource, { 'Fn::GetAtt': [queueId, 'Arn'] });
  // Nothing else, and no wildcard action anywhere.
  assert.equal(Object.keys(bySid).length, 7);
  for (const s of Object.values(bySid) as any[]) {
    assert.equal(s.Effect, 'Allow');
    for (const a of asArray<string>(s.Action)) assert.ok(!a.includes('*'), a);
    assert.ok(!asArray(s.Resource).includes('*'), JSON.stringify(s));
  }
});

test('IAM: evidenceLogGroups adds logs:FilterLogEvents on exactly those groups', () => {
  const t = build({ evidenceLogGroups: '/aws/eks/prod/cluster, /ecs/billing' }).template;
  const s = functionRoleStatements(t).find((x) => x.Sid === 'ReadEvidenceLogs');
  assert.equal(s.Action, 'logs:FilterLogEvents');
  assert.deepEqual(
    s.Resource.map((r: any) => r['Fn::Join'][1][2]),
    [':logs:us-east-1:123456789012:log-group:/aws/eks/prod/cluster:*', ':logs:us-east-1:123456789012:log-group:/ecs/billing:*'],
  );
  // JSON list form from cdk.json works too.
  const t2 = build({ evidenceLogGroups: ['/one'] }).template;
  assert.equal(asArray(functionRoleStatements(t2).find((x) => x.Sid === 'ReadEvidenceLogs').Resource).length, 1);
});

test('S3 notification handler has its own minimal role', () => {
  const handlerId = logicalId(template, 'AWS::Lambda::Function', 'BucketNotificationsHandler');
  const roleRef = template.toJSON().Resources[handlerId].Properties.Role['Fn::GetAtt'][0];
  assert.match(roleRef, /^StorageNotificationsHandlerRole/);
  template.hasResourceProperties('AWS::IAM::Policy', {
    Roles: [{ Ref: roleRef }],
    PolicyDocument: {
      Statement: Match.arrayWith([
        Match.objectLike({ Action: 's3:PutBucketNotification', Resource: { 'Fn::GetAtt': [bucketId, 'Arn'] } }),
      ]),
    },
  });
});

/**
 * The policy must grant every AWS operation the function's Rust code calls. This reads the SDK
 * calls (`.describe_table()`, `.publish()`, ...) from the sources of each AWS-facing module and
 * checks each against the function role's actions, so a new call cannot ship without its
 * permission (the IAM-enforced end-to-end test of issue 12 will check the same at run time).
 */
test('IAM: every DynamoDB, SNS, CloudWatch Logs, STS and Cost Explorer operation the Rust code calls is granted', () => {
  const fs = require('node:fs') as typeof import('node:fs');
  const path = require('node:path') as typeof import('node:path');
  const root = path.join(__dirname, '..', '..', 'pipeline');
  // Every Rust source of the pipeline crates, wherever a crate split moves it; integration tests
  // (`tests/`) and build output are not code the function runs.
  const rustFiles = (dir: string): string[] =>
    fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory()
        ? ['tests', 'target', 'benches'].includes(e.name) ? [] : rustFiles(path.join(dir, e.name))
        : e.name.endsWith('.rs') ? [path.join(dir, e.name)] : [],
    );
  const pascal = (snake: string) => snake.split('_').map((w) => w[0].toUpperCase() + w.slice(1)).join('');
  // Operations of the code that the deployed function never runs, with the reason.
  const notByTheFunction: Record<string, string> = {
    'dynamodb:CreateTable': 'DynamoStore::create_table_if_missing is for tests and local use; infra-cdk creates the table',
  };
  const services: [string, RegExp][] = [
    ['dynamodb',
      /\.(describe_table|get_item|put_item|update_item|delete_item|batch_write_item|batch_get_item|query|scan|create_table|transact_write_items|transact_get_items)\(\)/g],
    ['sns', /\.(publish)\(\)/g],
    ['logs', /\.(filter_log_events|start_query|get_query_results|describe_log_groups)\(\)/g],
    ['sts', /\.(assume_role)\(\)/g],
    ['ce', /\.(get_cost_and_usage|get_cost_forecast|get_dimension_values|get_tags)\(\)/g],
  ];
  // With a connected account, so the Cost Explorer statements (granted only then) are present.
  const connected = build({
    connectedAccounts: [{ name: 'p', accountId: '111111111111', roleArn: 'arn:aws:iam::111111111111:role/r', externalId: 'ext-1' }],
  }).template;
  const granted = new Set(functionRoleStatements(connected).flatMap((s) => asArray<string>(s.Action)));
  const called = new Set<string>();
  const sources = rustFiles(root).map((file) => fs.readFileSync(file, 'utf8').split('#[cfg(test)]')[0]);
  for (const [service, pattern] of services) {
    for (const text of sources) {
      for (const m of text.matchAll(pattern)) called.add(`${service}:${pascal(m[1])}`);
    }
  }
  assert.ok(
    called.has('dynamodb:DescribeTable') && called.has('sns:Publish') && called.has('logs:FilterLogEvents') &&
      called.has('sts:AssumeRole') && called.has('ce:GetCostAndUsage'),
    `the scan of ${root} missed calls the code is known to make: ${[...called].join(', ')}`,
  );
  const logsGranted = [...granted].some((a) => a === 'logs:FilterLogEvents');
  for (const action of called) {
    if (notByTheFunction[action]) continue;
    // Evidence log groups are granted only when configured (ReadEvidenceLogs); none by default.
    if (action.startsWith('logs:') && !logsGranted) continue;
    assert.ok(granted.has(action), `the function calls ${action} but its role does not grant it`);
  }
  // And the other way round: nothing granted that the code does not call. Statements the Lambda
  // service (not curflow's code) uses are named with the reason; tests/lambda_iam.rs checks at run
  // time that the function works without them.
  const usedByTheService: Record<string, string> = {
    'logs:CreateLogStream': 'the Lambda service writes the function output to its log group',
    'logs:PutLogEvents': 'the Lambda service writes the function output to its log group',
    'kms:Decrypt': 'SNS uses the alerts key on the publisher\'s behalf',
    'kms:GenerateDataKey': 'SNS uses the alerts key on the publisher\'s behalf',
    'sqs:SendMessage': 'the Lambda service sends failed async events to the failure queue',
    'sqs:GetQueueAttributes': 'the Lambda service sends failed async events to the failure queue',
    'sqs:GetQueueUrl': 'the Lambda service sends failed async events to the failure queue',
  };
  for (const action of granted) {
    if (usedByTheService[action] || action.startsWith('s3:')) continue;
    assert.ok(called.has(action), `the role grants ${action}, which the Rust code never calls: drop it`);
  }
});
