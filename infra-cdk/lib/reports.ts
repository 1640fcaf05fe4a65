/**
 * Reports: the CUR 2.0 Data Export (always, unless `dataExport=false`) and, optionally, a legacy
 * CUR report definition (`legacyCur=true`).
 *
 * Why: curflow reads both formats (pipeline/scan/src/schema/resolve.rs tells them apart), but CUR 2.0 is
 * the one AWS recommends: fixed schema, tags in one `resource_tags` map column. Both are delivered
 * as Parquet with OVERWRITE_REPORT, so each billing period has exactly one current set of files
 * and a redelivery replaces, never duplicates, a month (the bucket's versioning keeps the
 * previous generation for `noncurrentVersionExpirationDays`).
 *
 * Region: AWS::BCMDataExports::Export and AWS::CUR::ReportDefinition exist only in us-east-1
 * (config.ts refuses other regions while either is enabled). The bucket itself could live anywhere.
 */
import { Stack } from 'aws-cdk-lib';
import * as bcm from 'aws-cdk-lib/aws-bcmdataexports';
import * as cur from 'aws-cdk-lib/aws-cur';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import type { CurflowConfig } from './config';

/** The report settings of the stack's configuration (documented on [`CurflowConfig`]). */
export type ReportSettings = Pick<
  CurflowConfig,
  | 'dataExport'
  | 'exportName'
  | 'cur2Prefix'
  | 'exportColumns'
  | 'legacyCur'
  | 'legacyCurReportName'
  | 'legacyCurPrefix'
  | 'legacyCurTimeUnit'
>;

export interface ReportsProps extends ReportSettings {
  /** Destination bucket; its policy must already allow the billing services. */
  readonly bucket: s3.Bucket;
}

/** The CUR 2.0 table name in Data Exports. */
export const CUR2_TABLE = 'COST_AND_USAGE_REPORT';

/** CUR 2.0 export and optional legacy CUR. */
export class CurflowReports extends Construct {
  public readonly dataExport?: bcm.CfnExport;
  public readonly legacyReport?: cur.CfnReportDefinition;

  constructor(scope: Construct, id: string, props: ReportsProps) {
    super(scope, id);
    const region = Stack.of(this).region;
    const bucketPolicy = props.bucket.policy;

    if (props.dataExport) {
      this.dataExport = new bcm.CfnExport(this, 'Cur2Export', {
        export: {
          name: props.exportName,
          description: 'CUR 2.0 for curflow per-tenant cost attribution (daily, with resource ids, Parquet)',
          dataQuery: {
            queryStatement: `SELECT ${props.exportColumns.join(', ')} FROM ${CUR2_TABLE}`,
            tableConfigurations: {
              [CUR2_TABLE]: {
                INCLUDE_RESOURCES: 'TRUE',
                TIME_GRANULARITY: 'DAILY',
                INCLUDE_SPLIT_COST_ALLOCATION_DATA: 'FALSE',
              },
            },
          },
          destinationConfigurations: {
            s3Destination: {
              s3Bucket: props.bucket.bucketName,
              s3Prefix: props.cur2Prefix,
              s3Region: region,
              s3OutputConfigurations: {
                format: 'PARQUET',
                compression: 'PARQUET',
                outputType: 'CUSTOM',
                overwrite: 'OVERWRITE_REPORT',
              },
            },
          },
          // SYNCHRONOUS: refreshed whenever the bill is (up to several times a day); the only cadence.
          refreshCadence: { frequency: 'SYNCHRONOUS' },
        },
      });
      // Data Exports checks the bucket policy when the export is created.
      if (bucketPolicy) this.dataExport.node.addDependency(bucketPolicy);
    }

    if (props.legacyCur) {
      this.legacyReport = new cur.CfnReportDefinition(this, 'LegacyCur', {
        reportName: props.legacyCurReportName,
        timeUnit: props.legacyCurTimeUnit,
        format: 'Parquet',
        compression: 'Parquet',
        additionalSchemaElements: ['RESOURCES'],
        // Athena integration requires Parquet and OVERWRITE_REPORT. curflow is triggered by the
        // `<report>-Manifest.json` files and reads the data files they list.
        additionalArtifacts: ['ATHENA'],
        reportVersioning: 'OVERWRITE_REPORT',
        refreshClosedReports: true,
        s3Bucket: props.bucket.bucketName,
        s3Prefix: props.legacyCurPrefix,
        s3Region: region,
      });
      if (bucketPolicy) this.legacyReport.node.addDependency(bucketPolicy);
    }
  }
}
