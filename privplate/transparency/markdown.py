"""The transparency report as a Markdown page, for a city's website or a council packet."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

from privplate.jurisdiction import format_duration
from privplate.transparency.signed import CHECKPOINT_LINE


def _duration(seconds: int) -> str:
    return format_duration(timedelta(seconds=seconds))


def _table(rows: dict[str, Any], left: str, right: str) -> list[str]:
    if not rows:
        return ["(none)", ""]
    lines = [f"| {left} | {right} |", "| --- | ---: |"]
    lines += [f"| {k} | {v} |" for k, v in rows.items()]
    return [*lines, ""]


def _per_day_table(series: list[dict[str, Any]]) -> list[str]:
    """The per-day readings as one row per UTC day and one column per camera (camera ids are
    lower-case letters, digits, '.', '_' and '-': nothing that breaks a table cell)."""
    if not series:
        return ["(none)", ""]
    cameras = sorted({row["camera_id"] for row in series})
    reads: dict[str, dict[str, int]] = {}
    for row in series:
        reads.setdefault(row["day"], {})[row["camera_id"]] = row["reads"]
    lines = [
        "| day (UTC) | " + " | ".join(cameras) + " |",
        "| --- |" + " ---: |" * len(cameras),
    ]
    lines += [
        f"| {day} | " + " | ".join(str(by_camera.get(c, 0)) for c in cameras) + " |"
        for day, by_camera in reads.items()
    ]
    return [*lines, ""]


def _spot_checks(sc: dict[str, Any]) -> list[str]:
    """Spot checks: drawn, reviewed, how fast and with what verdict, per kind of subject."""

    def hours(h: dict[str, Any]) -> str:
        if h["median"] is None:
            return "-"
        return f"{h['median']} / {h['max']}"

    kinds = {"searches": sc["searches"], "hand-made hotlist entries": sc["hotlist_entries"]}
    lines = [
        "Spot checks: searches and hand-made hotlist entries drawn at random, and every one "
        "near a forbidden term, for a compliance officer's review (counted up to "
        f"{sc['counted_until']}, so that no figure changes within a day):",
        "",
        "| | drawn at random | drawn near a term | reviewed | consistent | needs follow-up "
        "| violation | hours to review (median / max) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, k in kinds.items():
        v = k["verdicts"]
        lines.append(
            f"| {name} | {k['drawn']['random']} | {k['drawn']['near-term']} | {k['reviewed']} "
            f"| {v['consistent']} | {v['needs-follow-up']} | {v['violation']} "
            f"| {hours(k['hours_to_review'])} |"
        )
    return [*lines, ""]


def _approvals(sa: dict[str, Any]) -> str:
    """Searches held for a second person's approval, and how long a decision took."""
    wait = sa["median_seconds_to_decision"]
    took = "-" if wait is None else f"{wait / 3600:.1f} hours"
    return (
        f"- Searches held for a second person's approval: {sa['requested']} filed; "
        f"{sa['approved']} approved, {sa['denied']} denied, {sa['expired']} expired, "
        f"{sa['run']} run (median time to decision: {took})"
    )


def _checkpoint_line(log: dict[str, Any]) -> list[str]:
    """The checkpoint, in the form privplate/transparency/signed.py reads back."""
    if log.get("latest_checkpoint") is None:
        return []
    root = base64.b64encode(bytes.fromhex(log["root"])).decode()
    line = CHECKPOINT_LINE.format(origin=log["origin"], tree_size=log["tree_size"], root=root)
    return [line, ""]


def _witness_lines(witnesses: list[dict[str, Any]]) -> list[str]:
    """Who else checks the log: witnesses on other hosts cosign each checkpoint they verified
    extends the last one they saw."""
    if not witnesses:
        return ["No witness has cosigned this log's checkpoints yet.", ""]
    lines = ["Witnesses that cosigned the log (each checked that it only grew):", ""]
    for w in witnesses:
        state = "" if w["configured"] else " (no longer listed by the deployment)"
        lines.append(
            f"- {w['name']}: up to {w['largest_size_cosigned']} entries, last "
            f"{w['latest_cosignature']}{state}"
        )
    return [*lines, ""]


def render_markdown(report: dict[str, Any]) -> str:
    p, a, r = report["policy"], report["access"], report["reads"]
    s, al = report["searches"], report["alerts"]
    period = report["period"]
    out = [
        "# ALPR transparency report",
        "",
        f"Period: {period['start']} to {period['end']} ({period['days']} days). "
        f"Generated {report['generated_at']} by privplate from its own records.",
        "",
        "## What is kept, and for how long",
        "",
        *[f"- Kept: {item}" for item in report["stored"]],
        *[f"- Never kept: {item}" for item in report["not_stored"]],
        "",
        f"Retention policy: **{p['preset_title']}** ({p['preset']}). {p['preset_summary']}",
        "",
        *[f"- Source: {src}" for src in p["sources"]],
        "",
        "| item | kept for |",
        "| --- | --- |",
        *[
            f"| {kind.replace('_', ' ')} | {_duration(sec)} |"
            for kind, sec in p["windows_seconds"].items()
        ],
        f"| audit log entries | {_duration(p['audit_entries_kept_seconds'])} |",
        "",
        f"Expired data is deleted every {_duration(p['purge_interval_seconds'])}; the keys of "
        "expired epochs are destroyed, so copies and backups of old readings cannot be matched.",
        "",
        "## Who may search, and for what",
        "",
        "A search must give a plate, a purpose and a case number; there is no other search.",
        f"Allowed purposes: {', '.join(p['allowed_purposes']) or '(none)'}.",
        f"Forbidden purposes: {', '.join(p['forbidden_purposes']) or '(none)'}.",
        f"Each investigator may search at most {p['search_rules']['per_investigator_per_day']} "
        f"times a day; the deployment at most {p['search_rules']['per_deployment_per_day']}.",
        "",
        f"People with accounts: {a['people_with_accounts']} ("
        + (", ".join(f"{n} {role}" for role, n in a["people_by_role"].items()) or "none")
        + f"); {a['people_with_more_than_one_account']} of them hold more than one account "
        f"({report['oversight']['second_accounts_created']} such accounts added in the period). "
        "Two-person rules compare people, not accounts.",
        "",
        "Agencies whose people hold accounts:",
        "",
        *[
            f"- {g['agency']}: "
            + ", ".join(f"{n} {role}" for role, n in g["accounts_by_role"].items())
            for g in a["agencies_with_accounts"]
        ],
        "",
        "Sharing agreements in force during the period:",
        "",
        *(
            [
                f"- {g['agency']}"
                + (" (out of state)" if g["out_of_state"] else "")
                + (", signed declaration" if g["declaration_signed"] else "")
                + (", revoked" if g["revoked"] else "")
                + f", until {g['expires_at']}"
                for g in a["sharing_agreements"]
            ]
            or ["- none"]
        ),
        "",
        "## Activity in the period",
        "",
        f"- Cameras in service: {r['active_cameras']}; edge devices: {a['edge_devices']}",
        f"- Plate readings stored: {r['reads_stored']} (of which hotlist hits: "
        f"{r['hit_reads_stored']})",
        f"- Alerts: {al['total']} ({al['via_an_alternate_reading']} from an alternate reading)",
        f"- Searches: {s['total']}; answered {s['answered']} "
        f"({s['answered_with_a_match']} with a match), by {s['people_who_searched']} people",
        f"- Images unsealed: {report['unseal']['released']} of "
        f"{report['unseal']['requested']} requests ({report['unseal']['denied']} denied)",
        _approvals(report["search_approvals"]),
        f"- Legal holds approved: {report['legal_holds']['approved']}",
        f"- Purges: {report['retention']['purge_runs']}, deleting "
        f"{report['retention']['reads_deleted']} reading rows and destroying "
        f"{report['retention']['epoch_keys_destroyed']} epoch keys",
        "",
        "Searches by purpose:",
        "",
        *_table(s["by_purpose"], "purpose", "searches"),
        "Searches refused:",
        "",
        *_table(s["refused"], "reason", "searches"),
        "Searches answered, by agency:",
        "",
        *_table(s["answered_by_agency"], "agency", "searches"),
        *_spot_checks(report["spot_checks"]),
        "Alerts by hotlist:",
        "",
        *_table(al["by_hotlist"], "hotlist", "alerts"),
        "What came of alerts, as reported by the people who acted on them "
        f"({al['did_not_pan_out']} did not pan out: misread, or the list entry was out of date):",
        "",
        *_table(al["outcomes_reported"], "outcome", "alerts"),
        "Readings and alerts by camera:",
        "",
        *_table(
            {
                cam: f"{v['reads']} / {al['by_camera'].get(cam, 0)}"
                for cam, v in r["per_camera"].items()
            },
            "camera",
            "readings / alerts",
        ),
        "Readings per camera per day:",
        "",
        *_per_day_table(r["per_camera_per_day"]),
        "Hotlists:",
        "",
        *[f"- {h['name']} ({h['source']}): {h['entries_now']} entries now" for h in r["hotlists"]],
        "",
        "## Checking this report",
        "",
        f"Built from {report['audit_entries_in_period']} audit log entries of the period, in "
        f"the log's signed checkpoint of {report['audit_log']['tree_size']} entries; any later "
        "signed checkpoint proves, by a consistency proof, that those entries were not changed "
        "since. `privplate report verify FILE --key KEY` checks this page's signature (the key "
        "is at /.well-known/privplate/report-key).",
        "",
        *_witness_lines(report["audit_log"].get("witnesses", [])),
        *_checkpoint_line(report["audit_log"]),
    ]
    return "\n".join(out)
