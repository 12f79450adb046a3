//! Whose keys lie under a store's key prefix while it has no store id, and where a new store
//! may be made.
//!
//! Stores never nest: a store made below another's prefix (`/cio/v/NAME` below `/cio`) would
//! have its keys among the other's ranges, where a purge destroys them, and a store made
//! around one (`/cio` around `/cio/x`) would hold it in its own. So the transaction that
//! writes a store id requires, besides nothing under the new prefix, that no enclosing
//! prefix (`/a` and `/a/b` of `/a/b/c`) holds a store id: of two creators at `/a` and
//! `/a/b`, one wins and the other is refused. A prefix without an id that holds keys says
//! whose they are: the store's own (its id was removed), another store's below it, or
//! another program's. All of this runs only when the id is missing, never on the reads of
//! an existing store.

use std::time::Instant;

use super::codec::KeyLayout;
use super::gateway::at_one_revision;
use super::location::is_clean_prefix;
use super::wire::{absent, none_under, prefix_end, put_op, range_op};
use super::{EtcdStore, Store, StoreError, new_store_id};

/// What the keys under a prefix without a store id show.
#[derive(Debug, PartialEq, Eq)]
enum Finding {
    /// No key: no store yet.
    Empty,
    /// The store id itself: a creator made the store since the id was looked for.
    Id,
    /// Keys of the store's own layout without its id: the id was removed.
    OwnKeys,
    /// Another cio store below the prefix (its prefix, when a location can name it).
    StoreBelow(Option<String>),
    /// Keys no cio store wrote.
    Foreign,
}

/// A prefix without a store id that no one else's keys occupy.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Vacant {
    /// Nothing is under it.
    Empty,
    /// The store id is there now: a creator made the store meanwhile.
    Created,
}

/// What `found` (every key under the prefix of `keys`, in key order) shows. Keys of a store
/// below are that store's even where they look like this one's (`/p/v/log/{seq}` of a store
/// at `/p/v` looks like a version of `log`).
fn find(keys: &KeyLayout, found: &[Vec<u8>]) -> Finding {
    if found.is_empty() {
        return Finding::Empty;
    }
    let id = keys.store_id();
    if found.contains(&id) {
        return Finding::Id;
    }
    let below: Vec<&[u8]> = found.iter().filter_map(|k| keys.store_below(k)).collect();
    let in_a_store_below = |key: &[u8]| {
        below.iter().any(|p| {
            key.strip_prefix(*p)
                .is_some_and(|rest| rest.starts_with(b"/"))
        })
    };
    if found.iter().any(|k| keys.owns(k) && !in_a_store_below(k)) {
        return Finding::OwnKeys;
    }
    match below.first() {
        Some(prefix) => Finding::StoreBelow(
            std::str::from_utf8(prefix)
                .ok()
                .filter(|p| is_clean_prefix(p))
                .map(str::to_string),
        ),
        None => Finding::Foreign,
    }
}

impl EtcdStore {
    /// Says whose the keys under the prefix are, at `revision` (0: the newest), when the
    /// store id was not found: [`Vacant`] when they are no one else's and no store encloses
    /// the prefix, else the error that says what is there ([`StoreError::Overlap`] for a
    /// store around or below it, [`StoreError::Corrupt`] for the store's own keys without
    /// the id, [`StoreError::Foreign`] for another program's keys).
    pub(super) fn vacant(&self, revision: i64, deadline: Instant) -> Result<Vacant, StoreError> {
        let start = self.keys.everything();
        let end = prefix_end(&start);
        let found = if revision == 0 {
            at_one_revision(deadline, || {
                self.gateway.keys_all_at(&start, &end, 0, deadline)
            })?
            .0
        } else {
            self.gateway
                .keys_all_at(&start, &end, revision, deadline)?
                .0
        };
        let refusal = match find(&self.keys, &found) {
            Finding::Id => return Ok(Vacant::Created),
            Finding::Empty => None,
            Finding::OwnKeys => Some(self.id_removed()),
            Finding::StoreBelow(prefix) => Some(self.overlap(match prefix {
                Some(p) => format!(
                    "the cio credential store {} lies inside its key prefix",
                    self.spec.location_at(&p)
                ),
                None => "another cio credential store lies inside its key prefix".into(),
            })),
            Finding::Foreign => Some(StoreError::Foreign {
                location: self.location(),
                detail: "its key prefix holds keys that cio did not write".into(),
            }),
        };
        // Inside another store, no store can be made here, and keys under the prefix may be
        // the other's: that is said first.
        match (self.enclosing_store(deadline)?, refusal) {
            (Some(outer), _) => Err(self.inside(&outer)),
            (None, Some(refusal)) => Err(refusal),
            (None, None) => Ok(Vacant::Empty),
        }
    }

    /// The enclosing prefix that holds a store id, if one does (the outermost first).
    /// Of the enclosing prefixes, only those the etcd user may read are asked: a user whose
    /// rights cover only part of the key space (its own prefix) cannot write outside it
    /// either, and a store around it purges only its own version keys, so nothing either
    /// does can reach the other's keys. Rights are by prefix, so the readable ones are the
    /// innermost: the outermost is dropped until the read is allowed.
    fn enclosing_store(&self, deadline: Instant) -> Result<Option<KeyLayout>, StoreError> {
        let mut enclosing = self.keys.enclosing();
        let response = loop {
            if enclosing.is_empty() {
                return Ok(None);
            }
            let reads = enclosing
                .iter()
                .map(|outer| range_op(&outer.store_id()))
                .collect();
            match self.gateway.txn(Vec::new(), reads, Vec::new(), deadline) {
                Ok(response) => break response,
                Err(StoreError::Denied { .. }) => {
                    enclosing.remove(0);
                }
                Err(e) => return Err(e),
            }
        };
        Ok(enclosing
            .into_iter()
            .enumerate()
            .find(|(i, _)| response.range_value(*i).is_some())
            .map(|(_, outer)| outer))
    }

    /// The refusal of a prefix inside the store at `outer`.
    fn inside(&self, outer: &KeyLayout) -> StoreError {
        self.overlap(format!(
            "its key prefix lies inside that of the cio credential store {}",
            self.spec.location_at(outer.prefix())
        ))
    }

    fn overlap(&self, detail: String) -> StoreError {
        StoreError::Overlap {
            location: self.location(),
            detail,
        }
    }

    /// Creates the store id, in one transaction and only if nothing at all is under the
    /// prefix and no enclosing prefix holds a store id: a race between two creators leaves
    /// exactly one id, and neither another program's keys nor another store's are adopted.
    /// The id there already (another creator's) is returned.
    /// The enclosing prefixes compared are those the etcd user may read (see
    /// `enclosing_store`): a denied transaction is tried again without the outermost.
    pub(super) fn create_id(&self, deadline: Instant) -> Result<String, StoreError> {
        let id_key = self.keys.store_id();
        let mut enclosing = self.keys.enclosing();
        // The keys under the prefix may be gone by the time they are read: a few attempts.
        let mut attempts = 0;
        while attempts < 3 {
            let id = new_store_id();
            let mut compares = vec![none_under(&self.keys.everything())];
            compares.extend(enclosing.iter().map(|outer| absent(&outer.store_id())));
            let mut failure = vec![range_op(&id_key)];
            failure.extend(enclosing.iter().map(|outer| range_op(&outer.store_id())));
            let response = match self.gateway.txn(
                compares,
                vec![put_op(&id_key, id.as_bytes())],
                failure,
                deadline,
            ) {
                Err(StoreError::Denied { .. }) if !enclosing.is_empty() => {
                    enclosing.remove(0);
                    continue;
                }
                other => other?,
            };
            attempts += 1;
            if response.succeeded {
                return Ok(id);
            }
            if let Some(v) = response.range_value(0) {
                return Ok(String::from_utf8_lossy(v).into_owned());
            }
            let outer = (1..=enclosing.len()).find(|i| response.range_value(*i).is_some());
            if let Some(outer) = outer.and_then(|i| enclosing.get(i - 1)) {
                return Err(self.inside(outer));
            }
            self.vacant(0, deadline)?;
        }
        Err(StoreError::Conflict {
            name: "the store id".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find_in(keys: &[&str]) -> Finding {
        let found: Vec<Vec<u8>> = keys.iter().map(|k| k.as_bytes().to_vec()).collect();
        find(&KeyLayout::new("/p"), &found)
    }

    #[test]
    fn the_keys_under_a_prefix_without_an_id_say_whose_they_are() {
        assert_eq!(find_in(&[]), Finding::Empty);
        assert_eq!(find_in(&["/p/meta/store_id"]), Finding::Id);
        assert_eq!(
            find_in(&["/p/head/n", "/p/v/n/00000000000000000001"]),
            Finding::OwnKeys
        );
        assert_eq!(find_in(&["/p/app/config"]), Finding::Foreign);
        let below = |p: &str| Finding::StoreBelow(Some(p.into()));
        assert_eq!(
            find_in(&["/p/x/meta/store_id", "/p/x/v/n/00000000000000000001"]),
            below("/p/x")
        );
        // A store at /p/v: its log entries look like versions of a name "log".
        assert_eq!(
            find_in(&[
                "/p/v/log/00000000000000000001",
                "/p/v/loghead",
                "/p/v/meta/store_id",
            ]),
            below("/p/v")
        );
        // Its own keys beside a store below: the id was removed.
        assert_eq!(
            find_in(&["/p/head/n", "/p/x/meta/store_id"]),
            Finding::OwnKeys
        );
        // A prefix a location cannot name is not shown.
        assert_eq!(
            find_in(&["/p/a b/meta/store_id"]),
            Finding::StoreBelow(None)
        );
        assert_eq!(
            find_in(&["/p/\u{1b}[31m/meta/store_id"]),
            Finding::StoreBelow(None)
        );
    }
}
