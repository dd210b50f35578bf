"""The HTTP api: Quart on Hypercorn. Handlers parse, authorise, call ``core``, serialise."""
