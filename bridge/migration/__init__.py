"""migration: the older TypeScript plugin's lmdb-js databases, imported additively and idempotently.

Owns: finding old databases and moving one aside (importer, the entry points), reading and
mapping their records (records), what a migration did (results). Reads files with bridge.lmdbjs;
writes through store. May import store, config, timestamps, lmdbjs, protocol's grades and
tracking's pure git_commands (hashes_match: a commit already recorded by short hash) and stack (the
bounded reader that classifies a project folder the old records name); nothing else.
"""
