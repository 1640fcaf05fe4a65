/** Connected accounts (Cost Explorer): the daily ce-sync rule, AssumeRole on exactly the configured roles, the CE reads, CURFLOW_ACCOUNTS. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { accountsToml, readConnectedAccounts } from '../lib/config';
import { asArray, build, functionRoleStatements, logicalId, resourcesOfType } from './helpers';

const PROD = {
  name: 'prod',
  accountId: '111111111111',
  roleArn: 'arn:aws:iam::111111111111:role/curflow-cost-explorer',
  externalId: 'curflow-7f3a9c',
};
const STAGING = {
  name: 'staging',
  accountId: '222222222222',
  roleArn: 'arn:aws:iam::222222222222:role/curflow-cost-explorer',
  externalId: 'curflow-b81e04',
  region: 'eu-west-1',
};
const OLD = { ...PROD, name: 'old', accountId: '333333333333', roleArn: 'arn:aws:iam::333333333333:role/x', enabled: false };

const withAccounts = build({ connectedAccounts: JSON.stringify([PROD, STAGING, OLD]) }).template;
const withoutAccounts = build().template;

function statement(template: ReturnType<typeof build>['template'], sid: string): any {
  return functionRoleStatements(template).find((s) => s.Sid === sid);
}

test('ce-sync rule: daily at 05:00 UTC with the constant input {"curflow":"ce-sync"}, failures to the queue', () => {
  const fnId = logicalId(withAccounts, 'AWS::Lambda::Function', 'ProcessingFunction');
  const queueId = logicalId(withAccounts, 'AWS::SQS::Queue', 'AlertingFailureQueue');
  const rules = resourcesOfType(withAccounts, 'AWS::Events::Rule').filter(([id]) => id.startsWith('CeSyncSchedule'));
  assert.equal(rules.length, 1);
  const [[, rule]] = rules;
  assert.equal(rule.Properties.ScheduleExpression, 'cron(0 5 * * ? *)');
  assert.equal(rule.Properties.State, 'ENABLED');
  const [target] = rule.Properties.Targets;
  assert.deepEqual(target.Arn, { 'Fn::GetAtt': [fnId, 'Arn'] });
  assert.deepEqual(JSON.parse(target.Input), { curflow: 'ce-sync' });
  assert.deepEqual(target.DeadLetterConfig, { Arn: { 'Fn::GetAtt': [queueId, 'Arn'] } });
  assert.equal(target.RetryPolicy.MaximumRetryAttempts, 2);
  // The nightly rule is still there, unchanged.
  assert.equal(resourcesOfType(withAccounts, 'AWS::Events::Rule').length, 2);
});

test('ce-sync schedule is configurable, can be turned off, and needs connected accounts', () => {
  const t = build({ connectedAccounts: [PROD], ceSyncSchedule: 'rate(12 hours)' }).template;
  t.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(12 hours)', Targets: [{ Input: '{"curflow":"ce-sync"}' }] });
  assert.equal(resourcesOfType(build({ connectedAccounts: [PROD], ceSyncSchedule: 'off' }).template, 'AWS::Events::Rule').length, 1);
  const none = resourcesOfType(withoutAccounts, 'AWS::Events::Rule');
  assert.equal(none.length, 1, 'no accounts: only the nightly rule');
  assert.ok(!none.some(([, r]) => r.Properties.Targets[0].Input.includes('ce-sync')));
  assert.throws(() => build({ connectedAccounts: [PROD], ceSyncSchedule: '0 5 * * *' }), /ceSyncSchedule/);
});

test('IAM: sts:AssumeRole on exactly the enabled accounts\' role ARNs, never "*"', () => {
  const s = statement(withAccounts, 'AssumeConnectedAccountRoles');
  assert.equal(s.Effect, 'Allow');
  assert.equal(s.Action, 'sts:AssumeRole');
  assert.deepEqual(asArray(s.Resource).sort(), [PROD.roleArn, STAGING.roleArn].sort());
  // No other statement grants sts:* anywhere.
  const sts = functionRoleStatements(withAccounts).filter((x) => asArray<string>(x.Action).some((a) => a.startsWith('sts:')));
  assert.equal(sts.length, 1);
});

test('IAM: no AssumeRole and no Cost Explorer statement when no account is connected (or none enabled)', () => {
  for (const t of [withoutAccounts, build({ connectedAccounts: [OLD] }).template]) {
    const actions = functionRoleStatements(t).flatMap((s) => asArray<string>(s.Action));
    assert.ok(!actions.some((a) => a.startsWith('sts:') || a.startsWith('ce:')), actions.join(', '));
  }
});

test('IAM: ce:GetCostAndUsage and ce:GetCostForecast granted (Cost Explorer has no resource-level permissions)', () => {
  const s = statement(withAccounts, 'ReadCostExplorer');
  assert.deepEqual(asArray(s.Action).sort(), ['ce:GetCostAndUsage', 'ce:GetCostForecast']);
  assert.equal(s.Resource, '*');
  assert.equal(s.Condition, undefined);
});

test('the function gets the accounts as CURFLOW_ACCOUNTS (TOML), only when connected', () => {
  const fnId = logicalId(withAccounts, 'AWS::Lambda::Function', 'ProcessingFunction');
  const env = withAccounts.toJSON().Resources[fnId].Properties.Environment.Variables;
  assert.equal(
    env.CURFLOW_ACCOUNTS,
    '[{name = "prod", account_id = "111111111111", role_arn = "arn:aws:iam::111111111111:role/curflow-cost-explorer", ' +
      'external_id = "curflow-7f3a9c", region = "us-east-1", enabled = true}, ' +
      '{name = "staging", account_id = "222222222222", role_arn = "arn:aws:iam::222222222222:role/curflow-cost-explorer", ' +
      'external_id = "curflow-b81e04", region = "eu-west-1", enabled = true}, ' +
      '{name = "old", account_id = "333333333333", role_arn = "arn:aws:iam::333333333333:role/x", ' +
      'external_id = "curflow-7f3a9c", region = "us-east-1", enabled = false}]',
  );
  const noneId = logicalId(withoutAccounts, 'AWS::Lambda::Function', 'ProcessingFunction');
  assert.equal(withoutAccounts.toJSON().Resources[noneId].Properties.Environment.Variables.CURFLOW_ACCOUNTS, undefined);
  assert.equal(accountsToml([]), '[]');
});

test('connectedAccounts is checked at synth: ids, role ARN of the same account, external id, unknown keys, duplicates', () => {
  assert.deepEqual(readConnectedAccounts(undefined), []);
  assert.equal(readConnectedAccounts(JSON.stringify([STAGING]))[0].region, 'eu-west-1');
  const bad: [unknown, RegExp][] = [
    ['not json', /JSON list/],
    [[{ ...PROD, accountId: '1234' }], /accountId/],
    [[{ ...PROD, roleArn: 'arn:aws:iam::999999999999:role/x' }], /not a role of account/],
    [[{ ...PROD, roleArn: '*' }], /roleArn/],
    [[{ ...PROD, externalId: '' }], /externalId/],
    [[{ ...PROD, extId: 'x' }], /unknown key "extId"/],
    [[PROD, PROD], /appears twice/],
    [[{ ...PROD, enabled: 'yes' }], /enabled/],
  ];
  for (const [value, message] of bad) {
    assert.throws(() => readConnectedAccounts(value), message, JSON.stringify(value));
    assert.throws(() => build({ connectedAccounts: value }), /connectedAccounts/);
  }
});

test('the function role ARN is an output, for the connected accounts\' trust policies', () => {
  const roleId = logicalId(withoutAccounts, 'AWS::IAM::Role', 'ProcessingRole');
  assert.deepEqual(withoutAccounts.toJSON().Outputs.FunctionRoleArn.Value, { 'Fn::GetAtt': [roleId, 'Arn'] });
});
