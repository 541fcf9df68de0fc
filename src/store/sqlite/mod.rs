//! [`SqliteStore`]: the default store, one SQLite file (feature `sqlite`).

mod api_token;
mod audit;
mod connections;
mod consent;
mod migrate;
mod oauth;
mod outbox;
mod pool;
mod ratelimit;
mod records;
mod sync_state;
mod util;
mod vault;
mod webhook;
mod worker;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::error::{Error, Result};
use pool::{Jobs, Queue};
use worker::Reply;

/// How hard SQLite works to make each commit durable.
///
/// ```
/// use consentry::store::{SqliteOptions, Synchronous};
/// let opts = SqliteOptions::default().synchronous(Synchronous::Full);
/// assert_eq!(opts.synchronous_mode(), Synchronous::Full);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Synchronous {
    /// `synchronous=NORMAL` (the default): in WAL mode every commit survives
    /// a crash of the application; the last commits before a power loss or
    /// OS crash may roll back. Never corrupts.
    Normal,
    /// `synchronous=FULL`: every commit also survives power loss, at the
    /// cost of one `fsync` per commit (how long that takes depends on the
    /// disk).
    Full,
}

/// Options for [`SqliteStore::open_with`]. Start from `Default` and change
/// what you need; out-of-range values are clamped to the documented limits.
///
/// ```
/// use std::time::Duration;
/// use consentry::store::{SqliteOptions, Synchronous};
/// let opts = SqliteOptions::default().readers(4).busy_timeout(Duration::from_secs(10));
/// assert_eq!(opts.synchronous_mode(), Synchronous::Normal); // untouched: the default
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SqliteOptions {
    readers: usize,
    synchronous: Synchronous,
    busy_timeout: Duration,
    spin: Duration,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            readers: 2,
            synchronous: Synchronous::Normal,
            busy_timeout: Duration::from_secs(5),
            spin: Duration::from_micros(50),
        }
    }
}

impl SqliteOptions {
    /// How many read connections (each on its own thread); 1 to 64,
    /// default 2. Writes always go through one connection.
    ///
    /// ```
    /// use consentry::store::SqliteOptions;
    /// let opts = SqliteOptions::default().readers(1_000);
    /// assert!(format!("{opts:?}").contains("readers: 64")); // clamped
    /// ```
    #[must_use]
    pub fn readers(mut self, n: usize) -> Self {
        self.readers = n.clamp(1, 64);
        self
    }

    /// The durability mode; default [`Synchronous::Normal`].
    ///
    /// ```
    /// use consentry::store::{SqliteOptions, Synchronous};
    /// assert_eq!(SqliteOptions::default().synchronous_mode(), Synchronous::Normal);
    /// let opts = SqliteOptions::default().synchronous(Synchronous::Full);
    /// assert_eq!(opts.synchronous_mode(), Synchronous::Full);
    /// ```
    #[must_use]
    pub fn synchronous(mut self, mode: Synchronous) -> Self {
        self.synchronous = mode;
        self
    }

    /// The configured durability mode.
    ///
    /// ```
    /// use consentry::store::{SqliteOptions, Synchronous};
    /// let durable = SqliteOptions::default().synchronous(Synchronous::Full);
    /// assert_eq!(durable.synchronous_mode(), Synchronous::Full);
    /// assert_ne!(durable.synchronous_mode(), SqliteOptions::default().synchronous_mode());
    /// ```
    pub fn synchronous_mode(&self) -> Synchronous {
        self.synchronous
    }

    /// How long a connection waits for another process's lock before
    /// failing with a storage error; default 5 s, at most 10 minutes.
    ///
    /// ```
    /// use std::time::Duration;
    /// use consentry::store::SqliteOptions;
    /// let opts = SqliteOptions::default().busy_timeout(Duration::from_secs(3_600));
    /// assert!(format!("{opts:?}").contains("busy_timeout: 600s")); // clamped to 10 minutes
    /// ```
    #[must_use]
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout.min(Duration::from_secs(600));
        self
    }

    /// How long callers and workers poll for each other before sleeping;
    /// default 50 µs, at most 1 ms, zero disables polling. Polling trades a
    /// little CPU right after each call for several microseconds of latency
    /// per call; callers poll cooperatively (other tasks keep running).
    ///
    /// ```
    /// use std::time::Duration;
    /// use consentry::store::SqliteOptions;
    /// let opts = SqliteOptions::default().spin(Duration::from_secs(1));
    /// assert!(format!("{opts:?}").contains("spin: 1ms")); // clamped
    /// let no_polling = SqliteOptions::default().spin(Duration::ZERO);
    /// assert!(format!("{no_polling:?}").contains("spin: 0ns"));
    /// ```
    #[must_use]
    pub fn spin(mut self, spin: Duration) -> Self {
        self.spin = spin.min(Duration::from_millis(1));
        self
    }
}

/// A store in one SQLite file: WAL mode, embedded checksummed migrations,
/// `secure_delete` on, one writer connection and a few reader connections,
/// each on a dedicated thread so no SQLite call ever blocks the async
/// runtime. Cheap to clone; clones share the connections.
///
/// Several processes may open the same file: SQLite's locks serialize their
/// writes and every compare-and-swap runs in a `BEGIN IMMEDIATE`
/// transaction.
///
/// ```
/// use consentry::store::SqliteStore;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let dir = tempfile::tempdir().unwrap();
/// let store = SqliteStore::open(dir.path().join("consentry.db")).await?;
/// let clone = store.clone();
/// drop(clone);
/// store.close().await?;
/// # Ok::<(), consentry::Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Queue,
    readers: Queue,
    spin: Duration,
    /// Whether polling pays, learnt separately for reads and for writes
    /// (a write batch is often slower than the window; that says nothing
    /// about reads).
    read_polling: Arc<worker::Polling>,
    write_polling: Arc<worker::Polling>,
    exits: Vec<Reply<()>>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` with default
    /// options and brings its schema up to date.
    ///
    /// # Errors
    /// [`Error::Storage`] if the file cannot be opened;
    /// [`Error::Migration`] if the schema was edited or is newer than this
    /// build.
    ///
    /// ```
    /// use consentry::UserId;
    /// use consentry::store::{DataKeyStore, SqliteStore, WrappedDataKey};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let dir = tempfile::tempdir().unwrap();
    /// let path = dir.path().join("consentry.db");
    /// let alice = UserId::new("alice")?;
    /// let store = SqliteStore::open(&path).await?;
    /// store.insert_data_key(&alice, WrappedDataKey::new("dk_a", "k1".parse()?, vec![1; 8])).await?;
    /// store.close().await?;
    /// let reopened = SqliteStore::open(&path).await?; // the data is in the file
    /// assert_eq!(reopened.get_data_key(&alice).await?.map(|w| w.id), Some("dk_a".to_owned()));
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, SqliteOptions::default()).await
    }

    /// Opens (creating if needed) the database at `path` with explicit
    /// [`SqliteOptions`] and brings its schema up to date.
    ///
    /// # Errors
    /// As [`SqliteStore::open`].
    ///
    /// ```
    /// use consentry::UserId;
    /// use consentry::store::{CredentialStore, SqliteOptions, SqliteStore, Synchronous};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let dir = tempfile::tempdir().unwrap();
    /// let options = SqliteOptions::default().readers(1).synchronous(Synchronous::Full);
    /// let store = SqliteStore::open_with(dir.path().join("consentry.db"), options).await?;
    /// assert!(store.list_credentials(&UserId::new("u")?).await?.is_empty());
    /// store.close().await?;
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn open_with(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let mut exits = Vec::with_capacity(options.readers + 1);
        let (writer, exit) = spawn_worker(&path, &options, Role::Writer).await?;
        exits.push(exit);
        let (readers, reader_jobs) = pool::queue();
        for _ in 0..options.readers {
            exits.push(start_worker(&path, &options, Role::Reader, reader_jobs.clone()).await?);
        }
        Ok(Self {
            inner: Arc::new(Inner {
                path,
                writer,
                readers,
                spin: options.spin,
                read_polling: Arc::default(),
                write_polling: Arc::default(),
                exits,
            }),
        })
    }

    /// The database file's path, as given when opening the store.
    ///
    /// ```
    /// use consentry::store::SqliteStore;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let dir = tempfile::tempdir().unwrap();
    /// let path = dir.path().join("consentry.db");
    /// let store = SqliteStore::open(&path).await?;
    /// assert_eq!(store.path(), path);
    /// assert!(store.path().exists());
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Closes the connections once this is the last handle and waits until
    /// they are closed (the last one checkpoints the WAL into the database
    /// file). With other handles still alive it only drops this one.
    ///
    /// # Errors
    /// [`Error::Storage`] if SQLite fails to close a connection.
    ///
    /// ```
    /// use consentry::UserId;
    /// use consentry::store::{DataKeyStore, SqliteStore};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let dir = tempfile::tempdir().unwrap();
    /// let store = SqliteStore::open(dir.path().join("consentry.db")).await?;
    /// let other = store.clone();
    /// store.close().await?; // `other` is alive: this only drops one handle
    /// assert!(other.get_data_key(&UserId::new("u")?).await?.is_none());
    /// other.close().await?; // the last handle: closes the connections
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn close(self) -> Result<()> {
        let Ok(inner) = Arc::try_unwrap(self.inner) else {
            return Ok(());
        };
        let Inner {
            writer,
            readers,
            exits,
            ..
        } = inner;
        // The readers close first and the writer last, alone: SQLite
        // checkpoints the WAL only when the closing connection is the last
        // one, and connections closing at the same moment each see the
        // others and leave the WAL for the next open.
        let mut exits = exits.into_iter();
        let writer_exit = exits.next();
        drop(readers);
        for exit in exits {
            exit.await?;
        }
        drop(writer);
        if let Some(exit) = writer_exit {
            exit.await?;
        }
        Ok(())
    }

    /// Runs `f` on a reader connection.
    pub(super) async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        worker::call(
            &self.inner.readers,
            self.inner.spin,
            &self.inner.read_polling,
            f,
        )
        .await
    }

    /// Runs `f` on the writer connection.
    pub(super) async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        worker::call(
            &self.inner.writer,
            self.inner.spin,
            &self.inner.write_polling,
            f,
        )
        .await
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Writer,
    Reader,
}

async fn spawn_worker(
    path: &Path,
    options: &SqliteOptions,
    role: Role,
) -> Result<(Queue, Reply<()>)> {
    let (tx, rx) = pool::queue();
    let exit = start_worker(path, options, role, rx).await?;
    Ok((tx, exit))
}

/// Starts a thread that opens a connection (migrating, for the writer),
/// reports readiness, then serves `jobs`. Returns the thread's exit reply.
async fn start_worker(
    path: &Path,
    options: &SqliteOptions,
    role: Role,
    jobs: Jobs,
) -> Result<Reply<()>> {
    let (ready, ready_reply) = worker::pair::<()>(options.spin);
    let (exited, exit_reply) = worker::pair::<()>(Duration::ZERO);
    let path = path.to_path_buf();
    let options = options.clone();
    std::thread::Builder::new()
        .name(match role {
            Role::Writer => "consentry-sqlite-writer".into(),
            Role::Reader => "consentry-sqlite-reader".into(),
        })
        .spawn(move || match open_connection(&path, &options, role) {
            Ok(conn) => {
                ready.complete(Ok(()));
                worker::run(conn, jobs, options.spin, exited);
            }
            Err(e) => {
                ready.complete(Err(e));
                exited.complete(Ok(()));
            }
        })
        .map_err(|e| Error::storage("starting a SQLite worker thread", e))?;
    ready_reply.await?;
    Ok(exit_reply)
}

fn open_connection(path: &Path, options: &SqliteOptions, role: Role) -> Result<Connection> {
    let err = |context: &'static str| move |e: rusqlite::Error| Error::storage(context, e);
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(path, flags).map_err(err("opening the database"))?;
    conn.busy_timeout(options.busy_timeout)
        .map_err(err("setting busy_timeout"))?;
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)
        .map_err(err("enabling defensive mode"))?;
    // The query planner stability guarantee: plans do not depend on bound
    // values. Without it, SQLite 3.54 lets the planner look at bound
    // values (a `LIMIT ?`, an indexed `= ?`) and marks the statement to be
    // prepared again whenever one is rebound, so every cached statement
    // was parsed and planned anew on every call. consentry's queries are
    // point and range reads on its own indexes and never ANALYZEd: one
    // plan per statement is the right one.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )
    .map_err(err("enabling the query planner stability guarantee"))?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(err("enabling WAL"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::Storage {
            message: format!("SQLite refused WAL mode (journal_mode is {mode})"),
            source: None,
        });
    }
    let synchronous = match options.synchronous {
        Synchronous::Normal => "NORMAL",
        Synchronous::Full => "FULL",
    };
    conn.execute_batch(&format!(
        "PRAGMA synchronous = {synchronous};
         PRAGMA foreign_keys = ON;
         PRAGMA secure_delete = ON;
         PRAGMA trusted_schema = OFF;"
    ))
    .map_err(err("configuring the connection"))?;
    conn.set_prepared_statement_cache_capacity(64);
    match role {
        Role::Writer => migrate::migrate(&mut conn)?,
        Role::Reader => conn
            .execute_batch("PRAGMA query_only = ON;")
            .map_err(err("making a reader read-only"))?,
    }
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cached, parameterized statement run with new values each time is
    /// prepared once (`SQLITE_DBCONFIG_ENABLE_QPSG`), not once per call.
    #[test]
    fn cached_statements_are_not_prepared_again_on_rebind() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let conn = open_connection(
            &dir.path().join("t.db"),
            &SqliteOptions::default(),
            Role::Writer,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let sql = "SELECT count(*) FROM consentry_records
                   WHERE tenant = ?1 AND user_id = ?2 AND record_id > ?3 LIMIT ?4";
        for n in 0..50i64 {
            let mut stmt = conn.prepare_cached(sql).unwrap_or_else(|e| panic!("{e}"));
            let count: i64 = stmt
                .query_row(rusqlite::params!["", format!("u{n}"), "", n + 1], |r| {
                    r.get(0)
                })
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(count, 0);
        }
        let stmt = conn.prepare_cached(sql).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(stmt.get_status(rusqlite::StatementStatus::RePrepare), 0);
    }
}
