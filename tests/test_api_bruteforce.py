"""An investigator who tries to enumerate plates is stopped at the quota and flagged."""

from __future__ import annotations

import random
import string
from collections import Counter

from privplate.identity.roles import Role
from tests import factories
from tests.api_support import CAMERA, Api
from tests.test_api_policy import query_body


def test_thousand_plates_stop_at_the_quota_and_raise_a_flag(api: Api) -> None:
    rng = random.Random(7)
    seen = factories.read(api.dep, "5SEEN55", camera_id=CAMERA)
    factories.ingest(api.dep, [seen])
    plates = ["5SEEN55"] + [
        "".join(rng.choices(string.ascii_uppercase + string.digits, k=7)) for _ in range(999)
    ]
    statuses: Counter[int] = Counter()
    found = 0
    for plate in plates:
        answer = api.call(Role.INVESTIGATOR, "POST", "/queries", json=query_body(plate))
        statuses[answer.status_code] += 1
        if answer.status_code == 200:
            found += len(answer.json()["matches"])
    assert statuses == {200: 25, 429: 975}
    assert found == 1  # only the first 25 were looked up at all
    flags = api.call(Role.COMPLIANCE, "GET", "/compliance/flags").json()
    quota_flags = [f for f in flags if f["kind"] == "query-quota"]
    assert len(quota_flags) == 1
    assert quota_flags[0]["subject"] == f"person:{api.names[Role.INVESTIGATOR]}"
    assert quota_flags[0]["occurrences"] == 975
    refused = api.call(Role.AUDITOR, "GET", "/compliance/queries?outcome=refused&limit=1000")
    assert len(refused.json()) == 975
    # A compliance officer closes the flag with a resolution, on the record.
    flag_id = quota_flags[0]["id"]
    closed = api.call(
        Role.COMPLIANCE,
        "POST",
        f"/compliance/flags/{flag_id}/review",
        json={"resolution": "Account suspended pending review."},
    )
    assert closed.status_code == 200 and closed.json()["reviewed_by"] == "user:compliance-1"
    assert api.call(Role.COMPLIANCE, "GET", "/compliance/flags").json() == []
