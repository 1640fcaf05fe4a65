/**
 * Test scaffolding: a throw-away Lambda asset directory with a dummy `bootstrap` (synth never
 * compiles or runs it), and an App carrying the same context as `cdk.json` so the tests see the
 * feature flags the CLI uses.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { buildApp, PROJECT_DIR, type BuiltApp } from '../lib/app';

/** `context` of cdk.json (feature flags). */
export const CDK_JSON_CONTEXT: Record<string, unknown> = JSON.parse(
  fs.readFileSync(path.join(PROJECT_DIR, 'cdk.json'), 'utf8'),
).context;

const tempDirs: string[] = [];
process.on('exit', () => {
  for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
});

/** A fresh temporary directory, removed when the test process exits. */
export function tempDir(prefix = 'curflow-cdk-test-'): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.push(d);
  return d;
}

/** A temporary Lambda asset directory holding a dummy `bootstrap`. */
export function makeAssetDir(): string {
  const d = tempDir('curflow-asset-');
  fs.writeFileSync(path.join(d, 'bootstrap'), '#!/bin/sh\necho "dummy curflow bootstrap for tests"\n', { mode: 0o755 });
  return d;
}

let sharedAsset: string | undefined;
/** One asset dir per test process is enough. */
export function assetDir(): string {
  sharedAsset ??= makeAssetDir();
  return sharedAsset;
}

export interface Built extends BuiltApp {
  readonly template: Template;
}

/**
 * Builds the app with cdk.json's context, a dummy asset and `context` on top. cdk-nag is off
 * unless asked for (nag.test.ts covers it); the environment is empty so the host's AWS variables
 * cannot leak in.
 */
export function build(context: Record<string, unknown> = {}, env: NodeJS.ProcessEnv = {}): Built {
  const app = new App({
    context: { ...CDK_JSON_CONTEXT, lambdaAssetDir: assetDir(), nag: false, ...context },
    outdir: tempDir('curflow-cdkout-'),
  });
  const built = buildApp(app, env);
  return { ...built, template: Template.fromStack(built.stack) };
}

/** Every resource of `type` as [logicalId, resource]. */
export function resourcesOfType(template: Template, type: string): [string, any][] {
  return Object.entries(template.findResources(type));
}

/** Logical id of the only resource of `type` whose id starts with `prefix`. */
export function logicalId(template: Template, type: string, prefix: string): string {
  const ids = Object.keys(template.findResources(type)).filter((id) => id.startsWith(prefix));
  if (ids.length !== 1) throw new Error(`expected one ${type} starting with ${prefix}, got ${ids.join(', ') || 'none'}`);
  return ids[0];
}

/** All IAM policy statements of the template: standalone policies and roles' inline policies. */
export function iamStatements(template: Template): { source: string; statement: any }[] {
  const out: { source: string; statement: any }[] = [];
  for (const [id, p] of resourcesOfType(template, 'AWS::IAM::Policy')) {
    for (const s of p.Properties.PolicyDocument.Statement) out.push({ source: id, statement: s });
  }
  for (const [id, r] of resourcesOfType(template, 'AWS::IAM::Role')) {
    for (const pol of r.Properties.Policies ?? []) {
      for (const s of pol.PolicyDocument.Statement) out.push({ source: `${id}/${pol.PolicyName}`, statement: s });
    }
  }
  return out;
}

/** Normalizes a string-or-array IAM field to an array. */
export function asArray<T>(x: T | T[] | undefined): T[] {
  return x === undefined ? [] : Array.isArray(x) ? x : [x];
}

/** Statements of the curflow Lambda's role. */
export function functionRoleStatements(template: Template): any[] {
  const roleId = logicalId(template, 'AWS::IAM::Role', 'ProcessingRole');
  const policies = resourcesOfType(template, 'AWS::IAM::Policy').filter(([, p]) =>
    asArray(p.Properties.Roles).some((r: any) => r.Ref === roleId),
  );
  return policies.flatMap(([, p]) => p.Properties.PolicyDocument.Statement);
}
