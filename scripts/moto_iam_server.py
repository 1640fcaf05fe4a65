"""moto_server for the IAM-enforced end-to-end test (pipeline/tests/lambda_iam.rs), with one gap
of moto's closed so that it is as strict as AWS and no stricter.

moto checks a request's SigV4 signature by re-signing it. For form-encoded (AWS Query protocol)
POSTs such as SNS Publish, the web framework has already parsed the body into fields, so moto
re-encodes them with Python's default `+` for spaces, while the AWS SDKs (the Rust SDK included)
sign the body percent-encoded (RFC 3986, `%20`): every such call with a space in a value then
fails with SignatureDoesNotMatch, which real AWS would accept. Here the fields are re-encoded the
way the SDKs encode them, in the order received. It also has the gaps moto_server.py closes
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

if __name__ == "__main__":
    from moto.server import main

    main()
