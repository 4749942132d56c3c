#ifndef ROSTER_CSQLITE_OPTIONS_H
#define ROSTER_CSQLITE_OPTIONS_H

struct sqlite3;

/// Keeps `db` from checkpointing the WAL when it is the last connection to close
/// (SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE; sqlite3_db_config is variadic, which Swift cannot call).
/// Returns an SQLite result code.
int roster_sqlite_keep_wal_on_close(struct sqlite3 *db);

#endif
