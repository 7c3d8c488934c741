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
        str | None,
        typer.Option(help="Image, folder, video file, or rtsp:// / http:// URL (one camera)."),
    ] = None,
    camera: Annotated[
        str | None, typer.Option("--camera", help="Registered camera id (privplate cameras add).")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", help="edge.toml naming several cameras, read in this one process."
        ),
    ] = None,
    from_start: Annotated[
        bool,
        typer.Option(
            "--from-start",
            help="Read files and videos from their start, not where the last run stopped.",
        ),
    ] = False,
    display: Annotated[bool, typer.Option(help="Live figures on the terminal.")] = True,
    verbose: Annotated[bool, typer.Option(help="Log progress, not only problems.")] = False,
    home: DirOption = None,
) -> None:
    """Read plates from one source or the cameras of an edge.toml: alerts as JSON lines on
    stdout, reads to the spool and store."""
    from contextlib import ExitStack  # noqa: PLC0415

    from privplate.edge.config import EdgeConfig, load_edge_config  # noqa: PLC0415
    from privplate.edge.display import live_display  # noqa: PLC0415 - needs the edge extra
    from privplate.edge.runtime import build_edge  # noqa: PLC0415
    from privplate.errors import ConfigError  # noqa: PLC0415
    from privplate.vision.factory import build_reader  # noqa: PLC0415

    _logging(verbose)
    if (source is None) == (config is None):
        raise ConfigError("give --source SRC [--camera ID] for one camera, or --config edge.toml")
    if config is not None and camera is not None:
        raise ConfigError("--camera goes with --source; an edge.toml names each source's camera")
    settings = load_settings(home)
    plan = (
        load_edge_config(config) if config is not None else EdgeConfig.single(str(source), camera)
    )
    with ExitStack() as stack:
        edge = build_edge(settings, build_reader(settings), stack, plan, from_start=from_start)
        edge.worker.start()
        try:
            with live_display(
                edge, console=err_console, enabled=display and err_console.is_terminal
            ):
                edge.run()
        finally:
            edge.worker.stop(drain_seconds=10.0)
        shot = edge.snapshot()
        frames = sum(c.frames for c in shot.cameras)
        reads = sum(c.reads for c in shot.cameras)
        alerts = sum(c.alerts for c in shot.cameras)
        if len(shot.cameras) > 1:
            for cam in shot.cameras:
                err_console.print(
                    f"camera {escape(cam.camera_id)}: {cam.frames} frames "
                    f"({cam.frames_skipped_motion} skipped, no motion), {cam.reads} reads",
                    soft_wrap=True,
                )
        for lane in edge.lanes:
            if lane.finished_before:
                err_console.print(
                    f"camera {escape(lane.camera_id)}: {escape(lane.source.name)} was read to "
                    "its end by an earlier run (--from-start reads it again)",
                    soft_wrap=True,
                )
        alert_word = f"{alerts} alert{'s' if alerts != 1 else ''}"
        err_console.print(
            f"{frames} frames, {reads} reads, {alert_word}; "
            f"{edge.spool.depth()} reads waiting in the spool ({escape(edge.mode)})",
            soft_wrap=True,
        )
        if alerts and edge.mode == "single-box":
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


@app.command("enrol")
def enrol_command(
    server: Annotated[str, typer.Option(help="The server's URL, e.g. https://lpr.example.org.")],
    code: Annotated[
        str, typer.Option(help="The one-time code from `privplate devices enrol-code`.")
    ],
    device_id: Annotated[
        str | None,
        typer.Option(help="This device's id on the server (default: edge- and the host name)."),
    ] = None,
    name: Annotated[str, typer.Option(help="Human-readable name (if the code has none).")] = "",
    server_key: Annotated[
        str | None,
        typer.Option(help="The server key `devices enrol-code` printed: refuse any other."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace this box's existing device key.")
    ] = False,
    home: DirOption = None,
) -> None:
    """Enrol this edge with a one-time code: make the device key here (it never leaves this
    box), register it, and keep the server's key and this device's cameras for `edge run`."""
    from privplate.edge.enrolment import default_device_id, enrol  # noqa: PLC0415

    settings = load_settings(home)
    enrolled = enrol(
        settings,
        server_url=server,
        code=code,
        device_id=device_id or default_device_id(),
        name=name,
        server_key=server_key,
        force=force,
    )
    console.print(
        f"device [bold]{escape(enrolled.device_id)}[/] enrolled at {escape(enrolled.server_url)} "
        f"for {', '.join(enrolled.cameras)}"
    )
    console.print(f"server key pinned: {escape(enrolled.server_key)}", soft_wrap=True)
    console.print(f"kept in {enrolled.path}; the device key in {settings.edge.device_key_file}")
    configured = load_settings(home).edge.server_url.rstrip("/")
    if configured != enrolled.server_url:
        err_console.print(
            f"warning: edge.server_url is set to {escape(configured) or 'nothing'} in "
            "privplate.toml or a PRIVPLATE_* variable, which wins over the enrolment; remove it",
            soft_wrap=True,
        )
    console.print(
        f"next: privplate edge run --source SRC --camera {enrolled.cameras[0]}", soft_wrap=True
    )
