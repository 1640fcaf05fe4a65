/**
 * Alerting: the `alerts` SNS topic, the failure queue that receives async invocations the Lambda
 * gave up on, and CloudWatch alarms that publish to the topic.
 *
 * Why:
 * - One topic for everything a human must look at: operational alarms and the application's own
 *   budget alerts (the Lambda publishes there, see processing.ts), so one subscription covers both.
 * - The topic is encrypted with a customer-managed KMS key (rotation on). An AWS-managed key
 *   (alias/aws/sns) would not do: its key policy cannot be edited, and CloudWatch alarms can only
 *   publish to an encrypted topic whose key policy lets cloudwatch.amazonaws.com use the key.
 * - The failure queue is SSE-SQS encrypted and TLS-only. It *is* the dead-letter destination of
 *   the function (and of the nightly rule's target), so it has no DLQ of its own; messages stay 14
 *   days for inspection and replay, and an alarm fires as soon as one arrives.
 */
import { Aws, Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subs from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { acknowledge } from './nag';

export interface AlertingProps {
  /** Optional e-mail subscription (needs confirming by the recipient). */
  readonly alertEmail?: string;
}

/** Alerts topic (+ key), failure queue, alarms. */
export class CurflowAlerting extends Construct {
  /** Customer-managed key encrypting the topic. */
  public readonly key: kms.Key;
  /** `alerts` topic: alarms and the app's budget alerts. */
  public readonly topic: sns.Topic;
  /** On-failure destination of the Lambda's async invocations. */
  public readonly failureQueue: sqs.Queue;
  /** Fires when any message sits in the failure queue. */
  public readonly failureQueueAlarm: cloudwatch.Alarm;
  private readonly alarmAction: cwActions.SnsAction;

  constructor(scope: Construct, id: string, props: AlertingProps = {}) {
    super(scope, id);

    this.key = new kms.Key(this, 'AlertsKey', {
      description: 'curflow alerts topic encryption',
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    // CloudWatch alarms publish as cloudwatch.amazonaws.com and need the key to do so.
    this.key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AllowCloudWatchAlarmsToUseKey',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'], // in a key policy "*" means "this key"
        // Only CloudWatch acting for this account (confused-deputy protection).
        conditions: { StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID } },
      }),
    );

    this.topic = new sns.Topic(this, 'AlertsTopic', {
      topicName: 'curflow-alerts',
      displayName: 'curflow alerts',
      masterKey: this.key,
      enforceSSL: true,
    });
    this.topic.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AllowCloudWatchAlarmsToPublish',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [this.topic.topicArn],
        conditions: {
          StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID },
          ArnLike: { 'aws:SourceArn': `arn:${Aws.PARTITION}:cloudwatch:${Aws.REGION}:${Aws.ACCOUNT_ID}:alarm:*` },
        },
      }),
    );
    if (props.alertEmail) this.topic.addSubscription(new subs.EmailSubscription(props.alertEmail));
    this.alarmAction = new cwActions.SnsAction(this.topic);

    this.failureQueue = new sqs.Queue(this, 'FailureQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    acknowledge(
      this.failureQueue,
      'AwsSolutions-SQS3',
      'This queue is itself the dead-letter destination (Lambda on-failure destination and EventBridge target DLQ); nothing consumes it automatically, an operator inspects and replays its messages, and an alarm fires on the first one.',
    );

    this.failureQueueAlarm = new cloudwatch.Alarm(this, 'FailureQueueAlarm', {
      alarmDescription: 'curflow: an invocation failed after all retries; its event is in the failure queue',
      metric: this.failureQueue.metricApproximateNumberOfMessagesVisible({
        period: Duration.minutes(5),
        statistic: cloudwatch.Stats.MAXIMUM,
      }),
      threshold: 0,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    this.failureQueueAlarm.addAlarmAction(this.alarmAction);
  }

  /** Adds an alarm on the function's Errors metric (any error in 5 minutes) notifying the topic. */
  public alarmOnErrors(fn: lambda.IFunction): cloudwatch.Alarm {
    const alarm = new cloudwatch.Alarm(this, 'FunctionErrorsAlarm', {
      alarmDescription: 'curflow: the Lambda reported errors (each failed attempt counts, retries included)',
      metric: fn.metricErrors({ period: Duration.minutes(5), statistic: cloudwatch.Stats.SUM }),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    alarm.addAlarmAction(this.alarmAction);
    return alarm;
  }
}
