/**
 * Schedule: a nightly EventBridge rule that invokes the Lambda with `{"curflow": "nightly"}`.
 *
 * Why: S3 notifications fire on deliveries only. The nightly tick gives the app a run that does not
 * depend on a delivery arriving (e.g. to catch up after a failed or missed notification, or to
 * evaluate budgets daily); what it does with `{"curflow": "nightly"}` is the app's business. The
 * time (default 03:30 UTC, context `nightlySchedule`) is simply outside business hours in Europe
 * and the Americas. Undeliverable events go to the same failure queue as failed async invocations.
 *
 * A second rule, only when connected accounts are configured, invokes it daily with
 * `{"curflow": "ce-sync"}` (default 05:00 UTC, context `ceSyncSchedule`).
 */
import { Duration } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

/** The constant event the daily Cost Explorer sync receives (every enabled connected account). */
export const CE_SYNC_INPUT = { curflow: 'ce-sync' } as const;

/** The constant event the nightly run receives. */
export const NIGHTLY_INPUT = { curflow: 'nightly' } as const;

export interface ScheduleProps {
  readonly function: lambda.IFunction;
  /** EventBridge schedule expression (`cron(...)` / `rate(...)`), in UTC. */
  readonly expression: string;
  /** Where EventBridge puts events it could not deliver. */
  readonly deadLetterQueue: sqs.IQueue;
  /**
   * Schedule of the daily Cost Explorer sync (`{"curflow":"ce-sync"}`); `undefined` = no rule
   * (no connected account, or context `ceSyncSchedule=off`).
   */
  readonly ceSyncExpression?: string;
}

/** The nightly rule. */
export class CurflowSchedule extends Construct {
  public readonly rule: events.Rule;

  constructor(scope: Construct, id: string, props: ScheduleProps) {
    super(scope, id);
    this.rule = new events.Rule(this, 'NightlyRule', {
      description: 'curflow nightly run',
      schedule: events.Schedule.expression(props.expression),
      targets: [target(props, NIGHTLY_INPUT)],
    });
  }
}

/**
 * The daily Cost Explorer sync. Its own rule (not part of nightly) so that it can run at another
 * time, be turned off alone, and so a failing account never delays the nightly reconciliation.
 */
export class CurflowCeSyncSchedule extends Construct {
  public readonly rule: events.Rule;

  constructor(scope: Construct, id: string, props: ScheduleProps & { readonly ceSyncExpression: string }) {
    super(scope, id);
    this.rule = new events.Rule(this, 'CeSyncRule', {
      description: 'curflow daily Cost Explorer sync of the connected accounts',
      schedule: events.Schedule.expression(props.ceSyncExpression),
      targets: [target(props, CE_SYNC_INPUT)],
    });
  }
}

/** The function as a rule target with a constant input; undeliverable events go to the queue. */
function target(props: ScheduleProps, input: object): targets.LambdaFunction {
  return new targets.LambdaFunction(props.function, {
    event: events.RuleTargetInput.fromObject(input),
    retryAttempts: 2,
    maxEventAge: Duration.hours(2),
    deadLetterQueue: props.deadLetterQueue,
  });
}
