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
    with err_console.status("evaluating") as status:
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


@app.command("run")
def run_command(
    source: Annotated[
        str, typer.Option(help="Image, folder, video file, or rtsp:// / http:// URL.")
    ],
    camera: Annotated[
        str | None, typer.Option("--camera", help="Registered camera id (privplate cameras add).")
    ] = None,
    display: Annotated[bool, typer.Option(help="Live figures on the terminal.")] = True,
    verbose: Annotated[bool, typer.Option(help="Log progress, not only problems.")] = False,
    home: DirOption = None,
) -> None:
    """Read plates from a source: alerts as JSON lines on stdout, reads to the spool and store."""
    import threading  # noqa: PLC0415
    from contextlib import ExitStack  # noqa: PLC0415

    from privplate.edge.display import live_display  # noqa: PLC0415 - needs the edge extra
    from privplate.edge.runtime import build_edge  # noqa: PLC0415
    from privplate.edge.sources import open_source  # noqa: PLC0415
    from privplate.vision.factory import build_reader  # noqa: PLC0415

    _logging(verbose)
    settings = load_settings(home)
    frames = open_source(source)
    with ExitStack() as stack:
        edge = build_edge(settings, build_reader(settings), stack, camera_id=camera)
        edge.worker.start()
        stop = threading.Event()
        try:
            with live_display(
                edge, frames, console=err_console, enabled=display and err_console.is_terminal
            ):
                edge.pipeline.run(frames, max_fps=settings.edge.max_fps, stop=stop)
        except KeyboardInterrupt:
            stop.set()
            edge.pipeline.finish()
        finally:
            edge.worker.stop(drain_seconds=10.0)
        stats = edge.pipeline.stats
        alerts = f"{stats.alerts} alert{'s' if stats.alerts != 1 else ''}"
        err_console.print(
            f"{stats.frames} frames, {stats.reads} reads, {alerts}; "
            f"{edge.spool.depth()} reads waiting in the spool ({edge.mode})",
            soft_wrap=True,
        )
        if stats.alerts and edge.mode == "single-box":
            err_console.print(
                "alerts are recorded on this box: `privplate alerts list` shows them",
                soft_wrap=True,
            )


@app.command("keygen")
def keygen_command(
    device_id: Annotated[str, typer.Option(help="This device's id on the server.")],
    home: DirOption = None,
) -> None:
    """Create this edge device's signing key; prints the public key to register on the server."""
    from privplate.edge.runtime import write_device_key  # noqa: PLC0415

    settings = load_settings(home)
    key = write_device_key(settings.path(settings.edge.device_key_file), device_id)
    console.print(f"device {device_id}: public key {key.public_key.hex()}")
    console.print("register it on the server (POST /devices), then set edge.server_url")


@app.command("spool")
def spool_command(
    retry: Annotated[
        bool, typer.Option("--retry", help="Queue the batches the server refused again.")
    ] = False,
    home: DirOption = None,
) -> None:
    """Show what waits in the edge spool; optionally send refused batches again."""
    from privplate.edge.spool import Spool  # noqa: PLC0415

    settings = load_settings(home)
    spool = Spool(settings.path(settings.edge.spool_file))
    try:
        if retry:
            console.print(f"{spool.retry_set_aside()} refused batches queued again")
        batches, reads = spool.set_aside_count()
        console.print(f"{spool.depth()} reads waiting; {reads} reads in {batches} refused batches")
    finally:
        spool.close()
