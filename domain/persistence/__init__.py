"""Persistence below the capabilities: the relational schema (``tables``), the engine
(``engine``) and the helpers every repository shares (``sql``). The SQL unit of work that
assembles every capability's repository is ``domain.database``, at the top."""
