/**
 * `cdk synth` through the real CLI and cdk.json, as `npm run synth` runs it: no AWS credentials,
 * no network, a dummy asset. Slow-ish (~10 s): it spawns the CLI.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { PROJECT_DIR } from '../lib/app';
import { assetDir, tempDir } from './helpers';

const CDK = path.join(PROJECT_DIR, 'node_modules', '.bin', 'cdk');

/** Environment with every AWS credential source removed. */
function credentialFreeEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^(AWS_|CDK_)/.test(k)) env[k] = v;
  }
  return {
    ...env,
    AWS_CONFIG_FILE: path.join(tempDir(), 'no-config'),
    AWS_SHARED_CREDENTIALS_FILE: path.join(tempDir(), 'no-credentials'),
    AWS_EC2_METADATA_DISABLED: 'true',
    CDK_DISABLE_CLI_TELEMETRY: 'true',
  };
}

function cdkSynth(...args: string[]) {
  const out = tempDir('curflow-cli-out-');
  const r = spawnSync(CDK, ['synth', '--no-notices', '-o', out, ...args], {
    cwd: PROJECT_DIR,
    env: credentialFreeEnv(),
    encoding: 'utf8',
    timeout: 180_000,
  });
  return { ...r, out };
}

test('cdk synth works without AWS credentials once the asset exists', () => {
  const r = cdkSynth('-c', `lambdaAssetDir=${assetDir()}`);
  assert.equal(r.status, 0, r.stderr);
  const template = JSON.parse(fs.readFileSync(path.join(r.out, 'CurflowStack.template.json'), 'utf8'));
  const types = Object.values<any>(template.Resources).map((x) => x.Type);
  for (const t of ['AWS::S3::Bucket', 'AWS::BCMDataExports::Export', 'AWS::Lambda::Function', 'AWS::DynamoDB::Table', 'AWS::Events::Rule']) {
    assert.ok(types.includes(t), t);
  }
  // The synthesized stack carries the explicit environment: nothing was looked up.
  const manifest = JSON.parse(fs.readFileSync(path.join(r.out, 'manifest.json'), 'utf8'));
  assert.equal(manifest.artifacts.CurflowStack.environment, 'aws://123456789012/us-east-1');
  assert.ok(!fs.existsSync(path.join(PROJECT_DIR, 'cdk.context.json')), 'no context lookups cached');
});

test('cdk synth without the asset fails with the build command and no stack trace', () => {
  const r = cdkSynth('-c', `lambdaAssetDir=${path.join(tempDir(), 'missing')}`);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /Lambda asset directory does not exist/);
  assert.match(r.stderr, /cargo lambda build --release --arm64 -p curflow --bin curflow-lambda/);
  assert.doesNotMatch(r.stderr, /at checkLambdaAsset/);
});
