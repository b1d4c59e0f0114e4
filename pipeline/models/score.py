"""The scoring entry point: SageMaker's four inference functions and a command line around them.

What belongs here: ``model_fn``, ``input_fn``, ``predict_fn`` and ``output_fn`` with the signatures the
SageMaker scikit-learn serving container calls (this module can be its ``entry_point``), the content types
they accept, and ``python -m pipeline.models.score --model-dir DIR --input FEATURES --output SCORES``, which
runs the same four functions on files. Not here: the artifact format (``pipeline.models.artifacts``) and what
each model scores (``pipeline.models.catalog``).

Content types: ``text/csv`` (header row), ``application/json`` (a list of records, or ``{"columns": [...],
"data": [[...]]}``) and ``application/x-parquet`` (also ``application/vnd.apache.parquet``). Floats survive
every format exactly: CSV is read with round-trip precision and written with 17 significant digits.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

import pandas as pd

from pipeline.models import artifacts, catalog

CSV = "text/csv"
JSON = "application/json"
PARQUET = "application/x-parquet"
_ALIASES = {"application/vnd.apache.parquet": PARQUET, "application/parquet": PARQUET}
_SUFFIXES = {".csv": CSV, ".json": JSON, ".parquet": PARQUET, ".pq": PARQUET}


def _content_type(value: str | None) -> str:
    base = (value or CSV).split(";")[0].strip().lower()
    base = _ALIASES.get(base, base)
    if base not in (CSV, JSON, PARQUET):
        raise ValueError(f"unsupported content type {value!r}: use {CSV}, {JSON} or {PARQUET}")
    return base


def model_fn(model_dir: str) -> artifacts.LoadedModel:
    """Load the model in ``model_dir`` (SageMaker: where ``model.tar.gz`` was unpacked), checked.

    Args:
        model_dir: Folder holding ``model.pkl`` and ``manifest.json`` of one model version.

    Returns:
        The loaded model (its name says how ``predict_fn`` scores).

    Raises:
        pipeline.models.artifacts.DigestMismatchError: The model file does not match its manifest.
        pipeline.models.artifacts.LibraryVersionError: Other library versions than the model was saved with.
    """
    return artifacts.load_model_dir(model_dir)


def input_fn(body: bytes | str, content_type: str = CSV) -> pd.DataFrame:
    """Parse a request body into a features frame.

    Args:
        body: The request payload.
        content_type: One of the module's content types (parameters such as ``; charset=utf-8`` ignored).

    Returns:
        One row per customer.

    Raises:
        ValueError: For another content type.
    """
    kind = _content_type(content_type)
    raw = body.encode() if isinstance(body, str) else bytes(body)
    if kind == PARQUET:
        return pd.read_parquet(io.BytesIO(raw))
    if kind == CSV:
        return pd.read_csv(io.BytesIO(raw), float_precision="round_trip")
    document = json.loads(raw)
    if isinstance(document, dict) and "columns" in document:
        return pd.DataFrame(document["data"], columns=document["columns"])
    return pd.DataFrame.from_records(document)


def predict_fn(data: pd.DataFrame, model: artifacts.LoadedModel) -> pd.DataFrame:
    """Score the features with the loaded model (see ``pipeline.models.catalog.score``).

    Args:
        data: Output of :func:`input_fn`.
        model: Output of :func:`model_fn`.

    Returns:
        The rows the model's warehouse table holds for these customers.
    """
    return catalog.score(model, data)


def output_fn(prediction: pd.DataFrame, accept: str = CSV) -> bytes:
    """Serialise the scores in the requested content type.

    Args:
        prediction: Output of :func:`predict_fn`.
        accept: One of the module's content types.

    Returns:
        The response body.
    """
    kind = _content_type(accept)
    if kind == PARQUET:
        buffer = io.BytesIO()
        prediction.to_parquet(buffer, index=False)
        return buffer.getvalue()
    if kind == CSV:
        return prediction.to_csv(index=False, float_format="%.17g").encode()
    # Python's float repr round-trips (pandas' JSON writer keeps at most 15 digits); missing values are null.
    records = prediction.astype(object).where(prediction.notna(), None).to_dict(orient="records")
    return json.dumps(records, default=str, allow_nan=False).encode()


def main(argv: list[str] | None = None) -> int:
    """Score a features file with a model folder; the command line of this module.

    Args:
        argv: Arguments (default ``sys.argv[1:]``).

    Returns:
        The exit status.
    """
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.models.score",
        description="Score customers with a saved model: model_fn, input_fn, predict_fn, output_fn on files.",
    )
    parser.add_argument("--model-dir", required=True, help="Folder with model.pkl and manifest.json.")
    parser.add_argument("--input", required=True, help="Features: .csv, .json or .parquet.")
    parser.add_argument("--output", required=True, help="Scores: .csv, .json or .parquet.")
    args = parser.parse_args(argv)
    source, target = Path(args.input), Path(args.output)
    try:
        input_type = _SUFFIXES[source.suffix.lower()]
        output_type = _SUFFIXES[target.suffix.lower()]
    except KeyError as error:
        parser.error(f"file suffix {error} not one of {sorted(_SUFFIXES)}")
    started = time.perf_counter()
    try:
        model = model_fn(args.model_dir)
    except artifacts.ArtifactError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    loaded = time.perf_counter()
    scores = predict_fn(input_fn(source.read_bytes(), input_type), model)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(output_fn(scores, output_type))
    done = time.perf_counter()
    print(
        json.dumps(
            {
                "model": model.name,
                "version": model.version,
                "rows": len(scores),
                "load_seconds": round(loaded - started, 4),
                "score_seconds": round(done - loaded, 4),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
