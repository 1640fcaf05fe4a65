/**
 * Builds the CDK app: configuration from context, the one CurflowStack, and cdk-nag.
 *
 * Shared by bin/curflow.ts and the tests, so the tests (including the cdk-nag one) exercise exactly
 * what `cdk synth` / `cdk deploy` run.
 */
import * as path from 'path';
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { readConfig, type CurflowConfig } from './config';
import { CurflowStack } from './curflow-stack';

/** The infra-cdk directory: relative `lambdaAssetDir` values are resolved against it. */
export const PROJECT_DIR = path.resolve(__dirname, '..');

/** Stack id (and default CloudFormation stack name). */
export const STACK_ID = 'CurflowStack';

export interface BuiltApp {
  readonly app: App;
  readonly stack: CurflowStack;
  readonly config: CurflowConfig;
}

/**
 * Adds CurflowStack (and, unless context `nag=false`, AwsSolutionsChecks) to `app`.
 *
 * @param env environment variables consulted for account/region (a parameter for hermetic tests)
 */
export function buildApp(app: App, env: NodeJS.ProcessEnv = process.env): BuiltApp {
  const config = readConfig((k) => app.node.tryGetContext(k), env, PROJECT_DIR);
  const stack = new CurflowStack(app, STACK_ID, {
    env: { account: config.account, region: config.region },
    description: 'curflow: CUR 2.0 export, report bucket, Rust Lambda, per-tenant usage table, alerts',
    config,
  });
  if (config.nag) {
    // cdk-nag 3 is a policy-validation plugin: synth fails on any unacknowledged finding.
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  }
  return { app, stack, config };
}
