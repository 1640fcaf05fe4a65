/** CUR 2.0 Data Export (default) and the optional legacy CUR report definition. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Match } from 'aws-cdk-lib/assertions';
import { DEFAULT_EXPORT_COLUMNS } from '../lib/config';
import { build, logicalId } from './helpers';

const { template } = build();
const reportBucket = logicalId(template, 'AWS::S3::Bucket', 'StorageReportBucket');

test('CUR 2.0 export: query, table configuration, Parquet, CUSTOM, OVERWRITE_REPORT, prefix cur2', () => {
  template.resourceCountIs('AWS::BCMDataExports::Export', 1);
  const id = logicalId(template, 'AWS::BCMDataExports::Export', 'ReportsCur2Export');
  const exp = template.toJSON().Resources[id];
  const e = exp.Properties.Export;
  assert.equal(e.Name, 'curflow-cur2');
  assert.match(e.DataQuery.QueryStatement, /^SELECT .+ FROM COST_AND_USAGE_REPORT$/);
  for (const col of ['line_item_unblended_cost', 'resource_tags', 'line_item_resource_id', 'bill_billing_period_start_date']) {
    assert.ok(e.DataQuery.QueryStatement.includes(col), col);
  }
  assert.deepEqual(e.DataQuery.TableConfigurations.COST_AND_USAGE_REPORT, {
    INCLUDE_RESOURCES: 'TRUE',
    TIME_GRANULARITY: 'DAILY',
    INCLUDE_SPLIT_COST_ALLOCATION_DATA: 'FALSE',
  });
  assert.deepEqual(e.DestinationConfigurations.S3Destination, {
    S3Bucket: { Ref: reportBucket },
    S3Prefix: 'cur2',
    S3Region: 'us-east-1',
    S3OutputConfigurations: { Format: 'PARQUET', Compression: 'PARQUET', OutputType: 'CUSTOM', Overwrite: 'OVERWRITE_REPORT' },
  });
  assert.deepEqual(e.RefreshCadence, { Frequency: 'SYNCHRONOUS' });
  // Data Exports validates the bucket policy at creation: it must exist first.
  assert.ok(exp.DependsOn.some((d: string) => d.startsWith('StorageReportBucketPolicy')));
});

test('export selects the default column list, once each', () => {
  const id = logicalId(template, 'AWS::BCMDataExports::Export', 'ReportsCur2Export');
  const q: string = template.toJSON().Resources[id].Properties.Export.DataQuery.QueryStatement;
  const cols = q.replace(/^SELECT /, '').replace(/ FROM COST_AND_USAGE_REPORT$/, '').split(', ');
  assert.deepEqual(cols, [...DEFAULT_EXPORT_COLUMNS]);
  assert.equal(new Set(cols).size, cols.length);
});

test('export prefix, name and columns are configurable', () => {
  const t = build({ cur2Prefix: 'billing/cur2', exportName: 'acme', exportColumns: 'line_item_unblended_cost,resource_tags' }).template;
  t.hasResourceProperties('AWS::BCMDataExports::Export', {
    Export: Match.objectLike({
      Name: 'acme',
      DataQuery: Match.objectLike({ QueryStatement: 'SELECT line_item_unblended_cost, resource_tags FROM COST_AND_USAGE_REPORT' }),
      DestinationConfigurations: { S3Destination: Match.objectLike({ S3Prefix: 'billing/cur2' }) },
    }),
  });
});

test('no legacy CUR without the context flag', () => {
  template.resourceCountIs('AWS::CUR::ReportDefinition', 0);
  build({ legacyCur: 'false' }).template.resourceCountIs('AWS::CUR::ReportDefinition', 0);
});

test('legacy CUR with legacyCur=true: Parquet, Athena, OVERWRITE_REPORT, RESOURCES, prefix cur', () => {
  for (const flag of ['true', true]) {
    const t = build({ legacyCur: flag }).template;
    t.resourceCountIs('AWS::CUR::ReportDefinition', 1);
    const bucket = logicalId(t, 'AWS::S3::Bucket', 'StorageReportBucket');
    const id = logicalId(t, 'AWS::CUR::ReportDefinition', 'ReportsLegacyCur');
    const r = t.toJSON().Resources[id];
    assert.deepEqual(r.Properties, {
      ReportName: 'curflow-legacy-cur',
      TimeUnit: 'DAILY',
      Format: 'Parquet',
      Compression: 'Parquet',
      AdditionalSchemaElements: ['RESOURCES'],
      AdditionalArtifacts: ['ATHENA'],
      ReportVersioning: 'OVERWRITE_REPORT',
      RefreshClosedReports: true,
      S3Bucket: { Ref: bucket },
      S3Prefix: 'cur',
      S3Region: 'us-east-1',
      Tags: [{ Key: 'project', Value: 'curflow' }],
    });
    assert.ok(r.DependsOn.some((d: string) => d.startsWith('StorageReportBucketPolicy')));
    // The CUR 2.0 export stays.
    t.resourceCountIs('AWS::BCMDataExports::Export', 1);
  }
});

test('legacy CUR granularity can be HOURLY', () => {
  build({ legacyCur: 'true', legacyCurTimeUnit: 'hourly' }).template.hasResourceProperties('AWS::CUR::ReportDefinition', {
    TimeUnit: 'HOURLY',
  });
});

test('dataExport=false drops the export but keeps bucket and processing', () => {
  const t = build({ dataExport: 'false' }).template;
  t.resourceCountIs('AWS::BCMDataExports::Export', 0);
  t.resourceCountIs('AWS::Lambda::Function', 2); // curflow + CDK's S3 notification handler
});

test('reports outside us-east-1 are refused with an explanation', () => {
  assert.throws(() => build({ region: 'eu-west-1' }), /only be created in us-east-1.*dataExport=false/s);
  // Without export and legacy CUR, another region is fine.
  const t = build({ region: 'eu-west-1', dataExport: 'false' }).template;
  t.resourceCountIs('AWS::BCMDataExports::Export', 0);
});
