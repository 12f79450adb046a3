//! For tests: a store that lets another writer in at a chosen moment. A command reads the
//! store, decides, then writes from a second reading; a race with another process lands
//! between the two only by chance. [`Interleaved`] runs the other writer just before a given
//! reading (by default a [`Store::read`]; see [`Call`]), every time the test runs. It can
//! also stop a command at a chosen write, as a command killed there or a store lost there
//! would ([`Interleaved::stopping_at_write`]).

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{
    Identity, LogAppend, LogRecord, ManifestSwap, ReadRecord, Record, Resealed, Snapshot, Store,
    StoreError,
};

/// What runs in between: another writer's whole command.
type Between = Box<dyn FnOnce() + Send>;

/// Which reading of the store the other writer goes just before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Call {
    /// [`Store::read`]: a command's verified reading.
    Read,
    /// [`Store::log_tail`]: the log's newest entry, which a change's entry follows.
    LogTail,
    /// [`Store::log`]: the whole change log.
    Log,
}

/// `inner`, except that just before its `at`-th call of `call` (counted from 1; a
/// [`Store::read`] unless [`Interleaved::before`] says otherwise) `between` runs, once;
/// and that its `stop_at`-th write of records, if any, fails unwritten.
pub(crate) struct Interleaved {
    inner: Box<dyn Store>,
    call: Call,
    calls: AtomicUsize,
    at: usize,
    between: Mutex<Option<Between>>,
    writes: AtomicUsize,
    stop_at: Option<usize>,
}

impl Interleaved {
    pub(crate) fn new(
        inner: Box<dyn Store>,
        at: usize,
        between: impl FnOnce() + Send + 'static,
    ) -> Interleaved {
        Interleaved {
            inner,
            call: Call::Read,
            calls: AtomicUsize::new(0),
            at,
            between: Mutex::new(Some(Box::new(between))),
            writes: AtomicUsize::new(0),
            stop_at: None,
        }
    }

    /// `inner`, except that its `write`-th [`Store::append_all_logged`] (counted from 1)
    /// writes nothing and fails as an unreachable store: the command stops there, with the
    /// writes before it made, as if it had been killed.
    pub(crate) fn stopping_at_write(inner: Box<dyn Store>, write: usize) -> Interleaved {
        Interleaved {
            stop_at: Some(write),
            ..Interleaved::new(inner, 0, || {})
        }
    }

    /// The same, counting the calls of `call` instead of the readings.
    pub(crate) fn before(self, call: Call) -> Interleaved {
        Interleaved { call, ..self }
    }

    /// Runs the other writer if this is the chosen call.
    fn arrive(&self, call: Call) {
        if call == self.call
            && self.calls.fetch_add(1, Ordering::SeqCst) + 1 == self.at
            && let Some(between) = self.between.lock().unwrap().take()
        {
            between();
        }
    }
}

impl Store for Interleaved {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn identity(&self, create: bool) -> Result<Option<Identity>, StoreError> {
        self.inner.identity(create)
    }
    fn read(&self) -> Result<Option<Snapshot>, StoreError> {
        self.arrive(Call::Read);
        self.inner.read()
    }
    fn latest(&self, name: &str) -> Result<Option<ReadRecord>, StoreError> {
        self.inner.latest(name)
    }
    fn list_latest(&self) -> Result<Vec<ReadRecord>, StoreError> {
        self.inner.list_latest()
    }
    fn history(&self, name: &str) -> Result<Vec<ReadRecord>, StoreError> {
        self.inner.history(name)
    }
    fn all_versions(&self) -> Result<Vec<ReadRecord>, StoreError> {
        self.inner.all_versions()
    }
    fn replace_all(
        &self,
        whole: &Resealed<'_>,
        key_fingerprint: &str,
        manifest: &ManifestSwap,
    ) -> Result<(), StoreError> {
        self.inner.replace_all(whole, key_fingerprint, manifest)
    }
    fn append_all_logged(
        &self,
        batch: &[(u64, &Record)],
        key_fingerprint: &str,
        manifest: &ManifestSwap,
        log: Option<&LogAppend>,
    ) -> Result<(), StoreError> {
        if Some(self.writes.fetch_add(1, Ordering::SeqCst) + 1) == self.stop_at {
            return Err(StoreError::Unreachable {
                location: self.location(),
                detail: "the test stopped this write".into(),
            });
        }
        self.inner
            .append_all_logged(batch, key_fingerprint, manifest, log)
    }
    fn purge_logged(
        &self,
        name: &str,
        manifest: &ManifestSwap,
        log: Option<&LogAppend>,
    ) -> Result<usize, StoreError> {
        self.inner.purge_logged(name, manifest, log)
    }
    fn append_log(&self, log: &LogAppend) -> Result<(), StoreError> {
        self.inner.append_log(log)
    }
    fn log_tail(&self) -> Result<Option<LogRecord>, StoreError> {
        self.arrive(Call::LogTail);
        self.inner.log_tail()
    }
    fn log(&self) -> Result<Vec<LogRecord>, StoreError> {
        self.arrive(Call::Log);
        self.inner.log()
    }
    fn notes(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.inner.notes()
    }
    fn put_notes_logged(
        &self,
        notes: &[(String, Vec<u8>)],
        manifest: Option<&ManifestSwap>,
        log: Option<&LogAppend>,
    ) -> Result<(), StoreError> {
        self.inner.put_notes_logged(notes, manifest, log)
    }
}
