"""``xebench drift``: feature drift between two sets of files, or of a model's stored events.

Example (bad usage: exit code 2 and the reason on one line of stderr, here
``error: MESSAGE``):
    >>> from xebench.cli.main import main
    >>> main(["drift", "--reference", "ref.csv"])
    2
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from .app import Fail, JsonOut, file_progress, write_text
from .monitor import Cohort, End, MonitorConfigFile, MonitorDb, Start, Tenant, Window, open_monitor

__all__ = ["drift"]


def _drift_offline(
    reference: Sequence[Path],
    current: Sequence[Path],
    **options: Any,
) -> Any:
    """``drift_files`` on the given files, with a progress bar for big inputs."""
    from ..offline.drift import drift_files

    on_chunk, progress = file_progress([*reference, *current])
    if progress is None:
        return drift_files(list(reference), list(current), progress=on_chunk, **options)
    with progress:
        return drift_files(list(reference), list(current), progress=on_chunk, **options)


def drift(
    reference: Annotated[
        list[str] | None,
        typer.Option(
            "--reference",
            metavar="FILE|SPEC",
            help="Offline: reference data (the baseline the bins are fixed from), CSV, Parquet "
            "or JSON Lines; repeat for several files. With --model: rolling (the previous "
            "window, the default), version:V, range:FROM/TO, uploaded (PUT "
            "/v1/references/MODEL) or file:PATH.",
        ),
    ] = None,
    current: Annotated[
        list[Path] | None,
        typer.Option(
            "--current",
            metavar="FILE",
            help="Offline: current data compared with the reference; repeat for several files.",
        ),
    ] = None,
    feature: Annotated[
        list[str] | None,
        typer.Option(
            "--feature",
            metavar="COL",
            help="Compare this column (repeat). Default: every column in all files of both sides.",
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option("--model", help="Drift of this model's events in the event database."),
    ] = None,
    db: MonitorDb = None,
    version: Annotated[
        str | None, typer.Option("--version", help="With --model: one version.")
    ] = None,
    cohort: Cohort = None,
    window: Window = None,
    start: Start = None,
    end: End = None,
    tenant: Tenant = "default",
    config: MonitorConfigFile = None,
    bins: Annotated[
        int | None,
        typer.Option("--bins", help="Offline: quantile bins of a numeric feature (10)."),
    ] = None,
    top_k: Annotated[
        int | None,
        typer.Option(
            "--top-k",
            help="Offline: categories of a categorical feature, the most frequent reference "
            "values; the rest count as __other__ (20).",
        ),
    ] = None,
    min_samples: Annotated[
        int | None,
        typer.Option(
            "--min-samples",
            help="Fewer values than this on either side: verdict 'insufficient', no alarm (500).",
        ),
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option(
            "--threshold",
            help="Jensen-Shannon divergence (nats) at or above which a feature has drifted "
            "(0.01 = Evidently's JS distance 0.1, squared).",
        ),
    ] = None,
    smoothing: Annotated[
        float | None,
        typer.Option("--smoothing", help="Offline: added to every bin share for KL and PSI."),
    ] = None,
    json_path: JsonOut = None,
    html_path: Annotated[
        Path | None, typer.Option("--html", help="Write a self-contained HTML report here.")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="Print no table.")] = False,
) -> None:
    """Feature drift: KL, JS and PSI per feature, drifted first.

    Offline, between two sets of files: --reference FILE... --current FILE....
    Bins are fixed from the reference (quantiles for numbers, the most
    frequent values for categories, plus out-of-range / NaN / other / missing
    bins).

    In production, with --model: the window of the model's events in the
    event database (--db or the --config's) against a reference (--reference
    rolling, version:V, range:FROM/TO, uploaded or file:PATH; default: the
    model's configured reference, else rolling), for its features, score and labels,
    from the monitoring buckets, as GET /v1/drift answers.

    The exit code is 0 whether or not drift is found (read the verdicts, or
    "drifted" in --json); 2 on bad usage or bad input.
    """
    if model is not None:
        offline_only = {
            "--current": current,
            "--feature": feature,
            "--bins": bins,
            "--top-k": top_k,
            "--smoothing": smoothing,
        }
        given = [name for name, value in offline_only.items() if value]
        if given:
            raise Fail(
                f"{', '.join(given)} compare files offline; with --model the bins and "
                "features are the monitoring ones"
            )
        if reference is not None and len(reference) > 1:
            raise Fail(
                "with --model, give one --reference (rolling, version:V, range:A/B, uploaded, "
                "file:P)"
            )
        document = _drift_of_model(
            model,
            db=db,
            config=config,
            tenant=tenant,
            reference=reference[0] if reference else None,
            version=version,
            cohort=cohort,
            window=window,
            start=start,
            end=end,
            min_samples=min_samples,
            threshold=threshold,
        )
    else:
        store_only = {
            "--db": db,
            "--config": config,
            "--version": version,
            "--cohort": cohort,
            "--window": window,
            "--from": start,
            "--to": end,
        }
        given = [name for name, value in store_only.items() if value]
        if given:
            verb = "needs" if len(given) == 1 else "need"
            raise Fail(f"{', '.join(given)} {verb} --model (drift of a model's stored events)")
        from ..offline import drift as offline

        document = _drift_of_files(
            [Path(r) for r in reference or []],
            current or [],
            features=feature or None,
            n_bins=offline.DEFAULT_BINS if bins is None else bins,
            top_k=offline.DEFAULT_TOP_K if top_k is None else top_k,
            min_samples=offline.DEFAULT_MIN_SAMPLES if min_samples is None else min_samples,
            threshold=offline.DEFAULT_THRESHOLD if threshold is None else threshold,
            smoothing=offline.DEFAULT_SMOOTHING if smoothing is None else smoothing,
        )
    if json_path is not None:
        write_text(json_path, json.dumps(document, indent=2, allow_nan=False) + "\n")
    if html_path is not None:
        from ..report.drift import render_drift_html

        write_text(html_path, render_drift_html(document))
    if not quiet:
        from ..report.console import print_drift

        print_drift(document)


def _drift_of_files(reference: list[Path], current: list[Path], **options: Any) -> dict[str, Any]:
    """The offline drift document of two sets of files."""
    if not reference and not current:
        raise Fail(
            "give the data to compare: --reference FILE... --current FILE..., "
            "or --model M for a model's stored events"
        )
    if not reference or not current:
        missing = "--reference" if not reference else "--current"
        raise Fail(f"{missing} FILE is needed too: drift compares reference with current data")
    return _drift_offline(reference, current, **options).to_dict()


def _drift_of_model(
    model: str, *, db: Path | None, config: Path | None, tenant: str, **options: Any
) -> dict[str, Any]:
    """The drift document of a model's window in the event database."""
    from contextlib import ExitStack

    with ExitStack() as stack:
        from ..monitor.scope import Scope

        monitor = open_monitor(db, config, stack, tenant, model)
        scope = {
            name: options.pop(name) for name in ("version", "cohort", "window", "start", "end")
        }
        return monitor.drift(Scope(tenant, model, **scope), **options).to_dict()
