/** Alerts topic + key, failure queue, alarms, nightly rule, outputs. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Match } from 'aws-cdk-lib/assertions';
import { build, logicalId } from './helpers';

const { template } = build();
const fnId = logicalId(template, 'AWS::Lambda::Function', 'ProcessingFunction');
const topicId = logicalId(template, 'AWS::SNS::Topic', 'AlertingAlertsTopic');
const keyId = logicalId(template, 'AWS::KMS::Key', 'AlertingAlertsKey');
const queueId = logicalId(template, 'AWS::SQS::Queue', 'AlertingFailureQueue');

test('alerts topic: customer-managed KMS key with rotation, TLS-only policy, CloudWatch may publish', () => {
  template.hasResourceProperties('AWS::SNS::Topic', {
    TopicName: 'curflow-alerts',
    KmsMasterKeyId: { 'Fn::GetAtt': [keyId, 'Arn'] },
  });
  template.hasResourceProperties('AWS::KMS::Key', {
    EnableKeyRotation: true,
    KeyPolicy: {
      Statement: Match.arrayWith([
        Match.objectLike({
          Principal: { Service: 'cloudwatch.amazonaws.com' },
          Action: ['kms:Decrypt', 'kms:GenerateDataKey*'],
          // Scoped to CloudWatch acting for this account, not any account's alarms.
          Condition: { StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } } },
        }),
      ]),
    },
  });
  template.hasResourceProperties('AWS::SNS::TopicPolicy', {
    Topics: [{ Ref: topicId }],
    PolicyDocument: {
      Statement: Match.arrayWith([
        Match.objectLike({ Effect: 'Deny', Action: 'sns:Publish', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        Match.objectLike({
          Effect: 'Allow',
          Action: 'sns:Publish',
          Principal: { Service: 'cloudwatch.amazonaws.com' },
          Condition: Match.objectLike({ StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } } }),
        }),
      ]),
    },
  });
  template.resourceCountIs('AWS::SNS::Subscription', 0);
});

test('alertEmail subscribes an address', () => {
  build({ alertEmail: 'ops@example.com' }).template.hasResourceProperties('AWS::SNS::Subscription', {
    Protocol: 'email',
    Endpoint: 'ops@example.com',
  });
});

test('failure queue: SSE-SQS, TLS only, 14 days retention', () => {
  template.hasResourceProperties('AWS::SQS::Queue', { SqsManagedSseEnabled: true, MessageRetentionPeriod: 1209600 });
  template.hasResourceProperties('AWS::SQS::QueuePolicy', {
    Queues: [{ Ref: queueId }],
    PolicyDocument: {
      Statement: Match.arrayWith([
        Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
      ]),
    },
  });
});

test('alarm on Lambda Errors notifies the topic', () => {
  template.hasResourceProperties('AWS::CloudWatch::Alarm', {
    Namespace: 'AWS/Lambda',
    MetricName: 'Errors',
    Dimensions: [{ Name: 'FunctionName', Value: { Ref: fnId } }],
    Statistic: 'Sum',
    Period: 300,
    Threshold: 1,
    ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    TreatMissingData: 'notBreaching',
    AlarmActions: [{ Ref: topicId }],
  });
});

test('alarm on failure-queue ApproximateNumberOfMessagesVisible > 0 notifies the topic', () => {
  template.hasResourceProperties('AWS::CloudWatch::Alarm', {
    Namespace: 'AWS/SQS',
    MetricName: 'ApproximateNumberOfMessagesVisible',
    Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [queueId, 'QueueName'] } }],
    Threshold: 0,
    ComparisonOperator: 'GreaterThanThreshold',
    AlarmActions: [{ Ref: topicId }],
  });
  template.resourceCountIs('AWS::CloudWatch::Alarm', 2);
});

test('nightly rule: cron 03:30 UTC, constant input {"curflow":"nightly"}, failures to the queue', () => {
  template.hasResourceProperties('AWS::Events::Rule', {
    ScheduleExpression: 'cron(30 3 * * ? *)',
    State: 'ENABLED',
    Targets: [
      Match.objectLike({
        Arn: { 'Fn::GetAtt': [fnId, 'Arn'] },
        Input: '{"curflow":"nightly"}',
        DeadLetterConfig: { Arn: { 'Fn::GetAtt': [queueId, 'Arn'] } },
        RetryPolicy: { MaximumRetryAttempts: 2, MaximumEventAgeInSeconds: 7200 },
      }),
    ],
  });
  template.hasResourceProperties('AWS::Lambda::Permission', {
    Action: 'lambda:InvokeFunction',
    Principal: 'events.amazonaws.com',
    FunctionName: { 'Fn::GetAtt': [fnId, 'Arn'] },
  });
});

test('nightly schedule is configurable and can be turned off', () => {
  build({ nightlySchedule: 'cron(0 5 * * ? *)' }).template.hasResourceProperties('AWS::Events::Rule', {
    ScheduleExpression: 'cron(0 5 * * ? *)',
  });
  build({ nightlySchedule: 'off' }).template.resourceCountIs('AWS::Events::Rule', 0);
  assert.throws(() => build({ nightlySchedule: '30 3 * * *' }), /nightlySchedule/);
});

test('outputs: bucket name, table name, function name, topic ARN', () => {
  const outputs = template.toJSON().Outputs;
  const bucketId = logicalId(template, 'AWS::S3::Bucket', 'StorageReportBucket');
  const tableId = logicalId(template, 'AWS::DynamoDB::Table', 'StorageUsageTable');
  assert.deepEqual(outputs.ReportBucketName.Value, { Ref: bucketId });
  assert.deepEqual(outputs.UsageTableName.Value, { Ref: tableId });
  assert.deepEqual(outputs.FunctionName.Value, { Ref: fnId });
  assert.deepEqual(outputs.AlertsTopicArn.Value, { Ref: topicId });
  assert.ok(outputs.FailureQueueUrl);
});
