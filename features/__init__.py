"""The feature store between the simulator and the agents (DuckDB + a Parquet lake)."""

from pathlib import Path

#: Where the CLI keeps the feature store unless ``--store`` says otherwise.
DEFAULT_STORE = Path(".opsbench") / "store.duckdb"
