"""`privplate edge`: read plates at the edge (run) and measure how well (eval)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from privplate.cli.app import DirOption, console, err_console, make_app
from privplate.settings import load_settings

app = make_app("The edge: read plates from cameras, files and videos; evaluate accuracy.")


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@app.command("eval")
def eval_command(
    images: Annotated[Path, typer.Option(help="Folder the label file names are relative to.")],
    labels: Annotated[Path, typer.Option(help="CSV with filename,plate[,region,x,y,w,h].")],
    as_json: Annotated[
        bool, typer.Option("--json", help="End with one JSON line of figures.")
    ] = False,
    prior: Annotated[
        str,
        typer.Option(
            help="Format prior: 'region' (the prior named like each row's region, if any), "
            "'none', or a prior name."
        ),
    ] = "region",
    ablations: Annotated[
        bool, typer.Option(help="Also measure each improvement on and off.")
    ] = False,
    decoys: Annotated[
        int, typer.Option(min=0, help="Random plates on the false-alert hotlist.")
    ] = 10_000,
    home: DirOption = None,
) -> None:
    """Report detection recall, exact plates, character error rate and hotlist recall."""
    from privplate.edge.eval_variants import build_variants  # noqa: PLC0415 - needs the edge extra
    from privplate.edge.evaluation import evaluate  # noqa: PLC0415
    from privplate.edge.labels import load_labels  # noqa: PLC0415
    from privplate.vision.factory import build_reader, load_format_prior  # noqa: PLC0415
    from privplate.vision.models import registry_dir  # noqa: PLC0415

    _logging(verbose=False)
    settings = load_settings(home)
    items = load_labels(labels, images)
    reader = build_reader(settings)
    known = {p.stem for p in (registry_dir() / "priors").glob("*.toml")}

    def prior_for(region: str):  # type: ignore[no-untyped-def]
        if prior == "none":
            return None
        if prior == "region":
            return load_format_prior(region) if region in known else None
        return load_format_prior(prior)

    variants = build_variants(
        reader, settings.edge.detector_confidence, prior_for, ablations=ablations
    )
    with console.status("evaluating") as status:
        outcomes, timings = evaluate(
            items,
            reader.detector.detect,
            variants,
            decoy_count=decoys,
            progress=lambda n: status.update(f"evaluating: {n}/{len(items)} images"),
        )
    report = outcomes[0].report()
    frames = max(timings["frames"], 1.0)
    report["detector"] = settings.edge.detector
    report["recognizer"] = settings.edge.recognizer
    report["ms_per_frame"] = round(
        1000 * (timings["detect_seconds"] + timings["read_seconds"]) / frames, 1
    )
    if ablations:
        report["ablations"] = {
            v.name: {
                k: o.report()[k]
                for k in ("exact_accuracy", "detection_recall", "char_error_rate", "per_region")
            }
            for v, o in zip(variants, outcomes, strict=True)
        }
        for entry in report["ablations"].values():
            entry["per_region"] = {k: r["exact_accuracy"] for k, r in entry["per_region"].items()}
    _print_summary(report)
    if as_json:
        print(json.dumps(report, sort_keys=True))  # noqa: T201 - the machine-readable last line


def _print_summary(report: dict[str, object]) -> None:
    out = err_console
    out.print(
        f"images {report['images']}  exact {report['exact_accuracy']:.1%}  "
        f"detected {report['detection_recall']:.1%}  CER {report['char_error_rate']:.3f}  "
        f"hotlist recall best {report['hotlist_recall_best']:.1%} / with alternates "
        f"{report['hotlist_recall_alternates']:.1%}  "
        f"false alerts {report['false_alert_rate']:.4%}  "
        f"{report['ms_per_frame']} ms/frame"
    )
    regions = report.get("per_region")
    if isinstance(regions, dict):
        for name, figures in regions.items():
            out.print(
                f"  {name}: {figures['images']} images, exact {figures['exact_accuracy']:.1%}"
            )
    ablation = report.get("ablations")
    if isinstance(ablation, dict):
        for name, figures in ablation.items():
            out.print(
                f"  {escape(name)}: exact {figures['exact_accuracy']:.1%}, per region "
                f"{escape(str(figures['per_region']))}"
            )
