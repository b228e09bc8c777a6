"""Ledger storage: the `ChainStore` interface and its implementations.

- `base`: `ChainStore`, `ChainWriter` and the plain records they exchange.
- `memory`: the in-memory twin (tests, simulation, benchmarks).
- `tortoise_store`: SQLite or PostgreSQL through a Tortoise connection; `postgres` and `rows`
  hold its PostgreSQL statements and row shapes; `models` the tables (app label `ledger`,
  migrations in `ledger.migrations`); `database` opens and migrates a store outside the app.
- `nodes`: which Merkle nodes an append completes.

The only part of `ledger` that imports the ORM.
"""
