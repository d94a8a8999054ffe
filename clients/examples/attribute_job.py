import os

import httpx
from interp_client import AuthenticatedClient
from interp_client.api.attribution import attribute
from interp_client.api.jobs import get_job
from interp_client.models import AttributeJob, AttributeRequest, AttributionResult, NextTokenTarget

url = os.environ.get("INTERP_URL", "http://127.0.0.1:8000")
key = os.environ.get("INTERP_API_KEY", "")  # needed when the deployment sets keys; else ignored
client = AuthenticatedClient(base_url=url, token=key, prefix="", auth_header_name="X-API-Key",
                             timeout=httpx.Timeout(60.0))

with client:
    # Why " Paris"? Submit an attribution job (Integrated Gradients, adaptive rule) ...
    request = AttributeRequest(prompt="The capital of France is", target=NextTokenTarget(token=" Paris"))
    job = attribute.sync(client=client, body=request)
    assert isinstance(job, AttributeJob), job  # otherwise a Problem (401, 422, 429, 503, ...)
    # ... then poll it: each call waits up to 20 s on the server for the job to end.
    while job.status not in ("succeeded", "failed", "canceled"):
        polled = get_job.sync(job.id, client=client, wait=20)
        assert isinstance(polled, AttributeJob), polled
        job = polled
    assert job.status == "succeeded", job.error
    result = job.result
    assert isinstance(result, AttributionResult)
    target = result.targets[0]
    print(f"job {job.id}: p({target.token!r}) = {target.probability:.3f}, "
          f"completeness error {target.relative_error:.2%}")
    ranked = sorted(zip(result.inputs, result.attributions[0], strict=True), key=lambda pair: -abs(pair[1]))
    for token, score in ranked[:3]:
        print(f"{token.text!r:>12} {score:+.3f}")
