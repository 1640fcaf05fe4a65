"""moto_server with one gap of moto 5.2.6 closed: Cost Explorer `GetCostForecast`, which moto does
not implement (its Cost Explorer has `GetCostAndUsage` with seeded results, nothing else). The
test suite (pipeline/tests/cost_explorer.rs) calls it through the real AWS SDK, so the handler
answers like AWS, from results seeded the way moto seeds `GetCostAndUsage`:

    POST /moto-api/static/ce/cost-forecast-results
    {"account_id": "111111111111", "result": {"Total": {"Amount": "12.34", "Unit": "USD"}, ...}}
    {"account_id": "111111111111", "error": {"code": "AccessDeniedException", "message": "..."}}

The account is the one of the request's credentials (moto maps an assumed role's temporary keys
to the role's account), as AWS answers for the caller's account. An account never seeded gets
AWS's answer for an account without enough history: `DataUnavailableException`. The last seed of
an account wins. Everything else is moto's own code.

Usage: python moto_server.py -H 127.0.0.1 -p PORT   (the arguments of moto.server)
"""
import json

from moto.ce.responses import CostExplorerResponse
from moto.core.exceptions import JsonRESTError
from moto.moto_api._internal import urls as moto_api_urls

# account id -> {"result": {...}} or {"error": {"code": ..., "message": ...}}
_FORECASTS = {}


def _get_cost_forecast(self):
    seeded = _FORECASTS.get(self.current_account)
    if seeded is None:
        raise JsonRESTError(
            "DataUnavailableException", "Insufficient amount of historical data to generate forecast."
        )
    if "error" in seeded:
        raise JsonRESTError(seeded["error"]["code"], seeded["error"].get("message", ""))
    return json.dumps(seeded["result"])


def _seed_cost_forecast(request, full_url, headers):
    body = json.loads(request.data or b"{}")
    _FORECASTS[body["account_id"]] = {k: v for k, v in body.items() if k in ("result", "error")}
    return 201, {}, ""


CostExplorerResponse.get_cost_forecast = _get_cost_forecast
moto_api_urls.url_paths["{0}/moto-api/static/ce/cost-forecast-results"] = _seed_cost_forecast

if __name__ == "__main__":
    from moto.server import main

    main()
