"""protocol: the wire contract in Python, checked against protocol/schema.json by the tests.

Owns: the parameter classes and their converter (params), the grades (grades). Imports nothing
of the bridge: rpc structures with it, tracking handles what it structured.
"""
