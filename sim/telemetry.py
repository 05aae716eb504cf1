"""Typed telemetry: the schema of every stream, a columnar writer, and sinks.

The simulator emits five streams, each with a fixed Arrow schema (units in the names):

``metrics``
    CloudWatch-like, one row per simulated minute per node pool.
``capacity``
    One row per minute per pool and AZ: nodes by state, the price in force, whether
    spot capacity can be had.
``events``
    Cluster events: launch requested / failed, ready, serving, interruption notice,
    drain, terminated, failed.
``billing``
    Line items as in the AWS Cost and Usage Report: one per node per clock hour.
``audit``
    CloudTrail-shaped records of the cluster's account (scenarios with an ``audit:``
    section; empty otherwise). Their labels are never in telemetry (``audit_labels.csv``).

Rows are buffered per stream in columns and handed to a :class:`TelemetrySink` as
Arrow record batches every ``batch_rows`` rows (micro-batches, never a dump at the end).
The writer also keeps a SHA-256 over every row it emits, column by column and
independent of batch boundaries, so two runs can be compared by one hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

TS = pa.timestamp("s")

SCHEMAS: Mapping[str, pa.Schema] = {
    "metrics": pa.schema(
        [
            ("timestamp", TS),
            ("sim_time_s", pa.float64()),
            ("pool", pa.string()),
            ("request_rate_rps", pa.float64()),
            ("served_rps", pa.float64()),
            ("dropped_requests", pa.float64()),
            ("error_rate", pa.float64()),
            ("cpu_utilization", pa.float64()),
            ("memory_utilization", pa.float64()),
            ("network_bytes_per_s", pa.float64()),
            ("response_time_p50_ms", pa.float64()),
            ("response_time_p95_ms", pa.float64()),
            ("queue_depth", pa.float64()),
            ("pod_count", pa.float64()),
            ("node_count", pa.int32()),
            ("node_count_on_demand", pa.int32()),
            ("node_count_spot", pa.int32()),
        ]
    ),
    "capacity": pa.schema(
        [
            ("timestamp", TS),
            ("sim_time_s", pa.float64()),
            ("pool", pa.string()),
            ("az", pa.string()),
            ("capacity_type", pa.string()),
            ("instance_type", pa.string()),
            ("nodes_pending", pa.int32()),
            ("nodes_running", pa.int32()),
            ("nodes_draining", pa.int32()),
            ("price_usd_per_hour", pa.float64()),
            ("on_demand_usd_per_hour", pa.float64()),
            ("spot_available", pa.bool_()),
        ]
    ),
    "events": pa.schema(
        [
            ("timestamp", TS),
            ("sim_time_s", pa.float64()),
            ("node_id", pa.string()),
            ("pool", pa.string()),
            ("az", pa.string()),
            ("capacity_type", pa.string()),
            ("instance_type", pa.string()),
            ("event", pa.string()),
            ("reason", pa.string()),
        ]
    ),
    "billing": pa.schema(
        [
            ("node_id", pa.string()),
            ("pool", pa.string()),
            ("az", pa.string()),
            ("capacity_type", pa.string()),
            ("instance_type", pa.string()),
            ("period_start", TS),
            ("period_end", TS),
            ("usage_s", pa.float64()),
            ("billed_s", pa.float64()),
            ("cost_usd", pa.float64()),
        ]
    ),
    "audit": pa.schema(
        [
            ("eventTime", TS),
            ("eventID", pa.string()),
            ("eventSource", pa.string()),
            ("eventName", pa.string()),
            ("awsRegion", pa.string()),
            ("sourceIPAddress", pa.string()),
            ("userAgent", pa.string()),
            ("principal_arn", pa.string()),
            ("errorCode", pa.string()),
            ("readOnly", pa.bool_()),
            ("record_json", pa.string()),
        ]
    ),
}

STREAMS: tuple[str, ...] = tuple(SCHEMAS)

EVENT_KINDS = (
    "launch_requested",
    "launch_failed",
    "ready",
    "serving",
    "interruption_notice",
    "drain",
    "terminated",
    "failed",
    "anomaly_alert",  # a metric watcher's alert (only in replays that run one)
    "security_alert",  # an audit watcher's alert (only in replays with audit events)
)


class TelemetrySink(Protocol):
    """Where telemetry batches go: memory, a Parquet directory, a feature store.

    A sink may also define ``checkpoint(until: datetime | None)``: the writer calls it
    at each micro-batch boundary, once every stream's rows up to ``until`` (the
    replay's wall clock) have been written (see :meth:`TelemetryWriter.checkpoint`).
    """

    def write(self, stream: str, batch: pa.RecordBatch) -> None:
        """Receive one micro-batch of ``stream``."""

    def close(self) -> None:
        """No more batches will come."""


class MemorySink:
    """Keeps every batch in memory (tests, in-process benchmarks)."""

    def __init__(self) -> None:
        self.batches: dict[str, list[pa.RecordBatch]] = {s: [] for s in STREAMS}

    def write(self, stream: str, batch: pa.RecordBatch) -> None:
        self.batches[stream].append(batch)

    def close(self) -> None:
        return None

    def table(self, stream: str) -> pa.Table:
        """All rows of ``stream`` as one Arrow table."""
        return pa.Table.from_batches(self.batches[stream], schema=SCHEMAS[stream])


class ParquetSink:
    """Writes ``<dir>/<stream>.parquet``, one row group per micro-batch."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._writers: dict[str, pq.ParquetWriter] = {}

    def write(self, stream: str, batch: pa.RecordBatch) -> None:
        writer = self._writers.get(stream)
        if writer is None:
            writer = pq.ParquetWriter(self.directory / f"{stream}.parquet", SCHEMAS[stream])
            self._writers[stream] = writer
        writer.write_batch(batch)

    def close(self) -> None:
        for stream in STREAMS:
            if stream not in self._writers:  # every stream has a file, even when empty
                pq.write_table(SCHEMAS[stream].empty_table(), self.directory / f"{stream}.parquet")
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()


class FanoutSink:
    """Hands every batch to several sinks, in order."""

    def __init__(self, *sinks: TelemetrySink) -> None:
        self.sinks = sinks

    def write(self, stream: str, batch: pa.RecordBatch) -> None:
        for sink in self.sinks:
            sink.write(stream, batch)

    def checkpoint(self, until: datetime | None = None) -> None:
        for sink in self.sinks:
            checkpoint = getattr(sink, "checkpoint", None)
            if checkpoint is not None:
                checkpoint(until)

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()


class _ColumnHasher:
    """SHA-256 per column, fed batch by batch; the digest ignores batch boundaries.

    Numbers are hashed as little-endian bytes (timestamps as int64 seconds); strings as
    their UTF-8 bytes plus, separately, their lengths, so that the digest depends only on
    the sequence of values.
    """

    def __init__(self, schema: pa.Schema) -> None:
        self.hashers = {name: (hashlib.sha256(), hashlib.sha256()) for name in schema.names}

    def update(self, batch: pa.RecordBatch) -> None:
        for name, column in zip(batch.schema.names, batch.columns, strict=True):
            values_hash, lengths_hash = self.hashers[name]
            if pa.types.is_string(column.type):
                _, offsets, data = column.buffers()
                offs = np.frombuffer(offsets, dtype=np.int32)[
                    column.offset : column.offset + len(column) + 1
                ]
                lengths_hash.update(np.diff(offs).astype("<i4").tobytes())
                if data is not None:
                    values_hash.update(memoryview(data)[offs[0] : offs[-1]])
            else:
                values = column.to_numpy(zero_copy_only=False)
                if values.dtype.kind == "M":
                    values = values.astype("datetime64[s]").astype(np.int64)
                values_hash.update(
                    np.ascontiguousarray(values.astype(values.dtype.newbyteorder("<"))).tobytes()
                )

    def digest(self) -> bytes:
        outer = hashlib.sha256()
        for name, (values_hash, lengths_hash) in self.hashers.items():
            outer.update(name.encode() + b"=" + values_hash.digest() + lengths_hash.digest())
        return outer.digest()


class TelemetryWriter:
    """Buffers rows per stream; flushes micro-batches to a sink.

    Rows are tuples in the stream's schema order. Hot loops append to
    :meth:`buffer` directly and call :meth:`maybe_flush` afterwards.

    Parameters
    ----------
    sink
        Receives each batch as it fills.
    batch_rows
        Rows per micro-batch and stream.
    """

    def __init__(self, sink: TelemetrySink, *, batch_rows: int = 50_000) -> None:
        self.sink = sink
        self.batch_rows = batch_rows
        self._rows: dict[str, list[tuple[Any, ...]]] = {s: [] for s in STREAMS}
        self._hashers = {s: _ColumnHasher(SCHEMAS[s]) for s in STREAMS}
        self.rows: dict[str, int] = dict.fromkeys(STREAMS, 0)

    def buffer(self, stream: str) -> list[tuple[Any, ...]]:
        """The list that ``stream``'s rows are appended to (tuples in schema order)."""
        return self._rows[stream]

    def append(self, stream: str, row: tuple[Any, ...]) -> None:
        """Add one row (a tuple in schema order)."""
        rows = self._rows[stream]
        rows.append(row)
        if len(rows) >= self.batch_rows:
            self.flush(stream)

    def maybe_flush(self, stream: str) -> None:
        """Flush ``stream`` if its buffer holds a full batch."""
        if len(self._rows[stream]) >= self.batch_rows:
            self.flush(stream)

    def flush(self, stream: str) -> None:
        """Send whatever ``stream`` has buffered as one batch."""
        rows = self._rows[stream]
        if not rows:
            return
        schema = SCHEMAS[stream]
        columns = list(zip(*rows, strict=True))
        arrays = [pa.array(col, type=f.type) for col, f in zip(columns, schema, strict=True)]
        batch = pa.RecordBatch.from_arrays(arrays, schema=schema)
        self._hashers[stream].update(batch)
        self.rows[stream] += batch.num_rows
        rows.clear()
        self.sink.write(stream, batch)

    def checkpoint(self, until: datetime) -> None:
        """Flush every stream (a micro-batch boundary: every row up to ``until`` has been
        appended) and tell the sink, if it cares."""
        for stream in STREAMS:
            self.flush(stream)
        checkpoint = getattr(self.sink, "checkpoint", None)
        if checkpoint is not None:
            checkpoint(until)

    def close(self) -> None:
        """Flush every stream and close the sink."""
        for stream in STREAMS:
            self.flush(stream)
        self.sink.close()

    def sha256(self) -> str:
        """Hex SHA-256 over every row emitted so far, all streams, in schema order."""
        outer = hashlib.sha256()
        for stream in STREAMS:
            outer.update(stream.encode() + b"=" + self._hashers[stream].digest())
        return outer.hexdigest()
