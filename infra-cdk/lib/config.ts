/**
 * Typed configuration for the curflow stack, read from CDK context (`cdk.json`, `-c key=value`)
 * and a few environment variables.
 *
 * Why one parser: every knob is validated in one place and fails synth with a message naming the
 * context key, instead of producing a template that CloudFormation rejects twenty minutes into a
 * deployment. `-c` values always arrive as strings, `cdk.json` values may be typed, so every reader
 * accepts both.
 */

import * as path from 'path';

/** Where CUR / Data Exports definitions can be created (the services are global, homed in us-east-1). */
export const BILLING_REGION = 'us-east-1';

/** Placeholder account used when nothing else is given: lets `cdk synth` run with no credentials. */
export const PLACEHOLDER_ACCOUNT = '123456789012';

/** Lambda CPU architecture as spelled in context (`lambdaArch`). */
export type LambdaArch = 'arm64' | 'x86_64';

/** Legacy CUR time granularity. */
export type LegacyTimeUnit = 'HOURLY' | 'DAILY';

export interface CurflowConfig {
  /** Target account; context `account`, else `$CURFLOW_ACCOUNT`, else `$CDK_DEFAULT_ACCOUNT`, else the placeholder. */
  readonly account: string;
  /** Target region; context `region`, else `$CURFLOW_REGION`, else us-east-1 (deliberately not `$CDK_DEFAULT_REGION`). */
  readonly region: string;

  // --- storage ---
  /** DynamoDB usage table name (context `tableName`). */
  readonly tableName: string;
  /** Days after which current report objects move to STANDARD_IA (context `reportIaTransitionDays`). */
  readonly reportIaTransitionDays: number;
  /** Days after which noncurrent report versions are deleted (context `noncurrentVersionExpirationDays`). */
  readonly noncurrentVersionExpirationDays: number;
  /** Days server access logs are kept (context `accessLogRetentionDays`). */
  readonly accessLogRetentionDays: number;

  // --- reports ---
  /** Create the CUR 2.0 Data Export (context `dataExport`, default true). */
  readonly dataExport: boolean;
  /** Data Export name (context `exportName`). */
  readonly exportName: string;
  /** S3 prefix of the CUR 2.0 export, without slashes (context `cur2Prefix`). */
  readonly cur2Prefix: string;
  /** Columns selected by the export's QueryStatement (context `exportColumns`, comma-separated). */
  readonly exportColumns: readonly string[];
  /** Also create a legacy CUR report definition (context `legacyCur=true`). */
  readonly legacyCur: boolean;
  /** Legacy CUR report name (context `legacyCurReportName`). */
  readonly legacyCurReportName: string;
  /** S3 prefix of the legacy CUR, without slashes (context `legacyCurPrefix`). */
  readonly legacyCurPrefix: string;
  /** Legacy CUR granularity (context `legacyCurTimeUnit`: HOURLY or DAILY). */
  readonly legacyCurTimeUnit: LegacyTimeUnit;

  // --- processing ---
  /** Directory holding the `bootstrap` binary, absolute (context `lambdaAssetDir`). */
  readonly lambdaAssetDir: string;
  /** Lambda architecture (context `lambdaArch`). */
  readonly lambdaArch: LambdaArch;
  /** Cost-allocation tag naming the tenant (context `tagKey`). */
  readonly tagKey: string;
  /** Lambda memory, MB (context `lambdaMemoryMb`). */
  readonly lambdaMemoryMb: number;
  /** Lambda timeout, minutes (context `lambdaTimeoutMinutes`, at most 15). */
  readonly lambdaTimeoutMinutes: number;
  /** Lambda /tmp size, MB (context `lambdaEphemeralMb`). */
  readonly lambdaEphemeralMb: number;
  /** DataFusion memory pool handed to the app as CURFLOW_MEMORY_LIMIT_MB (context `memoryLimitMb`). */
  readonly memoryLimitMb: number;
  /** Reserved concurrency; 0 means "do not reserve" (context `reservedConcurrency`). */
  readonly reservedConcurrency: number;
  /** CloudWatch Logs retention of the function's log group, days (context `logRetentionDays`). */
  readonly logRetentionDays: number;
  /** Log groups the function may read with logs:FilterLogEvents (context `evidenceLogGroups`). */
  readonly evidenceLogGroups: readonly string[];
  /**
   * The usage ledger's evidence sources (context `evidenceSources`, a JSON list of `{name,
   * location}` with `location` `cloudwatch://GROUP` or `s3://BUCKET/PREFIX`): the function's
   * `CURFLOW_EVIDENCE` and exactly the read grants they need, from one list.
   */
  readonly evidenceSources: readonly EvidenceSource[];
  /**
   * Attribution settings files as `s3://BUCKET/KEY` objects (contexts `attributionRules`,
   * `assignments`, `s3PrefixMap`, `agentSessionMap`): the function's `CURFLOW_ATTRIBUTION_RULES`,
   * `CURFLOW_ASSIGNMENTS`, `CURFLOW_S3_PREFIXES`, `CURFLOW_AGENT_SESSIONS` and an `s3:GetObject`
   * grant on exactly those objects. Unset ones are not configured (shipped rules, no assignments,
   * no prefix map, no session map).
   */
  readonly attributionSettings: AttributionSettings;

  // --- Cost Explorer (connected accounts) ---
  /**
   * Accounts the function syncs from Cost Explorer (context `connectedAccounts`, a JSON list of
   * `{name, accountId, roleArn, externalId, region?, enabled?}`). One list feeds both the
   * function's `CURFLOW_ACCOUNTS` and its `sts:AssumeRole` grant, so the two cannot disagree.
   */
  readonly connectedAccounts: readonly ConnectedAccount[];
  /** EventBridge schedule of the daily `{"curflow":"ce-sync"}`, or `off` (context `ceSyncSchedule`). */
  readonly ceSyncSchedule: string;

  // --- schedule / alerting ---
  /** EventBridge schedule expression, or `off` (context `nightlySchedule`). */
  readonly nightlySchedule: string;
  /** Optional e-mail address subscribed to the alerts topic (context `alertEmail`). */
  readonly alertEmail?: string;

  // --- checks ---
  /** Attach cdk-nag AwsSolutionsChecks to the app (context `nag`, default true). */
  readonly nag: boolean;
}

/** One connected account, as the app's `[[accounts]]` table has it (README, Connected accounts). */
export interface ConnectedAccount {
  readonly name: string;
  readonly accountId: string;
  /** The role curflow assumes in that account; the only resource of the function's sts:AssumeRole. */
  readonly roleArn: string;
  /** The `sts:ExternalId` the role's trust policy requires. */
  readonly externalId: string;
  readonly region: string;
  readonly enabled: boolean;
}

/**
 * Columns the CUR 2.0 export selects. They are the CUR 2.0 names of the columns curflow reads
 * (pipeline/scan/src/schema/columns.rs), plus identity/account columns useful for audits. CUR 2.0 has a
 * fixed schema and does not accept `SELECT *`; check names with
 * `aws bcm-data-exports get-table --table-name COST_AND_USAGE_REPORT`.
 */
export const DEFAULT_EXPORT_COLUMNS: readonly string[] = [
  'identity_line_item_id',
  'identity_time_interval',
  'bill_payer_account_id',
  'bill_payer_account_name',
  'bill_billing_period_start_date',
  'bill_billing_period_end_date',
  'line_item_usage_account_id',
  'line_item_line_item_type',
  'line_item_usage_start_date',
  'line_item_usage_end_date',
  'line_item_product_code',
  'line_item_usage_type',
  'line_item_operation',
  'line_item_resource_id',
  'line_item_usage_amount',
  'line_item_currency_code',
  'line_item_unblended_cost',
  'line_item_net_unblended_cost',
  'reservation_reservation_a_r_n',
  'reservation_effective_cost',
  'reservation_unused_amortized_upfront_fee_for_billing_period',
  'reservation_unused_recurring_fee',
  'reservation_amortized_upfront_fee_for_billing_period',
  'savings_plan_savings_plan_effective_cost',
  'savings_plan_total_commitment_to_date',
  'savings_plan_used_commitment',
  'savings_plan_amortized_upfront_commitment_for_billing_period',
  'resource_tags',
];

/** Defaults, also documented in README.md. */
export const DEFAULTS = {
  tableName: 'curflow-usage',
  reportIaTransitionDays: 90,
  noncurrentVersionExpirationDays: 30,
  accessLogRetentionDays: 365,
  exportName: 'curflow-cur2',
  cur2Prefix: 'cur2',
  legacyCurReportName: 'curflow-legacy-cur',
  legacyCurPrefix: 'cur',
  legacyCurTimeUnit: 'DAILY' as LegacyTimeUnit,
  lambdaAssetDir: '../target/lambda/curflow-lambda',
  lambdaArch: 'arm64' as LambdaArch,
  tagKey: 'accountant_id',
  lambdaMemoryMb: 2048,
  lambdaTimeoutMinutes: 15,
  lambdaEphemeralMb: 4096,
  memoryLimitMb: 1024,
  reservedConcurrency: 2,
  logRetentionDays: 365,
  nightlySchedule: 'cron(30 3 * * ? *)',
  // After the nightly run and before European business hours; Cost Explorer refreshes its data a
  // few times a day, so once a day is enough for yesterday's costs.
  ceSyncSchedule: 'cron(0 5 * * ? *)',
} as const;

/** Values CloudWatch Logs accepts for retention. */
const LOG_RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];

/** Reads one context key; `undefined` when unset. */
export type ContextReader = (key: string) => unknown;

/** Error for a bad context value: names the key so the fix is obvious. */
export class ConfigError extends Error {
  constructor(key: string, message: string) {
    super(`curflow: context "${key}": ${message}`);
    this.name = 'ConfigError';
  }
}

/**
 * Builds the configuration from context and environment.
 *
 * @param ctx reads a context key (usually `(k) => app.node.tryGetContext(k)`)
 * @param env process environment (a parameter so tests stay hermetic)
 * @param baseDir directory that relative `lambdaAssetDir` values are resolved against
 */
export function readConfig(ctx: ContextReader, env: NodeJS.ProcessEnv, baseDir: string): CurflowConfig {
  const str = (key: string, dflt: string): string => {
    const v = ctx(key);
    if (v === undefined || v === null || v === '') return dflt;
    if (typeof v !== 'string' && typeof v !== 'number') throw new ConfigError(key, `expected a string, got ${JSON.stringify(v)}`);
    return String(v).trim();
  };
  const bool = (key: string, dflt: boolean): boolean => {
    const v = ctx(key);
    if (v === undefined || v === null || v === '') return dflt;
    if (typeof v === 'boolean') return v;
    const s = String(v).trim().toLowerCase();
    if (s === 'true' || s === '1' || s === 'yes') return true;
    if (s === 'false' || s === '0' || s === 'no') return false;
    throw new ConfigError(key, `expected true or false, got ${JSON.stringify(v)}`);
  };
  const int = (key: string, dflt: number, min: number, max: number): number => {
    const v = ctx(key);
    if (v === undefined || v === null || v === '') return dflt;
    const n = typeof v === 'number' ? v : Number(String(v).trim());
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new ConfigError(key, `expected an integer in [${min}, ${max}], got ${JSON.stringify(v)}`);
    }
    return n;
  };
  const list = (key: string, dflt: readonly string[]): string[] => {
    const v = ctx(key);
    if (v === undefined || v === null || v === '') return [...dflt];
    let items: unknown[];
    if (Array.isArray(v)) {
      items = v;
    } else if (typeof v === 'string') {
      const s = v.trim();
      // `-c evidenceLogGroups='["a","b"]'` or `-c evidenceLogGroups=a,b`
      items = s.startsWith('[') ? parseJsonList(key, s) : s.split(',');
    } else {
      throw new ConfigError(key, `expected a list or a comma-separated string, got ${JSON.stringify(v)}`);
    }
    return items.map((x) => {
      if (typeof x !== 'string') throw new ConfigError(key, `list items must be strings, got ${JSON.stringify(x)}`);
      return x.trim();
    }).filter((x) => x.length > 0);
  };
  const prefix = (key: string, dflt: string): string => {
    const p = str(key, dflt);
    if (!/^[A-Za-z0-9!_.*'()-]+(\/[A-Za-z0-9!_.*'()-]+)*$/.test(p)) {
      throw new ConfigError(key, `expected an S3 prefix without leading/trailing "/" (e.g. "cur2"), got "${p}"`);
    }
    return p;
  };

  const account = str('account', env.CURFLOW_ACCOUNT || env.CDK_DEFAULT_ACCOUNT || PLACEHOLDER_ACCOUNT);
  if (!/^\d{12}$/.test(account)) throw new ConfigError('account', `expected a 12-digit AWS account id, got "${account}"`);
  const region = str('region', env.CURFLOW_REGION || BILLING_REGION);
  if (!/^[a-z]{2}(-[a-z]+)+-\d$/.test(region)) throw new ConfigError('region', `expected an AWS region such as us-east-1, got "${region}"`);

  const lambdaArch = str('lambdaArch', DEFAULTS.lambdaArch).toLowerCase().replace('-', '_');
  if (lambdaArch !== 'arm64' && lambdaArch !== 'x86_64') {
    throw new ConfigError('lambdaArch', `expected arm64 or x86_64, got "${lambdaArch}"`);
  }
  const legacyCurTimeUnit = str('legacyCurTimeUnit', DEFAULTS.legacyCurTimeUnit).toUpperCase();
  if (legacyCurTimeUnit !== 'HOURLY' && legacyCurTimeUnit !== 'DAILY') {
    throw new ConfigError('legacyCurTimeUnit', `expected HOURLY or DAILY, got "${legacyCurTimeUnit}"`);
  }

  const cur2Prefix = prefix('cur2Prefix', DEFAULTS.cur2Prefix);
  const legacyCurPrefix = prefix('legacyCurPrefix', DEFAULTS.legacyCurPrefix);
  // S3 rejects two notification configurations whose prefixes overlap for the same event type.
  if ((cur2Prefix + '/').startsWith(legacyCurPrefix + '/') || (legacyCurPrefix + '/').startsWith(cur2Prefix + '/')) {
    throw new ConfigError('cur2Prefix', `"${cur2Prefix}" and legacyCurPrefix "${legacyCurPrefix}" overlap; S3 event notifications need disjoint prefixes`);
  }

  // The DataFusion pool bounds aggregation and sorts, not what it does not account (the fast path's
  // group tables, decoded batches, the lines being written, the SDK): half the function's memory
  // stays outside it. The binary refuses a pool of the whole memory at cold start and warns above half.
  const lambdaMemoryMb = int('lambdaMemoryMb', DEFAULTS.lambdaMemoryMb, 128, 10240);
  const memoryLimitMb = int('memoryLimitMb', DEFAULTS.memoryLimitMb, 64, 10240);
  if (memoryLimitMb * 2 > lambdaMemoryMb) {
    throw new ConfigError('memoryLimitMb', `${memoryLimitMb} MiB is more than half of lambdaMemoryMb (${lambdaMemoryMb} MB); the other half holds what the pool does not account`);
  }
  const lambdaEphemeralMb = int('lambdaEphemeralMb', DEFAULTS.lambdaEphemeralMb, 1024, 10240);

  const logRetentionDays = int('logRetentionDays', DEFAULTS.logRetentionDays, 1, 3653);
  if (!LOG_RETENTION_DAYS.includes(logRetentionDays)) {
    throw new ConfigError('logRetentionDays', `CloudWatch Logs accepts only ${LOG_RETENTION_DAYS.join(', ')}; got ${logRetentionDays}`);
  }

  const nightlySchedule = str('nightlySchedule', DEFAULTS.nightlySchedule);
  if (nightlySchedule !== 'off' && !/^(cron|rate)\(.+\)$/.test(nightlySchedule)) {
    throw new ConfigError('nightlySchedule', `expected "cron(...)", "rate(...)" or "off", got "${nightlySchedule}"`);
  }

  const ceSyncSchedule = str('ceSyncSchedule', DEFAULTS.ceSyncSchedule);
  if (ceSyncSchedule !== 'off' && !/^(cron|rate)\(.+\)$/.test(ceSyncSchedule)) {
    throw new ConfigError('ceSyncSchedule', `expected "cron(...)", "rate(...)" or "off", got "${ceSyncSchedule}"`);
  }
  const connectedAccounts = readConnectedAccounts(ctx('connectedAccounts'));
  const evidenceSources = readEvidenceSources(ctx('evidenceSources'));
  const attributionSettings: AttributionSettings = {};
  for (const setting of ATTRIBUTION_SETTINGS) {
    const v = str(setting.context, '');
    if (v) attributionSettings[setting.context] = settingsObject(setting.context, v);
  }

  const exportColumns = list('exportColumns', DEFAULT_EXPORT_COLUMNS);
  for (const c of exportColumns) {
    if (!/^[a-z][a-z0-9_]*(\.[A-Za-z0-9_:-]+)?$/.test(c)) throw new ConfigError('exportColumns', `not a CUR 2.0 column name: "${c}"`);
  }
  if (exportColumns.length === 0) throw new ConfigError('exportColumns', 'at least one column is needed');

  const evidenceLogGroups = list('evidenceLogGroups', []);
  for (const g of evidenceLogGroups) {
    if (!/^[A-Za-z0-9_\-/.#]{1,512}$/.test(g)) throw new ConfigError('evidenceLogGroups', `not a log group name: "${g}"`);
  }

  const alertEmail = str('alertEmail', '');
  if (alertEmail && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(alertEmail)) throw new ConfigError('alertEmail', `not an e-mail address: "${alertEmail}"`);

  const tableName = str('tableName', DEFAULTS.tableName);
  if (!/^[A-Za-z0-9_.-]{3,255}$/.test(tableName)) throw new ConfigError('tableName', `not a DynamoDB table name: "${tableName}"`);
  const tagKey = str('tagKey', DEFAULTS.tagKey);
  if (!/^[\p{L}\p{N}\s_.:/=+\-@]{1,128}$/u.test(tagKey)) throw new ConfigError('tagKey', `not a tag key: "${tagKey}"`);

  const dataExport = bool('dataExport', true);
  const legacyCur = bool('legacyCur', false);
  if ((dataExport || legacyCur) && region !== BILLING_REGION) {
    throw new ConfigError(
      'region',
      `CUR report definitions and Data Exports can only be created in ${BILLING_REGION}, but the stack targets ${region}. ` +
        'Deploy to us-east-1, or pass -c dataExport=false (and no legacyCur) and create the export separately.',
    );
  }

  const lambdaTimeoutMinutes = int('lambdaTimeoutMinutes', DEFAULTS.lambdaTimeoutMinutes, 1, 15);
  const reportIaTransitionDays = int('reportIaTransitionDays', DEFAULTS.reportIaTransitionDays, 30, 3650);

  return {
    account,
    region,
    tableName,
    reportIaTransitionDays,
    noncurrentVersionExpirationDays: int('noncurrentVersionExpirationDays', DEFAULTS.noncurrentVersionExpirationDays, 1, 3650),
    accessLogRetentionDays: int('accessLogRetentionDays', DEFAULTS.accessLogRetentionDays, 1, 3650),
    dataExport,
    exportName: str('exportName', DEFAULTS.exportName),
    cur2Prefix,
    exportColumns,
    legacyCur,
    legacyCurReportName: str('legacyCurReportName', DEFAULTS.legacyCurReportName),
    legacyCurPrefix,
    legacyCurTimeUnit,
    lambdaAssetDir: path.resolve(baseDir, str('lambdaAssetDir', DEFAULTS.lambdaAssetDir)),
    lambdaArch,
    tagKey,
    lambdaMemoryMb,
    lambdaTimeoutMinutes,
    lambdaEphemeralMb,
    memoryLimitMb,
    reservedConcurrency: int('reservedConcurrency', DEFAULTS.reservedConcurrency, 0, 1000),
    logRetentionDays,
    evidenceLogGroups,
    evidenceSources,
    attributionSettings,
    connectedAccounts,
    ceSyncSchedule,
    nightlySchedule,
    alertEmail: alertEmail || undefined,
    nag: bool('nag', true),
  };
}

/** A context value holding a list: as given in cdk.json, or JSON text from `-c key='[...]'`; none when unset. */
function contextList(key: string, v: unknown, what: string): unknown[] {
  if (v === undefined || v === null || v === '') return [];
  let items: unknown = v;
  if (typeof v === 'string') {
    try {
      items = JSON.parse(v);
    } catch {
      throw new ConfigError(key, `expected a JSON list of ${what}, got ${v}`);
    }
  }
  if (!Array.isArray(items)) throw new ConfigError(key, `expected a list of ${what}, got ${JSON.stringify(v)}`);
  return items;
}

/**
 * Reads `connectedAccounts`: a JSON list (in cdk.json, or `-c connectedAccounts='[...]'`). Checked
 * here as the app checks `[[accounts]]`, so a typo fails `cdk synth`, not the first daily sync.
 */
export function readConnectedAccounts(v: unknown): ConnectedAccount[] {
  const key = 'connectedAccounts';
  const items = contextList(key, v, 'accounts');
  const known = ['name', 'accountId', 'roleArn', 'externalId', 'region', 'enabled'];
  const out = items.map((item: unknown, i: number): ConnectedAccount => {
    if (typeof item !== 'object' || item === null || Array.isArray(item)) throw new ConfigError(key, `item ${i} is not an object`);
    const o = item as Record<string, unknown>;
    const unknownKey = Object.keys(o).find((k) => !known.includes(k));
    if (unknownKey) throw new ConfigError(key, `item ${i}: unknown key "${unknownKey}" (expected ${known.join(', ')})`);
    const text = (k: string, pattern: RegExp, dflt?: string): string => {
      const value = o[k] ?? dflt;
      if (typeof value !== 'string' || !pattern.test(value)) throw new ConfigError(key, `item ${i}: "${k}" is missing or invalid: ${JSON.stringify(value)}`);
      return value;
    };
    const accountId = text('accountId', /^\d{12}$/);
    const roleArn = text('roleArn', /^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@\/-]{1,512}$/);
    if (roleArn.split(':')[4] !== accountId) throw new ConfigError(key, `item ${i}: roleArn ${roleArn} is not a role of account ${accountId}`);
    if (o.enabled !== undefined && typeof o.enabled !== 'boolean') throw new ConfigError(key, `item ${i}: "enabled" must be true or false`);
    return {
      name: text('name', /^[\w.@+=,-]{1,64}$/),
      accountId,
      roleArn,
      // The characters and length STS accepts for an ExternalId.
      externalId: text('externalId', /^[\w+=,.@:\/-]{2,1224}$/),
      region: text('region', /^[a-z]{2}(-[a-z]+)+-\d$/, 'us-east-1'),
      enabled: o.enabled === undefined ? true : (o.enabled as boolean),
    };
  });
  const names = out.map((a) => a.name);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) throw new ConfigError(key, `account name "${dup}" appears twice`);
  return out;
}

/** The attribution settings files the stack can hand the function, with the app's variable. */
export const ATTRIBUTION_SETTINGS = [
  { context: 'attributionRules', env: 'CURFLOW_ATTRIBUTION_RULES' },
  { context: 'assignments', env: 'CURFLOW_ASSIGNMENTS' },
  { context: 's3PrefixMap', env: 'CURFLOW_S3_PREFIXES' },
  { context: 'agentSessionMap', env: 'CURFLOW_AGENT_SESSIONS' },
] as const;

/** Context key of an attribution settings file. */
export type AttributionSetting = (typeof ATTRIBUTION_SETTINGS)[number]['context'];

/** The configured settings files: context key → the S3 object. */
export type AttributionSettings = { -readonly [K in AttributionSetting]?: { bucket: string; key: string; url: string } };

/** A settings file's `s3://BUCKET/KEY` (one object: the function has no local files to point at). */
export function settingsObject(context: string, url: string): { bucket: string; key: string; url: string } {
  const m = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])\/([\x21-\x7e]*[^/])$/.exec(url);
  if (!m) {
    throw new ConfigError(context, `expected one S3 object as s3://BUCKET/KEY (the function has no local files), got ${JSON.stringify(url)}`);
  }
  return { bucket: m[1], key: m[2], url };
}

/** A usage-evidence source of the deployed function (README "Usage ledger"). */
export interface EvidenceSource {
  readonly name: string;
  /**
   * `cloudwatch://GROUP`, `s3://BUCKET/PREFIX` or `cloudwatch-metrics://NAMESPACE?metric=...`
   * (a local path means nothing in Lambda).
   */
  readonly location: string;
}

/** Where an evidence source is read: a log group, or an S3 bucket and key prefix. */
export type EvidenceLocation =
  | { kind: 'logs'; group: string }
  | { kind: 's3'; bucket: string; prefix: string }
  | { kind: 'metrics'; namespace: string };

/** The parts of a checked `location`. */
export function evidenceLocation(location: string): EvidenceLocation {
  const logs = /^cloudwatch:\/\/([A-Za-z0-9_\-/.#]{1,512})(\?.*)?$/.exec(location);
  if (logs) return { kind: 'logs', group: logs[1] };
  const s3 = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])\/([\x21-\x7e]*)$/.exec(location);
  if (s3) return { kind: 's3', bucket: s3[1], prefix: s3[2] };
  // The app checks the query (metric, dimension, driver) again when it starts.
  const metrics = /^cloudwatch-metrics:\/\/([^?\s]{1,255})\?(?=.*\bmetric=)(?=.*\bdimension=)(?=.*\bdriver=)\S+$/.exec(location);
  if (metrics) return { kind: 'metrics', namespace: metrics[1] };
  throw new ConfigError(
    'evidenceSources',
    `location ${JSON.stringify(location)}: expected cloudwatch://GROUP, s3://BUCKET/PREFIX or cloudwatch-metrics://NAMESPACE?metric=NAME&dimension=TENANT_DIMENSION&driver=DRIVER`,
  );
}

/**
 * Reads `evidenceSources`: a JSON list (in cdk.json, or `-c evidenceSources='[...]'`), checked as
 * the app checks `[[evidence]]` (names of letters, digits, `-`, `_`, unique), so a typo fails
 * `cdk synth`, not the first nightly ingestion.
 */
export function readEvidenceSources(v: unknown): EvidenceSource[] {
  const key = 'evidenceSources';
  const items = contextList(key, v, 'sources');
  const out = items.map((item: unknown, i: number): EvidenceSource => {
    if (typeof item !== 'object' || item === null || Array.isArray(item)) throw new ConfigError(key, `item ${i} is not an object`);
    const o = item as Record<string, unknown>;
    const unknownKey = Object.keys(o).find((k) => k !== 'name' && k !== 'location');
    if (unknownKey) throw new ConfigError(key, `item ${i}: unknown key "${unknownKey}" (expected name, location)`);
    if (typeof o.name !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(o.name)) {
      throw new ConfigError(key, `item ${i}: "name" must be letters, digits, '-' or '_': ${JSON.stringify(o.name)}`);
    }
    if (typeof o.location !== 'string') throw new ConfigError(key, `item ${i}: "location" is missing`);
    evidenceLocation(o.location);
    return { name: o.name, location: o.location };
  });
  const names = out.map((s) => s.name);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) throw new ConfigError(key, `source name "${dup}" appears twice`);
  return out;
}

/** The sources as the app's `CURFLOW_EVIDENCE` (a TOML inline array of tables). */
export function evidenceToml(sources: readonly EvidenceSource[]): string {
  const q = (s: string) => JSON.stringify(s);
  return `[${sources.map((s) => `{name = ${q(s.name)}, location = ${q(s.location)}}`).join(', ')}]`;
}

/**
 * The accounts as the app's `CURFLOW_ACCOUNTS` (a TOML inline array of tables, README
 * Configuration); JSON string literals are valid TOML basic strings.
 */
export function accountsToml(accounts: readonly ConnectedAccount[]): string {
  const q = (s: string) => JSON.stringify(s);
  const table = (a: ConnectedAccount) =>
    `{name = ${q(a.name)}, account_id = ${q(a.accountId)}, role_arn = ${q(a.roleArn)}, ` +
    `external_id = ${q(a.externalId)}, region = ${q(a.region)}, enabled = ${a.enabled}}`;
  return `[${accounts.map(table).join(', ')}]`;
}

function parseJsonList(key: string, s: string): unknown[] {
  try {
    const v: unknown = JSON.parse(s);
    if (Array.isArray(v)) return v;
  } catch {
    // fall through
  }
  throw new ConfigError(key, `expected a JSON list of strings, got ${s}`);
}
