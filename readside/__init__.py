"""The read side: everything that reads the `audit` topic to answer questions, never to decide.

- `history`: the history store (SQLite or PostgreSQL) that the gateway, the CLI and the Bridge query;
- `analytics`: DORA figures, evaluation trends and what-if scoring over that history.
"""
