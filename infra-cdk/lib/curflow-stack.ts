/**
 * CurflowStack: composes storage, reports, alerting, processing and schedule.
 *
 * The stack is deliberately thin; each concern lives in its own construct (see the files named
 * after them). The environment is explicit (account/region from config.ts) so synth needs no
 * lookups and no credentials.
 */
import { CfnOutput, Stack, StackProps, Tags } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { CurflowAlerting } from './alerting';
import { checkLambdaAsset } from './asset';
import type { CurflowConfig } from './config';
import { CurflowProcessing } from './processing';
import { CurflowReports } from './reports';
import { CurflowCeSyncSchedule, CurflowSchedule } from './schedule';
import { CurflowStorage, MONTH_INDEX } from './storage';

export interface CurflowStackProps extends StackProps {
  readonly config: CurflowConfig;
}

export class CurflowStack extends Stack {
  public readonly storage: CurflowStorage;
  public readonly reports: CurflowReports;
  public readonly alerting: CurflowAlerting;
  public readonly processing: CurflowProcessing;
  public readonly schedule?: CurflowSchedule;
  public readonly ceSyncSchedule?: CurflowCeSyncSchedule;

  constructor(scope: Construct, id: string, props: CurflowStackProps) {
    super(scope, id, props);
    const c = props.config;
    // Fail before creating anything if the binary is missing: the error says how to build it.
    const assetDir = checkLambdaAsset(c.lambdaAssetDir, c.lambdaArch);
    const reportPrefixes = [c.cur2Prefix, c.legacyCurPrefix];

    Tags.of(this).add('project', 'curflow');

    this.storage = new CurflowStorage(this, 'Storage', {
      tableName: c.tableName,
      reportIaTransitionDays: c.reportIaTransitionDays,
      noncurrentVersionExpirationDays: c.noncurrentVersionExpirationDays,
      accessLogRetentionDays: c.accessLogRetentionDays,
    });

    this.reports = new CurflowReports(this, 'Reports', { ...c, bucket: this.storage.reportBucket });

    this.alerting = new CurflowAlerting(this, 'Alerting', { alertEmail: c.alertEmail });

    this.processing = new CurflowProcessing(this, 'Processing', {
      assetDir,
      arch: c.lambdaArch,
      memoryMb: c.lambdaMemoryMb,
      timeoutMinutes: c.lambdaTimeoutMinutes,
      ephemeralMb: c.lambdaEphemeralMb,
      reservedConcurrency: c.reservedConcurrency,
      logRetentionDays: c.logRetentionDays,
      tagKey: c.tagKey,
      memoryLimitMb: c.memoryLimitMb,
      reportBucket: this.storage.reportBucket,
      reportPrefixes,
      usageTable: this.storage.usageTable,
      usageTableIndexes: [MONTH_INDEX],
      alertsTopic: this.alerting.topic,
      alertsKey: this.alerting.key,
      failureQueue: this.alerting.failureQueue,
      evidenceLogGroups: c.evidenceLogGroups,
      evidenceSources: c.evidenceSources,
      attributionSettings: c.attributionSettings,
      connectedAccounts: c.connectedAccounts,
    });
    this.alerting.alarmOnErrors(this.processing.function);

    if (c.nightlySchedule !== 'off') {
      this.schedule = new CurflowSchedule(this, 'Schedule', {
        function: this.processing.function,
        expression: c.nightlySchedule,
        deadLetterQueue: this.alerting.failureQueue,
      });
    }

    if (c.ceSyncSchedule !== 'off' && c.connectedAccounts.some((a) => a.enabled)) {
      this.ceSyncSchedule = new CurflowCeSyncSchedule(this, 'CeSyncSchedule', {
        function: this.processing.function,
        expression: c.ceSyncSchedule,
        ceSyncExpression: c.ceSyncSchedule,
        deadLetterQueue: this.alerting.failureQueue,
      });
    }

    new CfnOutput(this, 'ReportBucketName', { value: this.storage.reportBucket.bucketName, description: 'Bucket CUR / Data Exports deliver into' });
    new CfnOutput(this, 'UsageTableName', { value: this.storage.usageTable.tableName, description: 'DynamoDB per-tenant usage table' });
    new CfnOutput(this, 'FunctionName', { value: this.processing.function.functionName, description: 'curflow Lambda' });
    new CfnOutput(this, 'FunctionRoleArn', {
      value: this.processing.role.roleArn,
      description: 'The function role: the principal a connected account trusts (README, Connected accounts)',
    });
    new CfnOutput(this, 'AlertsTopicArn', { value: this.alerting.topic.topicArn, description: 'SNS topic for alarms and budget alerts' });
    new CfnOutput(this, 'FailureQueueUrl', { value: this.alerting.failureQueue.queueUrl, description: 'Failed invocations (inspect / replay)' });
  }
}
