"""team: many people's (or machines') histories side by side, as Parquet, and one report over them.

Owns: the versioned Parquet schema (schema: every table's columns, types and meanings; docs/schema.md
is written from it), reading one database into attributed rows (facts), writing the month-partitioned
datasets (parquet_out), reading and checking datasets (datasets), the merge of an export into the
local database (importer: Parquet or the JSONL export, additive and idempotent), the one function
that runs SQL on DuckDB (engine), the per-person sufficient statistics in SQL (stats) and the team
report (report, ranking, render).

May import: store, config, timestamps, output_files, wording, tracking's pure rules and report
(its attribution, score formula, rows and ranking, so a setup is scored by one rule everywhere).
Never imports rpc, cli, migration or opencode; nothing but cli imports team. pyarrow and DuckDB are
the optional extra ``agent-tracker[team]``: imported only inside functions, through
extra.require, so the base install and the bridge never load them.
"""
