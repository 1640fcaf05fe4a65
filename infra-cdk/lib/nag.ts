/**
 * Helpers for cdk-nag 3 acknowledgements.
 *
 * Why a helper: cdk-nag 3 matches acknowledgements by exact id, and wildcard findings carry the
 * offending resource in the id (`AwsSolutions-IAM5[Resource::<Bucket.Arn>/cur2/*]`). Computing that
 * id from the very token we put in the policy keeps each acknowledgement pinned to one resource:
 * widening a policy later produces a new, unacknowledged finding instead of riding on an old one.
 * Every acknowledgement made through here is also listed, with its reason, in README.md (a test
 * checks that).
 */
import { Stack, Validations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';

/** Acknowledges one cdk-nag rule (or one finding of a rule) on `scope` and its children. */
export function acknowledge(scope: IConstruct, id: string, reason: string): void {
  Validations.of(scope).acknowledge({ id, reason });
}

/**
 * The finding suffix cdk-nag's IAM5 rule reports for a wildcard resource: the resource resolved to
 * CloudFormation and flattened the way cdk-nag does (`Fn::GetAtt` -> `<Id.Attr>`, `Ref` -> `<Id>`,
 * `Fn::Join` joined).
 */
export function wildcardResourceFinding(scope: IConstruct, resource: string): string {
  return `AwsSolutions-IAM5[Resource::${flatten(Stack.of(scope).resolve(resource))}]`;
}

/** Acknowledges the IAM5 finding of each wildcard resource in `resources` on `scope`. */
export function acknowledgeWildcardResources(scope: IConstruct, resources: readonly string[], reason: string): void {
  for (const r of resources) acknowledge(scope, wildcardResourceFinding(scope, r), reason);
}

/** Mirrors cdk-nag's (internal) flattenCfnReference. */
function flatten(node: unknown): string {
  if (node === undefined) return '';
  if (typeof node === 'string') return node.replace(/\$\{/g, '<').replace(/}/g, '>');
  if (node && typeof node === 'object') {
    const o = node as Record<string, unknown>;
    if (o['Fn::Join']) {
      const [delimiter, items] = o['Fn::Join'] as [string, unknown[]];
      return items.map(flatten).join(delimiter);
    }
    if (o['Fn::Sub']) return flatten(o['Fn::Sub']);
    if (o['Fn::GetAtt']) {
      const [res, attr] = o['Fn::GetAtt'] as [unknown, unknown];
      return `<${flatten(res)}.${flatten(attr)}>`;
    }
    if (o['Fn::ImportValue']) return flatten(o['Fn::ImportValue']);
    if (o.Ref) return `<${flatten(o.Ref)}>`;
  }
  return JSON.stringify(node);
}
