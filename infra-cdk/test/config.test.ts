/** Context parsing, environment selection and the missing-asset error. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'path';
import { PROJECT_DIR } from '../lib/app';
import { DEFAULTS, readConfig } from '../lib/config';
import { build, tempDir } from './helpers';

const ctx = (o: Record<string, unknown>) => (k: string) => o[k];

test('synth fails with build instructions when the asset directory is missing', () => {
  const missing = path.join(tempDir(), 'no-such-dir');
  assert.throws(
    () => build({ lambdaAssetDir: missing }),
    (e: Error) => {
      assert.match(e.message, /Lambda asset directory does not exist/);
      assert.ok(e.message.includes(missing), 'names the directory');
      assert.match(e.message, /cargo lambda build --release --arm64 -p curflow --bin curflow-lambda/);
      assert.match(e.message, /-c lambdaAssetDir=/);
      return true;
    },
  );
});

test('the build hint follows lambdaArch', () => {
  assert.throws(
    () => build({ lambdaAssetDir: path.join(tempDir(), 'missing'), lambdaArch: 'x86_64' }),
    /cargo lambda build --release --x86-64 -p curflow --bin curflow-lambda[\s\S]*-c lambdaArch=x86_64/,
  );
});

test('synth fails when the directory has no bootstrap', () => {
  const empty = tempDir();
  assert.throws(() => build({ lambdaAssetDir: empty }), /has no "bootstrap" file[\s\S]*cargo lambda build/);
});

test('default asset dir is ../target/lambda/curflow-lambda relative to infra-cdk/', () => {
  const c = readConfig(ctx({}), {}, PROJECT_DIR);
  assert.equal(c.lambdaAssetDir, path.resolve(PROJECT_DIR, '..', 'target', 'lambda', 'curflow-lambda'));
  assert.equal(DEFAULTS.lambdaAssetDir, '../target/lambda/curflow-lambda');
  // A relative -c value resolves against infra-cdk/ too, whatever the cwd.
  assert.equal(readConfig(ctx({ lambdaAssetDir: 'dist' }), {}, PROJECT_DIR).lambdaAssetDir, path.join(PROJECT_DIR, 'dist'));
});

test('defaults: placeholder account, us-east-1, arm64, 2048/15/4096, accountant_id', () => {
  const c = readConfig(ctx({}), {}, PROJECT_DIR);
  assert.equal(c.account, '123456789012');
  assert.equal(c.region, 'us-east-1');
  assert.equal(c.lambdaArch, 'arm64');
  assert.equal(c.lambdaMemoryMb, 2048);
  assert.equal(c.lambdaTimeoutMinutes, 15);
  assert.equal(c.lambdaEphemeralMb, 4096);
  assert.equal(c.tagKey, 'accountant_id');
  assert.equal(c.tableName, 'curflow-usage');
  assert.equal(c.legacyCur, false);
  assert.equal(c.dataExport, true);
  assert.deepEqual(c.evidenceLogGroups, []);
  assert.equal(c.nag, true);
});

test('account/region: context beats CURFLOW_* beats CDK_DEFAULT_ACCOUNT; CDK_DEFAULT_REGION is ignored', () => {
  const env = { CDK_DEFAULT_ACCOUNT: '111111111111', CDK_DEFAULT_REGION: 'eu-west-1' };
  let c = readConfig(ctx({}), env, PROJECT_DIR);
  assert.equal(c.account, '111111111111');
  assert.equal(c.region, 'us-east-1');
  c = readConfig(ctx({}), { ...env, CURFLOW_ACCOUNT: '222222222222' }, PROJECT_DIR);
  assert.equal(c.account, '222222222222');
  c = readConfig(ctx({ account: '333333333333' }), { ...env, CURFLOW_ACCOUNT: '222222222222' }, PROJECT_DIR);
  assert.equal(c.account, '333333333333');
  assert.throws(() => readConfig(ctx({ account: '12' }), {}, PROJECT_DIR), /"account".*12-digit/);
});

test('stack env is explicit: no lookups needed', () => {
  const { stack } = build({ account: '444444444444' });
  assert.equal(stack.account, '444444444444');
  assert.equal(stack.region, 'us-east-1');
});

test('bad context values fail with the key named', () => {
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ lambdaArch: 'mips' }, /"lambdaArch".*arm64 or x86_64/],
    [{ legacyCur: 'maybe' }, /"legacyCur".*true or false/],
    [{ lambdaMemoryMb: '64' }, /"lambdaMemoryMb"/],
    [{ memoryLimitMb: '1025' }, /"memoryLimitMb".*more than half of lambdaMemoryMb \(2048 MB\)/],
    [{ lambdaMemoryMb: '1024' }, /"memoryLimitMb".*more than half/],
    [{ lambdaEphemeralMb: '512' }, /"lambdaEphemeralMb"/],
    [{ lambdaTimeoutMinutes: 20 }, /"lambdaTimeoutMinutes"/],
    [{ logRetentionDays: 100 }, /"logRetentionDays".*accepts only/],
    [{ cur2Prefix: '/cur2/' }, /"cur2Prefix".*without leading/],
    [{ legacyCurPrefix: 'cur2' }, /overlap/],
    [{ evidenceLogGroups: 'ok,bad group' }, /"evidenceLogGroups"/],
    [{ evidenceLogGroups: '["unterminated"' }, /"evidenceLogGroups".*JSON/],
    [{ exportColumns: 'line_item_unblended_cost; DROP TABLE' }, /"exportColumns"/],
    [{ alertEmail: 'not-an-address' }, /"alertEmail"/],
    [{ legacyCurTimeUnit: 'MONTHLY' }, /"legacyCurTimeUnit"/],
    [{ region: 'ap-south-1' }, /us-east-1/],
  ];
  for (const [c, re] of bad) assert.throws(() => readConfig(ctx(c), {}, PROJECT_DIR), re, JSON.stringify(c));
});

test('list values: comma string, JSON string, or array', () => {
  const read = (v: unknown) => readConfig(ctx({ evidenceLogGroups: v }), {}, PROJECT_DIR).evidenceLogGroups;
  assert.deepEqual(read('/a, /b'), ['/a', '/b']);
  assert.deepEqual(read('["/a","/b"]'), ['/a', '/b']);
  assert.deepEqual(read(['/a']), ['/a']);
  assert.deepEqual(read(''), []);
});
