#!/usr/bin/env node
/**
 * CDK entry point (see cdk.json "app"). Everything is configured through context; see README.md.
 * Configuration and missing-asset errors are printed without a stack trace: they are user errors
 * whose message says what to do.
 */
import { App } from 'aws-cdk-lib';
import { buildApp } from '../lib/app';
import { MissingLambdaAssetError } from '../lib/asset';
import { ConfigError } from '../lib/config';

try {
  buildApp(new App());
} catch (e) {
  if (e instanceof MissingLambdaAssetError || e instanceof ConfigError) {
    console.error(e.message);
    process.exit(1);
  }
  throw e;
}
