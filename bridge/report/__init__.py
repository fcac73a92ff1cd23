"""report: which setup (agent, provider/model, project stack) works best, read from the central database.

Owns: aggregation, scoring, ranking, recommendations, the timeline, and every way the answer
leaves the program (rich/text tables, the chart, export). May import: store, config, timestamps,
tracking's pure rules (scoring, stack, project_root, git_commands, setups, usage_totals, configs), and
summaries.read (build answers from the per-session summaries when it can). Never imports rpc, cli or migration.
Modules: build (the entry point), attribution (who a record counts for, and the
accumulators), collect + decode (the scan), usage (what model calls cost), bugs (reported and
reverted), outcomes (abandoned sessions, subagents), helper (a forked counter), score + rank (the
rules), model (rows and wire form), filters, recommend (one project folder: exact stack, then
language, then all projects), timeline, render (terminal tables that fit), chart, html (the
self-contained page), export, spending + spending_render + periods (`agent-tracker usage`: spend
per day, week, month or session in a time zone, each message under the model that produced it), versions (an agent's configuration versions: `configs`).

A *setup* is the OpenCode agent, the provider/model it ran on, the stack of the project
(language/framework, bridge.tracking.stack) and the agent's configuration version (its whole
definition, bridge.tracking.configs; ``unknown`` before one was recorded; merged with
``--by agent-model``). Every session, commit, grade and bug in the database is
attributed to one setup (rules below), aggregated, scored and ranked within its stack.

Attribution
  * a session counts once for every setup it used (``setups[]``, normally one; its XP and tool
    calls are split evenly between them); a session without agent information counts for ``unknown``;
  * a subagent's session (``parentID``) counts for its root session's setup (attribution.Scope.root_session,
    the one place of that rule), never as a session of its own; so do its commits, grades and bugs;
  * a session's usage (cost, tokens, time of its model calls) counts for the setup of each message;
    a subagent's session's for its root session's setup (usage.add_usage);
  * a commit counts for the agent, provider/model and configuration version recorded with it;
    a session for its agent's version (``configVersions``), its usage entries likewise;
  * a grade counts for the agent and provider/model recorded with it (the agent is the one who
    made the commit); a grade stored without a model (graded outside the commit's session, or
    migrated) takes the commit's, then the session's;
  * a bug counts for the setup of the commit it names, else of the session it was reported in
    (the reported agent's entry in that session); a bug naming neither is *unattributed*; a
    reverted commit is recorded as a bug naming it;
  * the stack is the project's ``projects`` record, else the project folder classified now if
    it exists, else ``unknown``.

Score (0-100, see score.SCORE_HELP) and ranking rules are documented in docs/README-report.md.

Speed: report and recommend read the summaries (bridge.summaries: rows per setup identity and
day, kept in the flush transaction), not the events, whenever the database has them and the time
filters are whole days. The scan below stays for the rest (and for `doctor --summaries`):
one pass per sub-database over the raw values, in one read transaction. Commits and
grades are grouped in C (``Counter(map(itemgetter(...), map(orjson.loads, values)))``, or with
msgspec, when installed, frozen structs of just the needed fields as the group keys); a record
that lacks a field (e.g. a migrated one) is handled on its own and the scan resumes after it;
activities are decoded only when their bytes mention ``"bug"``. bench/bench_report.py measures it.
"""
