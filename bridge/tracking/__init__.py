"""tracking: events in, points and records out, buffered and flushed in one LMDB transaction.

Owns: the tracking service (service), the write buffer (pending), the scoring rules (scoring),
the crash journal (journal), recognising git commits, reverts and pushes in bash calls
(git_commands), what later commits say about earlier ones: fix-ups and reverts (outcomes),
what model calls cost (usage, usage_totals), an agent's configuration versions (configs:
canonical form, hash, diff, the ``configs`` records; ``agent.configured`` is handled in sessions), classifying a project's stack (stack), the project folder a subfolder belongs to (project_root) and fault
injection for the reliability suite (faults).
May import protocol, store, config, timestamps. Never imports rpc, report, cli or migration.
"""
