/**
 * Storage: the bucket AWS billing delivers reports into, its access-log bucket, and the DynamoDB
 * table curflow writes per-tenant usage to.
 *
 * Why these choices:
 * - Report bucket: billing data is sensitive and must not be lost, so it is private (BLOCK_ALL,
 *   ACLs disabled), TLS-only, SSE-S3 encrypted (Data Exports/CUR deliver to SSE-S3 buckets without
 *   any KMS key-policy plumbing), versioned and RETAINed. CUR 2.0 with OVERWRITE_REPORT rewrites the
 *   current month's files up to several times a day, so versioning accumulates noncurrent versions:
 *   the lifecycle expires them after `noncurrentVersionExpirationDays`, and moves report objects
 *   older than `reportIaTransitionDays` (closed months, rarely re-read) to STANDARD_IA.
 * - Access logs go to a separate bucket (a bucket must not log into itself).
 * - The bucket policy is the one AWS documents for CUR and Data Exports, restricted to this
 *   account's report definitions / exports with aws:SourceAccount and aws:SourceArn.
 * - The S3-notification custom resource gets its own minimal role instead of CDK's default (which
 *   attaches AWSLambdaBasicExecutionRole and allows s3:PutBucketNotification on "*").
 * - Usage table: PAY_PER_REQUEST (a few thousand writes per month, bursty), PITR, AWS-managed
 *   encryption, deletion protection and RETAIN: it holds the billing history tenants are charged from.
 */
import { Aws, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { BILLING_REGION } from './config';
import { acknowledgeWildcardResources } from './nag';

/** Name of the usage table's GSI (month -> every tenant's rows of that month). */
export const MONTH_INDEX = 'month-index';

export interface StorageProps {
  /** DynamoDB usage table name. */
  readonly tableName: string;
  /** Days after which current report objects move to STANDARD_IA. */
  readonly reportIaTransitionDays: number;
  /** Days after which noncurrent report versions are deleted. */
  readonly noncurrentVersionExpirationDays: number;
  /** Days server access logs are kept. */
  readonly accessLogRetentionDays: number;
}

/**
 * Report bucket, access-log bucket and usage table. (Laid out as every construct of the stack is:
 * public parts, then a constructor building them from its props.)
 */
export class CurflowStorage extends Construct {
  /** Bucket CUR / Data Exports deliver into; the Lambda reads from it. */
  public readonly reportBucket: s3.Bucket;
  /** Server-access-log sink for the report bucket. */
  public readonly accessLogBucket: s3.Bucket;
  /** Per-tenant usage table. */
  public readonly usageTable: dynamodb.Table;

  constructor(scope: Construct, id: string, props: StorageProps) {
    super(scope, id);
    const stack = Stack.of(this);

    this.accessLogBucket = new s3.Bucket(this, 'AccessLogBucket', {
      encryption: s3.BucketEncryption.S3_MANAGED, // server access logging supports SSE-S3 targets only
      enforceSSL: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      removalPolicy: RemovalPolicy.RETAIN,
      lifecycleRules: [
        { id: 'expire-access-logs', expiration: Duration.days(props.accessLogRetentionDays) },
        { id: 'abort-incomplete-uploads', abortIncompleteMultipartUploadAfter: Duration.days(7) },
      ],
    });
    // No AwsSolutions-S1 finding here: cdk-nag treats a bucket that receives access logs as compliant.

    // Role for CDK's S3-notification custom resource; passed immutable so CDK adds nothing to it.
    const notificationsRole = new iam.Role(this, 'NotificationsHandlerRole', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: 'CDK Custom::S3BucketNotifications handler for the curflow report bucket',
    });

    this.reportBucket = new s3.Bucket(this, 'ReportBucket', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      versioned: true,
      serverAccessLogsBucket: this.accessLogBucket,
      serverAccessLogsPrefix: 'report-bucket/',
      removalPolicy: RemovalPolicy.RETAIN,
      notificationsHandlerRole: notificationsRole.withoutPolicyUpdates(),
      lifecycleRules: [
        {
          id: 'reports-to-infrequent-access',
          transitions: [
            { storageClass: s3.StorageClass.INFREQUENT_ACCESS, transitionAfter: Duration.days(props.reportIaTransitionDays) },
          ],
        },
        {
          id: 'expire-noncurrent-versions',
          noncurrentVersionExpiration: Duration.days(props.noncurrentVersionExpirationDays),
          expiredObjectDeleteMarker: true,
        },
        { id: 'abort-incomplete-uploads', abortIncompleteMultipartUploadAfter: Duration.days(7) },
      ],
    });

    // Bucket policy for CUR (billingreports) and Data Exports (bcm-data-exports), as documented by
    // AWS, limited to report definitions / exports of this account. Both services live in us-east-1
    // whatever the bucket's region.
    const billingServices = [
      new iam.ServicePrincipal('billingreports.amazonaws.com'),
      new iam.ServicePrincipal('bcm-data-exports.amazonaws.com'),
    ];
    const sourceConditions = {
      StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID },
      StringLike: {
        'aws:SourceArn': [
          `arn:${Aws.PARTITION}:cur:${BILLING_REGION}:${Aws.ACCOUNT_ID}:definition/*`,
          `arn:${Aws.PARTITION}:bcm-data-exports:${BILLING_REGION}:${Aws.ACCOUNT_ID}:export/*`,
        ],
      },
    };
    this.reportBucket.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'BillingReportsCheckBucket',
        principals: billingServices,
        actions: ['s3:GetBucketAcl', 's3:GetBucketPolicy'],
        resources: [this.reportBucket.bucketArn],
        conditions: sourceConditions,
      }),
    );
    this.reportBucket.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'BillingReportsDeliver',
        principals: billingServices,
        actions: ['s3:PutObject'],
        resources: [this.reportBucket.arnForObjects('*')],
        conditions: sourceConditions,
      }),
    );

    notificationsRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ManageReportBucketNotifications',
        actions: ['s3:PutBucketNotification'],
        resources: [this.reportBucket.bucketArn],
      }),
    );
    // The handler's function name is generated by CloudFormation as "<stack>-BucketNotificationsHandler...".
    const handlerLogs = `arn:${Aws.PARTITION}:logs:${stack.region}:${stack.account}:log-group:/aws/lambda/${stack.stackName}-*`;
    notificationsRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'WriteOwnLogs',
        actions: ['logs:CreateLogGroup', 'logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [handlerLogs],
      }),
    );
    acknowledgeWildcardResources(
      notificationsRole,
      [handlerLogs],
      "The S3 notification handler is created by CDK and its function name is generated by CloudFormation (stack name, then BucketNotificationsHandler, then a random suffix), so its log group can only be named by prefix; the grant is limited to Lambda log groups whose names start with this stack's name.",
    );

    this.usageTable = new dynamodb.Table(this, 'UsageTable', {
      tableName: props.tableName,
      partitionKey: { name: 'accountant_id', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'sk', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      deletionProtection: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.usageTable.addGlobalSecondaryIndex({
      indexName: MONTH_INDEX,
      partitionKey: { name: 'month', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'sk', type: dynamodb.AttributeType.STRING },
      projectionType: dynamodb.ProjectionType.ALL,
    });
  }

  /** ARNs of the objects under each report prefix (`<bucket>/<prefix>/*`). */
  public reportObjectArns(prefixes: readonly string[]): string[] {
    return prefixes.map((p) => this.reportBucket.arnForObjects(`${p}/*`));
  }
}
