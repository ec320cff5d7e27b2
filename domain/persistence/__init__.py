"""Persistence: the relational schema, the engine and the SQL unit of work.

``tables`` and ``engine`` sit below every repository; ``unit_of_work`` sits above them all (it
assembles every capability's repository) and is wired in by the composition root only.
"""
