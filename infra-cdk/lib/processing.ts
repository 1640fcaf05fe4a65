/**
 * Processing: the curflow Lambda (a prebuilt Rust binary on provided.al2023), its role, log group,
 * async-invocation settings and the S3 notifications that trigger it.
 *
 * Why:
 * - Sizing (memory 2048 MB, timeout 15 min, /tmp 4096 MB): the README's Performance section
 *   measured a 40M-row generated month (~44,000 groups) at 368 MiB peak RSS in ~3 s on 2 cores, but
 *   memory follows the number of groups, not rows: a realistic 2,000-tenant month (10M rows,
 *   ~520,000 cost lines) peaks at ~450 MiB, and ~1.7 GB at ~4M lines (open issue "Realistic
 *   months"). Writing to DynamoDB adds a few MB whatever the number of lines (items are made as
 *   their batch is sent and read back a page at a time; until session 31 the whole version was
 *   built as SDK items first, ~7 KB a line, which would have taken ~3.6 GB more for that 10M-row
 *   month). 2048 MB buys
 *   ~1.2 vCPU and room over the 1024 MiB DataFusion pool (CURFLOW_MEMORY_LIMIT_MB);
 *   aggregation beyond the pool spills to CURFLOW_SPILL_DIR on /tmp, hence 4 GB ephemeral storage,
 *   capped by CURFLOW_SPILL_MAX_MB at the ephemeral size less 512 MB. The pool may be at most half
 *   the function's memory (config.ts refuses more): the other half holds what the pool does not
 *   account (the fast path's group tables, decoded batches, the lines being written, the SDK).
 *   The 15-minute timeout is for months far larger than measured, not for the usual case.
 * - Reserved concurrency 2: CUR redelivers the current month several times a day, and an S3
 *   notification plus the nightly run can coincide; a small cap stops deliveries of one month from
 *   piling up while leaving room for a second month. Throttled async events are retried by Lambda for up to maxEventAge.
 * - Async failures: 2 retries, events older than 6 h dropped, then the event goes to the failure
 *   queue (alerting.ts), which alarms.
 * - IAM is written out statement by statement instead of using grant helpers or
 *   AWSLambdaBasicExecutionRole, so the policy is exactly what curflow needs: read the report
 *   prefixes, list only under them, read/write the usage table and its index, publish alerts, write
 *   its own log group, and (optionally) read evidence log groups.
 * - Connected accounts (context `connectedAccounts`, README "Connected accounts"): only when some
 *   are configured, `sts:AssumeRole` on exactly their role ARNs (never `*`: the function must not
 *   be able to assume any other role that happens to trust this account) and the two Cost
 *   Explorer reads. The Cost Explorer calls run under the assumed role's credentials, so the
 *   connected account's role policy is what AWS checks for them (tests/lambda_iam.rs shows the
 *   function works without this grant); it is there because issue 15 asks for it and keeps the
 *   policy the list of what the code calls (processing.test.ts). Cost Explorer has no
 *   resource-level permissions, hence `*`.
 */
import { Aws, Duration, Size, Stack } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as destinations from 'aws-cdk-lib/aws-lambda-destinations';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as s3n from 'aws-cdk-lib/aws-s3-notifications';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import {
  accountsToml,
  ATTRIBUTION_SETTINGS,
  type AttributionSettings,
  evidenceLocation,
  evidenceToml,
  type ConnectedAccount,
  type EvidenceSource,
  type LambdaArch,
} from './config';
import { acknowledge, acknowledgeWildcardResources } from './nag';

/** Suffix of the manifests that mark a complete delivery (legacy `<report>-Manifest.json`, CUR 2.0 `metadata/.../<export>-Manifest.json`). */
export const MANIFEST_SUFFIX = 'Manifest.json';
/** Where DataFusion spills on the function's /tmp. */
export const SPILL_DIR = '/tmp/curflow-spill';

/** /tmp kept free of spill files (CURFLOW_SPILL_MAX_MB = ephemeral storage − this). */
export const TMP_RESERVE_MB = 512;
/**
 * DynamoDB actions the store calls, exactly (processing.test.ts derives the calls from the Rust
 * sources and fails on a missing or an unused grant; tests/lambda_iam.rs runs the function under
 * this policy with IAM enforced). The store writes with BatchWriteItem and (conditional) PutItem
 * and never calls TransactWriteItems, UpdateItem or ConditionCheckItem, so those are not granted.
 */
export const DYNAMODB_ACTIONS = [
  'dynamodb:DescribeTable', // store::open checks the table's key schema and index before use
  'dynamodb:GetItem',
  'dynamodb:PutItem',
  'dynamodb:DeleteItem',
  'dynamodb:BatchWriteItem',
  'dynamodb:Query',
];

/** Cost Explorer actions the sync (`GetCostAndUsage`) and the forecast (`GetCostForecast`) call. */
export const COST_EXPLORER_ACTIONS = ['ce:GetCostAndUsage', 'ce:GetCostForecast'];

export interface ProcessingProps {
  /** Directory holding `bootstrap` (checked by asset.ts). */
  readonly assetDir: string;
  readonly arch: LambdaArch;
  readonly memoryMb: number;
  readonly timeoutMinutes: number;
  readonly ephemeralMb: number;
  /** 0 = no reservation. */
  readonly reservedConcurrency: number;
  readonly logRetentionDays: number;
  /** CURFLOW_TAG_KEY. */
  readonly tagKey: string;
  /** CURFLOW_MEMORY_LIMIT_MB. */
  readonly memoryLimitMb: number;
  readonly reportBucket: s3.IBucket;
  /** Prefixes (no slashes) the function reads and is notified for. */
  readonly reportPrefixes: readonly string[];
  readonly usageTable: dynamodb.ITable;
  /** Names of the usage table's GSIs (granted individually, no wildcard). */
  readonly usageTableIndexes: readonly string[];
  readonly alertsTopic: sns.ITopic;
  readonly alertsKey: kms.IKey;
  readonly failureQueue: sqs.IQueue;
  /** Log groups the function may FilterLogEvents on. */
  readonly evidenceLogGroups: readonly string[];
  /** Attribution settings files (S3 objects): their variables and a GetObject grant on each. */
  readonly attributionSettings: AttributionSettings;
  /** The usage ledger's sources: CURFLOW_EVIDENCE and their read grants. */
  readonly evidenceSources: readonly EvidenceSource[];
  /** Cost Explorer accounts: CURFLOW_ACCOUNTS and the AssumeRole grant (enabled ones only). */
  readonly connectedAccounts: readonly ConnectedAccount[];
}

/** The curflow function and everything that is only about it. */
export class CurflowProcessing extends Construct {
  public readonly function: lambda.Function;
  public readonly role: iam.Role;
  public readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: ProcessingProps) {
    super(scope, id);

    this.logGroup = new logs.LogGroup(this, 'LogGroup', {
      retention: props.logRetentionDays as logs.RetentionDays,
    });

    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: 'curflow Lambda: read CUR deliveries, write per-tenant usage, publish alerts',
    });
    this.grantPermissions(props);

    this.function = new lambda.Function(this, 'Function', {
      description: 'curflow: CUR deliveries to per-tenant costs',
      runtime: lambda.Runtime.PROVIDED_AL2023,
      architecture: props.arch === 'arm64' ? lambda.Architecture.ARM_64 : lambda.Architecture.X86_64,
      handler: 'bootstrap',
      code: lambda.Code.fromAsset(props.assetDir),
      role: this.role,
      // Sized from the pipeline's measured peak RSS plus DataFusion spill headroom; see the
      // module comment (memory follows the number of groups, not rows).
      memorySize: props.memoryMb,
      timeout: Duration.minutes(props.timeoutMinutes),
      ephemeralStorageSize: Size.mebibytes(props.ephemeralMb),
      reservedConcurrentExecutions: props.reservedConcurrency > 0 ? props.reservedConcurrency : undefined,
      logGroup: this.logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      environment: {
        CURFLOW_STORE: `dynamodb://${props.usageTable.tableName}`,
        CURFLOW_TAG_KEY: props.tagKey,
        CURFLOW_MEMORY_LIMIT_MB: String(props.memoryLimitMb),
        CURFLOW_SPILL_DIR: SPILL_DIR,
        // Spill stops (the run fails with a clear error) before /tmp is full.
        CURFLOW_SPILL_MAX_MB: String(props.ephemeralMb - TMP_RESERVE_MB),
        // Names as `curflow config --doc` lists them (CURFLOW_ + the key); the binary reads no RUST_LOG.
        CURFLOW_ALERT_SNS_TOPIC_ARN: props.alertsTopic.topicArn,
        CURFLOW_LOG: 'info',
        // The external ids are not secrets (AWS: a confused-deputy guard), but the app never
        // logs or prints them; only set when accounts are connected.
        ...(props.connectedAccounts.length > 0 ? { CURFLOW_ACCOUNTS: accountsToml(props.connectedAccounts) } : {}),
        // The nightly run ingests these into the usage ledger, then splits and reconciles.
        ...(props.evidenceSources.length > 0 ? { CURFLOW_EVIDENCE: evidenceToml(props.evidenceSources) } : {}),
        ...Object.fromEntries(
          ATTRIBUTION_SETTINGS.flatMap((s) => {
            const object = props.attributionSettings[s.context];
            return object ? [[s.env, object.url]] : [];
          }),
        ),
      },
      retryAttempts: 2,
      maxEventAge: Duration.hours(6),
      onFailure: new destinations.SqsDestination(props.failureQueue),
    });

    // One notification per prefix: S3 filters take one prefix each, and the prefixes are disjoint
    // (config.ts checks), as S3 requires.
    for (const p of props.reportPrefixes) {
      props.reportBucket.addEventNotification(s3.EventType.OBJECT_CREATED, new s3n.LambdaDestination(this.function), {
        prefix: `${p}/`,
        suffix: MANIFEST_SUFFIX,
      });
    }
  }

  private grantPermissions(props: ProcessingProps): void {
    const stack = Stack.of(this);
    const role = this.role;
    const objectArns = props.reportPrefixes.map((p) => props.reportBucket.arnForObjects(`${p}/*`));
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ReadReports',
        actions: ['s3:GetObject'],
        resources: objectArns,
      }),
    );
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ListReportPrefixes',
        actions: ['s3:ListBucket'],
        resources: [props.reportBucket.bucketArn],
        conditions: { StringLike: { 's3:prefix': props.reportPrefixes.map((p) => `${p}/*`) } },
      }),
    );
    acknowledgeWildcardResources(
      role,
      objectArns,
      'Report files have names chosen by AWS billing (assembly/execution ids, billing periods, chunk numbers), so reads must be granted per prefix; the grant is s3:GetObject only and limited to the report prefixes.',
    );

    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'UsageTable',
        actions: DYNAMODB_ACTIONS,
        resources: [
          props.usageTable.tableArn,
          ...props.usageTableIndexes.map((i) => `${props.usageTable.tableArn}/index/${i}`),
        ],
      }),
    );

    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'PublishAlerts',
        actions: ['sns:Publish'],
        resources: [props.alertsTopic.topicArn],
      }),
    );
    // Publishing to an SSE topic needs the topic key (exact actions, no GenerateDataKey* wildcard).
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'UseAlertsKeyForPublish',
        actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
        resources: [props.alertsKey.keyArn],
        conditions: { StringEquals: { 'kms:ViaService': `sns.${stack.region}.amazonaws.com` } },
      }),
    );

    // The log group ARN attribute already ends in ":*" (all its streams).
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'WriteOwnLogs',
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [this.logGroup.logGroupArn],
      }),
    );

    this.grantCostExplorer(props.connectedAccounts);

    const locations = props.evidenceSources.map((s) => evidenceLocation(s.location));
    const groups = [
      ...new Set([
        ...props.evidenceLogGroups,
        ...locations.flatMap((l) => (l.kind === 'logs' ? [l.group] : [])),
      ]),
    ];
    this.grantEvidencePrefixes(locations.flatMap((l) => (l.kind === 's3' ? [l] : [])));
    const settings = ATTRIBUTION_SETTINGS.flatMap((s) => {
      const object = props.attributionSettings[s.context];
      return object ? [`arn:${Aws.PARTITION}:s3:::${object.bucket}/${object.key}`] : [];
    });
    if (settings.length > 0) {
      role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          sid: 'ReadAttributionSettings',
          actions: ['s3:GetObject'],
          resources: [...new Set(settings)],
        }),
      );
    }
    if (locations.some((l) => l.kind === 'metrics')) {
      // Neither action supports resource-level permissions: `*` is the only resource they take.
      role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          sid: 'ReadEvidenceMetrics',
          actions: ['cloudwatch:ListMetrics', 'cloudwatch:GetMetricData'],
          resources: ['*'],
        }),
      );
      acknowledgeWildcardResources(
        role,
        ['*'],
        'cloudwatch:ListMetrics and cloudwatch:GetMetricData support no resource-level permissions; granted only when a cloudwatch-metrics:// evidence source is given explicitly in the evidenceSources context.',
      );
    }
    if (groups.length > 0) {
      const evidence = groups.map(
        (name) => `arn:${Aws.PARTITION}:logs:${stack.region}:${stack.account}:log-group:${name}:*`,
      );
      role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          sid: 'ReadEvidenceLogs',
          actions: ['logs:FilterLogEvents'],
          resources: evidence,
        }),
      );
      acknowledgeWildcardResources(
        role,
        evidence,
        'logs:FilterLogEvents is authorized on the log group ARN with the ":*" stream suffix; each entry names one evidence log group given explicitly in the evidenceLogGroups context.',
      );
    }
  }

  /**
   * The S3 evidence prefixes: ListBucket on each bucket limited to its prefixes (`s3:prefix`
   * condition) and GetObject on the objects under them; nothing without S3 sources.
   */
  private grantEvidencePrefixes(prefixes: readonly { bucket: string; prefix: string }[]): void {
    if (prefixes.length === 0) return;
    const buckets = [...new Set(prefixes.map((p) => p.bucket))];
    buckets.forEach((bucket, i) => {
      const mine = [...new Set(prefixes.filter((p) => p.bucket === bucket).map((p) => p.prefix))];
      this.role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          sid: `ListEvidencePrefixes${i}`,
          actions: ['s3:ListBucket'],
          resources: [`arn:${Aws.PARTITION}:s3:::${bucket}`],
          conditions: { StringLike: { 's3:prefix': mine.map((p) => `${p}*`) } },
        }),
      );
    });
    const objects = [...new Set(prefixes.map((p) => `arn:${Aws.PARTITION}:s3:::${p.bucket}/${p.prefix}*`))];
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({ sid: 'ReadEvidenceObjects', actions: ['s3:GetObject'], resources: objects }),
    );
    acknowledgeWildcardResources(
      this.role,
      objects,
      'GetObject on the objects under each S3 evidence prefix given explicitly in the evidenceSources context (the prefix is the unit of a source).',
    );
  }

  /** AssumeRole on the enabled accounts' roles and the Cost Explorer reads; nothing without accounts. */
  private grantCostExplorer(accounts: readonly ConnectedAccount[]): void {
    const roles = [...new Set(accounts.filter((a) => a.enabled).map((a) => a.roleArn))];
    if (roles.length === 0) return;
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({ sid: 'AssumeConnectedAccountRoles', actions: ['sts:AssumeRole'], resources: roles }),
    );
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({ sid: 'ReadCostExplorer', actions: COST_EXPLORER_ACTIONS, resources: ['*'] }),
    );
    acknowledge(
      this.role,
      'AwsSolutions-IAM5[Resource::*]',
      'Cost Explorer (ce:GetCostAndUsage, ce:GetCostForecast) supports no resource-level permissions; the grant is these two read actions only, added only when connectedAccounts is set.',
    );
  }
}
