//! The plaintext of a recovery bundle: which credentials, with which values, from when.
//! Its JSON form is documented in [`crate::recovery`]; it only ever exists in memory (in
//! buffers zeroed when dropped) and inside the age encryption.

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::catalog::{CredentialName, SetId};
use crate::credentials::{CredentialStore, HistoryEntry, Listed};
use crate::secret::SecretValue;
use crate::store::Action;

use super::RecoveryError;

/// The format tag of the plaintext.
pub const FORMAT: &str = "cio-recovery-bundle";
/// The version of the plaintext format this cio writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// One version of a credential in a bundle.
#[derive(Debug)]
pub struct BundledVersion {
    /// Its version number in the store it came from.
    pub version: u64,
    pub action: Action,
    /// When it was written there, in milliseconds since the Unix epoch.
    pub written_at_ms: i64,
    /// `None` for a removal (only in a bundle made with history).
    pub value: Option<SecretValue>,
}

/// A credential in a bundle: its live version, or with history every version, oldest first.
#[derive(Debug)]
pub struct BundledCredential {
    pub name: CredentialName,
    pub versions: Vec<BundledVersion>,
}

impl BundledCredential {
    /// The newest version (the live value when the bundle was made).
    pub fn latest(&self) -> Option<&BundledVersion> {
        self.versions.last()
    }
}

/// What a recovery bundle holds.
#[derive(Debug)]
pub struct Bundle {
    /// When the bundle was made, in milliseconds since the Unix epoch.
    pub created_at_ms: i64,
    /// The program that made it, e.g. `cio 0.1.0`.
    pub created_by: String,
    /// Whether every version went along, or only the live ones.
    pub history: bool,
    /// In catalog order.
    pub credentials: Vec<BundledCredential>,
}

impl Bundle {
    /// The bundle of `sets` from `store`: the live credentials of those sets (the four
    /// names and any optional ones), with `history` every version of each, oldest first.
    pub fn from_store(
        store: &CredentialStore,
        sets: &[SetId],
        history: bool,
    ) -> crate::Result<Bundle> {
        Bundle::from_listed(store, store.list()?, sets, history)
    }

    /// [`Bundle::from_store`] from what `store` listed already ([`CredentialStore::list`]),
    /// without reading and verifying the store again; `store` is read only for `history`.
    pub fn from_listed(
        store: &CredentialStore,
        mut listed: Listed,
        sets: &[SetId],
        history: bool,
    ) -> crate::Result<Bundle> {
        // A bundle never leaves out a credential of its sets silently.
        if let Some(damage) = listed.take_damage_in(sets) {
            return Err(damage);
        }
        let mut credentials = Vec::new();
        for entry in listed.entries {
            if !sets.contains(&entry.name.set()) {
                continue;
            }
            let versions = if history {
                store
                    .history(entry.name)?
                    .into_iter()
                    .map(|h: HistoryEntry| BundledVersion {
                        version: h.version,
                        action: h.action,
                        written_at_ms: h.written_at_ms,
                        value: h.value,
                    })
                    .collect()
            } else {
                vec![BundledVersion {
                    version: entry.version,
                    action: entry.action,
                    written_at_ms: entry.updated_ms,
                    value: Some(entry.value),
                }]
            };
            credentials.push(BundledCredential {
                name: entry.name,
                versions,
            });
        }
        Ok(Bundle {
            created_at_ms: crate::store::now_ms(),
            created_by: format!("cio {}", env!("CARGO_PKG_VERSION")),
            history,
            credentials,
        })
    }

    /// The sets the bundle has credentials of, in catalog order.
    pub fn sets(&self) -> Vec<SetId> {
        let mut sets: Vec<SetId> = self.credentials.iter().map(|c| c.name.set()).collect();
        sets.sort();
        sets.dedup();
        sets
    }

    /// The plaintext: one JSON document, in a buffer zeroed when dropped.
    pub fn to_json(&self) -> Zeroizing<Vec<u8>> {
        let wire = WireOut {
            format: FORMAT,
            format_version: FORMAT_VERSION,
            created_at_ms: self.created_at_ms,
            created_by: &self.created_by,
            history: self.history,
            credentials: self
                .credentials
                .iter()
                .map(|c| WireCredentialOut {
                    name: c.name,
                    versions: c
                        .versions
                        .iter()
                        .map(|v| WireVersionOut {
                            version: v.version,
                            action: v.action,
                            written_at_ms: v.written_at_ms,
                            value: v.value.as_ref().map(SecretValue::expose),
                        })
                        .collect(),
                })
                .collect(),
        };
        // Room for everything up front, so the buffer is not reallocated (which would leave
        // copies of values behind that are never zeroed).
        let room: usize = 512
            + self
                .credentials
                .iter()
                .flat_map(|c| &c.versions)
                .map(|v| 160 + 6 * v.value.as_ref().map_or(0, |v| v.expose().len()))
                .sum::<usize>();
        let mut out = Zeroizing::new(Vec::with_capacity(room));
        serde_json::to_writer(&mut *out, &wire)
            .expect("a bundle of strings and numbers always serializes to JSON");
        out
    }

    /// Reads the plaintext. Anything but this format (or a newer version of it) is refused,
    /// and so is a bundle that holds no credential, or none with a value to import.
    pub fn from_json(plaintext: &[u8]) -> Result<Bundle, RecoveryError> {
        let head: WireHead =
            serde_json::from_slice(plaintext).map_err(|_| RecoveryError::NotABundle)?;
        if head.format.as_deref() != Some(FORMAT) {
            return Err(RecoveryError::NotABundle);
        }
        if head.format_version != Some(FORMAT_VERSION) {
            return Err(RecoveryError::UnknownFormatVersion(
                head.format_version.unwrap_or(0),
            ));
        }
        let wire: WireIn =
            serde_json::from_slice(plaintext).map_err(|_| RecoveryError::NotABundle)?;
        let mut credentials = Vec::with_capacity(wire.credentials.len());
        for (i, c) in wire.credentials.into_iter().enumerate() {
            let name: CredentialName = c
                .name
                .parse()
                .map_err(|_| RecoveryError::UnknownName { index: i + 1 })?;
            if c.versions.is_empty()
                || credentials
                    .iter()
                    .any(|b: &BundledCredential| b.name == name)
            {
                return Err(RecoveryError::NotABundle);
            }
            let versions = c
                .versions
                .into_iter()
                .map(|v| {
                    let action = Action::parse(&v.action).ok_or(RecoveryError::NotABundle)?;
                    // A removal holds no value (export writes none): one that does would
                    // import as that value brought back.
                    if action == Action::Remove && v.value.is_some() {
                        return Err(RecoveryError::NotABundle);
                    }
                    Ok(BundledVersion {
                        version: v.version,
                        action,
                        written_at_ms: v.written_at_ms,
                        value: v.value.map(SecretValue::new),
                    })
                })
                .collect::<Result<Vec<_>, RecoveryError>>()?;
            credentials.push(BundledCredential { name, versions });
        }
        // A bundle holds at least one credential (export never makes an empty one): an empty
        // one would import as nothing, to no set, and look like a success.
        if credentials.is_empty() {
            return Err(RecoveryError::EmptyBundle);
        }
        // Nor does it when each credential's newest version holds no value (a removal, in a
        // bundle made with history; or a version without its value): the import would write
        // nothing and say so as a success.
        if credentials
            .iter()
            .all(|c| c.latest().is_none_or(|v| v.value.is_none()))
        {
            return Err(RecoveryError::NothingToImport);
        }
        credentials.sort_by_key(|c| c.name);
        Ok(Bundle {
            created_at_ms: wire.created_at_ms,
            created_by: wire.created_by,
            history: wire.history,
            credentials,
        })
    }
}

#[derive(Serialize)]
struct WireOut<'a> {
    format: &'static str,
    format_version: u32,
    created_at_ms: i64,
    created_by: &'a str,
    history: bool,
    credentials: Vec<WireCredentialOut<'a>>,
}

#[derive(Serialize)]
struct WireCredentialOut<'a> {
    name: CredentialName,
    versions: Vec<WireVersionOut<'a>>,
}

#[derive(Serialize)]
struct WireVersionOut<'a> {
    version: u64,
    action: Action,
    written_at_ms: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<&'a str>,
}

/// The fields that say which format a document is, read first so that a newer format gets
/// a precise error rather than a parse failure.
#[derive(Deserialize)]
struct WireHead {
    format: Option<String>,
    format_version: Option<u32>,
}

#[derive(Deserialize)]
struct WireIn {
    created_at_ms: i64,
    created_by: String,
    #[serde(default)]
    history: bool,
    credentials: Vec<WireCredentialIn>,
}

#[derive(Deserialize)]
struct WireCredentialIn {
    name: String,
    versions: Vec<WireVersionIn>,
}

#[derive(Deserialize)]
struct WireVersionIn {
    version: u64,
    action: String,
    written_at_ms: i64,
    value: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Bundle {
        Bundle {
            created_at_ms: 1_790_000_000_000,
            created_by: "cio 0.1.0".into(),
            history: false,
            credentials: vec![BundledCredential {
                name: "cio_minio_secret_key".parse().unwrap(),
                versions: vec![BundledVersion {
                    version: 2,
                    action: Action::Update,
                    written_at_ms: 1_789_000_000_000,
                    value: Some(SecretValue::new("a \"quoted\" secret\\".into())),
                }],
            }],
        }
    }

    #[test]
    fn the_documented_format() {
        let json = sample().to_json();
        assert_eq!(
            std::str::from_utf8(&json).unwrap(),
            r#"{"format":"cio-recovery-bundle","format_version":1,"created_at_ms":1790000000000,"created_by":"cio 0.1.0","history":false,"credentials":[{"name":"cio_minio_secret_key","versions":[{"version":2,"action":"update","written_at_ms":1789000000000,"value":"a \"quoted\" secret\\"}]}]}"#
        );
        let back = Bundle::from_json(&json).unwrap();
        assert_eq!(back.credentials.len(), 1);
        let v = back.credentials[0].latest().unwrap();
        assert_eq!(v.value.as_ref().unwrap().expose(), "a \"quoted\" secret\\");
        assert_eq!((v.version, v.action), (2, Action::Update));
        assert!(!format!("{back:?}").contains("quoted"));
    }

    #[test]
    fn other_documents_are_refused() {
        for (text, expected) in [
            (r#"{"format":"other","format_version":1}"#, "NotABundle"),
            ("not json", "NotABundle"),
            (
                r#"{"format":"cio-recovery-bundle","format_version":2}"#,
                "UnknownFormatVersion(2)",
            ),
            (
                r#"{"format":"cio-recovery-bundle","format_version":1,"created_at_ms":1,"created_by":"x","credentials":[{"name":"cio_nope","versions":[{"version":1,"action":"create","written_at_ms":1,"value":"v"}]}]}"#,
                "UnknownName { index: 1 }",
            ),
            (
                r#"{"format":"cio-recovery-bundle","format_version":1,"created_at_ms":1,"created_by":"x","credentials":[]}"#,
                "EmptyBundle",
            ),
            (
                r#"{"format":"cio-recovery-bundle","format_version":1,"created_at_ms":1,"created_by":"x","history":true,"credentials":[{"name":"cio_minio_secret_key","versions":[{"version":1,"action":"create","written_at_ms":1,"value":"a secret value"},{"version":2,"action":"remove","written_at_ms":2}]}]}"#,
                "NothingToImport",
            ),
            (
                r#"{"format":"cio-recovery-bundle","format_version":1,"created_at_ms":1,"created_by":"x","credentials":[{"name":"cio_minio_secret_key","versions":[{"version":1,"action":"update","written_at_ms":1}]},{"name":"cio_minio_access_key","versions":[{"version":1,"action":"remove","written_at_ms":1,"value":null}]}]}"#,
                "NothingToImport",
            ),
            (
                r#"{"format":"cio-recovery-bundle","format_version":1,"created_at_ms":1,"created_by":"x","history":true,"credentials":[{"name":"cio_minio_secret_key","versions":[{"version":1,"action":"create","written_at_ms":1,"value":"a secret value"},{"version":2,"action":"remove","written_at_ms":2,"value":"brought back"}]}]}"#,
                "NotABundle",
            ),
        ] {
            let err = Bundle::from_json(text.as_bytes()).unwrap_err();
            assert_eq!(format!("{err:?}"), expected, "{text}");
        }
    }
}
