/** Report bucket, access-log bucket, bucket policy for billing services, usage table. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Match } from 'aws-cdk-lib/assertions';
import { build, logicalId } from './helpers';

const { template } = build();
const reportBucket = logicalId(template, 'AWS::S3::Bucket', 'StorageReportBucket');
const logBucket = logicalId(template, 'AWS::S3::Bucket', 'StorageAccessLogBucket');

test('report bucket: SSE, public access blocked, versioned, access-logged, retained', () => {
  const b = template.toJSON().Resources[reportBucket];
  assert.deepEqual(b.Properties.BucketEncryption, {
    ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
  });
  assert.deepEqual(b.Properties.PublicAccessBlockConfiguration, {
    BlockPublicAcls: true,
    BlockPublicPolicy: true,
    IgnorePublicAcls: true,
    RestrictPublicBuckets: true,
  });
  assert.deepEqual(b.Properties.VersioningConfiguration, { Status: 'Enabled' });
  assert.deepEqual(b.Properties.LoggingConfiguration, {
    DestinationBucketName: { Ref: logBucket },
    LogFilePrefix: 'report-bucket/',
  });
  assert.deepEqual(b.Properties.OwnershipControls, { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] });
  assert.equal(b.DeletionPolicy, 'Retain');
});

test('report bucket lifecycle: old reports to STANDARD_IA, noncurrent versions expire', () => {
  const rules = template.toJSON().Resources[reportBucket].Properties.LifecycleConfiguration.Rules;
  const byId = Object.fromEntries(rules.map((r: any) => [r.Id, r]));
  assert.deepEqual(byId['reports-to-infrequent-access'].Transitions, [{ StorageClass: 'STANDARD_IA', TransitionInDays: 90 }]);
  assert.deepEqual(byId['expire-noncurrent-versions'].NoncurrentVersionExpiration, { NoncurrentDays: 30 });
  assert.equal(byId['expire-noncurrent-versions'].ExpiredObjectDeleteMarker, true);
  assert.deepEqual(byId['abort-incomplete-uploads'].AbortIncompleteMultipartUpload, { DaysAfterInitiation: 7 });
});

test('lifecycle days come from context', () => {
  const t = build({ noncurrentVersionExpirationDays: '7', reportIaTransitionDays: 120 }).template;
  const id = logicalId(t, 'AWS::S3::Bucket', 'StorageReportBucket');
  const rules = t.toJSON().Resources[id].Properties.LifecycleConfiguration.Rules;
  assert.ok(rules.some((r: any) => r.NoncurrentVersionExpiration?.NoncurrentDays === 7));
  assert.ok(rules.some((r: any) => r.Transitions?.[0]?.TransitionInDays === 120));
});

test('report bucket policy: TLS only', () => {
  template.hasResourceProperties('AWS::S3::BucketPolicy', {
    Bucket: { Ref: reportBucket },
    PolicyDocument: {
      Statement: Match.arrayWith([
        Match.objectLike({
          Effect: 'Deny',
          Action: 's3:*',
          Principal: { AWS: '*' },
          Condition: { Bool: { 'aws:SecureTransport': 'false' } },
        }),
      ]),
    },
  });
});

test('report bucket policy: billingreports + bcm-data-exports may check the bucket and put objects, for this account only', () => {
  const policyId = logicalId(template, 'AWS::S3::BucketPolicy', 'StorageReportBucketPolicy');
  const statements: any[] = template.toJSON().Resources[policyId].Properties.PolicyDocument.Statement;
  const services = ['bcm-data-exports.amazonaws.com', 'billingreports.amazonaws.com'];
  const billing = statements.filter((s) => s.Effect === 'Allow' && s.Principal?.Service);
  assert.equal(billing.length, 2);
  const actions = billing.flatMap((s) => [s.Action].flat()).sort();
  assert.deepEqual(actions, ['s3:GetBucketAcl', 's3:GetBucketPolicy', 's3:PutObject']);
  for (const s of billing) {
    assert.deepEqual([...s.Principal.Service].sort(), services);
    assert.deepEqual(s.Condition.StringEquals, { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } });
    const arns = JSON.stringify(s.Condition.StringLike['aws:SourceArn']);
    assert.match(arns, /:cur:us-east-1:/);
    assert.match(arns, /:definition\/\*/);
    assert.match(arns, /:bcm-data-exports:us-east-1:/);
    assert.match(arns, /:export\/\*/);
  }
  const put = billing.find((s) => s.Action === 's3:PutObject');
  assert.deepEqual(put.Resource, { 'Fn::Join': ['', [{ 'Fn::GetAtt': [reportBucket, 'Arn'] }, '/*']] });
  const check = billing.find((s) => s.Action !== 's3:PutObject');
  assert.deepEqual(check.Resource, { 'Fn::GetAtt': [reportBucket, 'Arn'] });
});

test('access-log bucket: SSE-S3, TLS only, private, expiring, separate from the report bucket', () => {
  assert.notEqual(logBucket, reportBucket);
  template.hasResource('AWS::S3::Bucket', {
    Properties: Match.objectLike({
      BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
      PublicAccessBlockConfiguration: Match.objectLike({ BlockPublicAcls: true, RestrictPublicBuckets: true }),
      LifecycleConfiguration: { Rules: Match.arrayWith([Match.objectLike({ ExpirationInDays: 365 })]) },
    }),
    DeletionPolicy: 'Retain',
  });
  template.hasResourceProperties('AWS::S3::BucketPolicy', {
    Bucket: { Ref: logBucket },
    PolicyDocument: {
      Statement: Match.arrayWith([
        Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        Match.objectLike({ Effect: 'Allow', Principal: { Service: 'logging.s3.amazonaws.com' } }),
      ]),
    },
  });
});

test('usage table: keys, GSI month-index, on-demand, PITR, encryption, deletion protection, retained', () => {
  template.resourceCountIs('AWS::DynamoDB::Table', 1);
  template.hasResource('AWS::DynamoDB::Table', {
    Properties: {
      TableName: 'curflow-usage',
      KeySchema: [
        { AttributeName: 'accountant_id', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      AttributeDefinitions: Match.arrayWith([
        { AttributeName: 'accountant_id', AttributeType: 'S' },
        { AttributeName: 'sk', AttributeType: 'S' },
        { AttributeName: 'month', AttributeType: 'S' },
      ]),
      BillingMode: 'PAY_PER_REQUEST',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      SSESpecification: { SSEEnabled: true },
      DeletionProtectionEnabled: true,
      GlobalSecondaryIndexes: [
        {
          IndexName: 'month-index',
          KeySchema: [
            { AttributeName: 'month', KeyType: 'HASH' },
            { AttributeName: 'sk', KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'ALL' },
        },
      ],
    },
    DeletionPolicy: 'Retain',
    UpdateReplacePolicy: 'Retain',
  });
});

test('table name comes from context', () => {
  build({ tableName: 'acme-usage' }).template.hasResourceProperties('AWS::DynamoDB::Table', { TableName: 'acme-usage' });
});
