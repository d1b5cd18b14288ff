"""The domain layer: rules as verb_noun(actor, target, ...) functions that flush, never commit.

Writes decide in SQL: decide with compare-and-set in the statement, never from a value
read earlier. Under concurrency (PostgreSQL's READ COMMITTED, or SQLite where the reads
of a request come before it becomes the writer) a value read a moment ago may already be
stale when the write lands, so the statement itself carries the condition and says what
it did:

- counters move with `SET n = n + 1`, never `n = <read value> + 1` (votes, comments);
- a state change names the state it leaves in its WHERE and checks the row count
  (`roadmap.change_status`, `ideas.update_idea`'s version, a reset token's `used_at`);
- a uniqueness is the database's: `INSERT … ON CONFLICT DO NOTHING` and a look at what
  came back (votes, `accounts.register_user`), never "SELECT, then INSERT if absent";
- a double submit is found by the UPDATE that records the post (`ideas.create_idea`).

A check made before the write (a friendly message for the common case) is fine, as long
as the write does not rely on it.
"""
