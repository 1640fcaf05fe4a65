"""moto_server for the IAM-enforced end-to-end test (pipeline/tests/lambda_iam.rs), with three gaps
of moto's closed so that it is as strict as AWS and no stricter.

moto checks a request's SigV4 signature by re-signing it. For form-encoded (AWS Query protocol)
POSTs such as SNS Publish, the web framework has already parsed the body into fields, so moto
re-encodes them with Python's default `+` for spaces, while the AWS SDKs (the Rust SDK included)
sign the body percent-encoded (RFC 3986, `%20`): every such call with a space in a value then
fails with SignatureDoesNotMatch, which real AWS would accept. Here the fields are re-encoded the
way the SDKs encode them, in the order received.

Since moto 5.2.6 (the first that speaks CloudWatch's Smithy RPC v2 CBOR protocol, which the
`cloudwatch-metrics://` evidence source needs), an S3 request is authorized under the name of its
API operation (`ListObjectsV2`) instead of the IAM action S3 maps it to (`s3:ListBucket`): a
policy that grants `s3:ListBucket`, as AWS requires, is then denied every listing. S3's own
responder still records the IAM action (`ACTION_MAP`, in the request's data as `Action`); here
the S3 authorization uses it again, as moto 5.2.5 did.

moto names the IAM action after the service of the request's signature (`monitoring:ListMetrics`
for CloudWatch), where AWS uses the service's IAM prefix (`cloudwatch:ListMetrics`): a policy
written for AWS would be denied every CloudWatch call. The action is renamed to the IAM prefix.
It also has the gaps moto_server.py closes
(Cost Explorer GetCostForecast). Everything else is moto's own code.

Usage: python moto_iam_server.py -H 127.0.0.1 -p PORT   (the arguments of moto.server)
"""
import urllib.parse

import moto_server  # noqa: F401  (its gap handlers, registered on import)

from moto.iam import access_control

_original = access_control.IAMRequestBase._create_aws_request


def _create_aws_request(self):
    if not self._body and isinstance(self._data, dict) and self._data:
        pairs = [(k, v) for k, vs in self._data.items() for v in (vs if isinstance(vs, list) else [vs])]
        self._body = urllib.parse.urlencode(pairs, quote_via=urllib.parse.quote, safe="-_.~")
    return _original(self)


access_control.IAMRequestBase._create_aws_request = _create_aws_request

_original_s3_init = access_control.S3IAMRequest.__init__


def _s3_init(self, account_id, method, path, data, body, headers, action):
    mapped = data.get("Action") if hasattr(data, "get") else None
    if mapped:
        action = mapped
    _original_s3_init(
        self, account_id=account_id, method=method, path=path, data=data, body=body, headers=headers, action=action
    )


access_control.S3IAMRequest.__init__ = _s3_init

# Signing name -> IAM action prefix, where they differ (for the services curflow calls).
_IAM_PREFIX = {"monitoring": "cloudwatch"}
_original_base_init = access_control.IAMRequestBase.__init__


def _base_init(self, *args, **kwargs):
    _original_base_init(self, *args, **kwargs)
    service, _, name = self._action.partition(":")
    if service in _IAM_PREFIX:
        self._action = f"{_IAM_PREFIX[service]}:{name}"


access_control.IAMRequestBase.__init__ = _base_init

if __name__ == "__main__":
    from moto.server import main

    main()
