"""opencode: what the bridge knows of OpenCode's own files: installing the plugin into its config.

May import config. Never imports rpc, tracking or report.
"""
