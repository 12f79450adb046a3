//! Handing a credential set to the backup engine (restic), as environment variables.
//!
//! Rules:
//! - only a complete set is handed over: never a backup with half a set;
//! - without a provider, the one complete set of the asked role is used; none or two is an
//!   error that lists the choices;
//! - the values go into the engine's environment only (never argv, never a file); variables
//!   that would override or conflict with them (a session token, password files) are removed.

use crate::catalog::{CredentialName, Field, Provider, Role, SetId};
use crate::credentials::{CredentialStore, Entry};
use crate::error::{Error, Result};
use crate::secret::SecretValue;

/// The variable restic reads for each field.
pub fn variable(field: Field) -> &'static str {
    match field {
        Field::BackupRepo => "RESTIC_REPOSITORY",
        Field::AccessKey => "AWS_ACCESS_KEY_ID",
        Field::SecretKey => "AWS_SECRET_ACCESS_KEY",
        Field::BackupPassword => "RESTIC_PASSWORD",
    }
}

/// Variables removed from the engine's environment: each would mix another credential with
/// the set's (a session token for other keys, a password or repository from a file).
pub const CLEARED: &[&str] = &[
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "RESTIC_PASSWORD_FILE",
    "RESTIC_PASSWORD_COMMAND",
    "RESTIC_REPOSITORY_FILE",
];

/// A complete set, ready to hand over.
pub struct Handoff {
    pub set: SetId,
    /// (variable, value), in field order.
    pub vars: Vec<(&'static str, SecretValue)>,
}

impl std::fmt::Debug for Handoff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<_> = self.vars.iter().map(|(k, _)| *k).collect();
        write!(f, "Handoff({}, {names:?})", self.set)
    }
}

/// The complete set of `role` for `provider`, or the only complete one of `role`.
pub fn choose(vault: &CredentialStore, provider: Option<Provider>, role: Role) -> Result<Handoff> {
    let candidates: Vec<SetId> = match provider {
        Some(provider) => vec![SetId { provider, role }],
        None => Provider::ALL
            .into_iter()
            .map(|provider| SetId { provider, role })
            .collect(),
    };
    let mut complete = Vec::new();
    let mut partial = Vec::new();
    for set in candidates {
        let entries = vault.set(set)?;
        let missing: Vec<CredentialName> = set
            .names()
            .into_iter()
            .zip(&entries)
            .filter(|(_, e)| e.is_none())
            .map(|(n, _)| n)
            .collect();
        if missing.is_empty() {
            complete.push((set, entries));
        } else if missing.len() < 4 || provider.is_some() {
            partial.push((set, missing));
        }
    }
    match (complete.len(), partial.len()) {
        (1, _) => {
            let (set, entries) = complete.remove(0);
            Ok(handoff(set, entries))
        }
        (0, 1) => {
            let (set, missing) = partial.remove(0);
            Err(Error::IncompleteSet { set, missing })
        }
        (0, _) if !partial.is_empty() => Err(Error::NoSuchSet(format!(
            "no {role} set is complete: {}",
            partial
                .iter()
                .map(|(set, missing)| format!("{} lacks {}", set.provider, names(missing)))
                .collect::<Vec<_>>()
                .join("; ")
        ))),
        (0, _) => Err(Error::NoSuchSet(format!(
            "there is no {role} set: create its four credentials (cio_{{aws|minio}}{}_backup_repo, ...) first",
            if role == Role::Alternate { "_alt" } else { "" }
        ))),
        _ => Err(Error::NoSuchSet(format!(
            "both the aws and the minio {role} sets are complete: choose one with --provider aws or --provider minio"
        ))),
    }
}

fn names(names: &[CredentialName]) -> String {
    names
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn handoff(set: SetId, entries: [Option<Entry>; 4]) -> Handoff {
    let vars = entries
        .into_iter()
        .flatten()
        .map(|e| (variable(e.name.field), e.value))
        .collect();
    Handoff { set, vars }
}

/// Quotes a value for a POSIX shell: single quotes, with `'` written as `'\''`.
pub fn sh_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;

    fn put(vault: &CredentialStore, name: &str, value: &str) {
        vault
            .put(name.parse().unwrap(), &SecretValue::new(value.into()))
            .unwrap();
    }

    fn minio_set(vault: &CredentialStore, alt: &str) {
        put(
            vault,
            &format!("cio_minio{alt}_backup_repo"),
            "s3:http://127.0.0.1:9000/bucket",
        );
        put(vault, &format!("cio_minio{alt}_access_key"), "minio");
        put(vault, &format!("cio_minio{alt}_secret_key"), "minio-secret");
        put(
            vault,
            &format!("cio_minio{alt}_backup_password"),
            "a long repository password",
        );
    }

    #[test]
    fn chooses_the_only_complete_set_and_names_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let vault = CredentialStore::new(
            Box::new(SqliteStore::new(dir.path().join("s"))),
            dir.path().join("k"),
        );
        let err = choose(&vault, None, Role::Primary).unwrap_err();
        assert_eq!(
            err.to_string(),
            "there is no primary set: create its four credentials (cio_{aws|minio}_backup_repo, ...) first"
        );
        put(&vault, "cio_aws_access_key", "AKIAYHD623GGZX7VDFMJ");
        let err = choose(&vault, None, Role::Primary).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the aws primary set is incomplete: missing cio_aws_backup_repo, cio_aws_secret_key, cio_aws_backup_password"
        );
        minio_set(&vault, "");
        let h = choose(&vault, None, Role::Primary).unwrap();
        assert_eq!(h.set.provider, Provider::Minio);
        let vars: Vec<_> = h.vars.iter().map(|(k, v)| (*k, v.expose())).collect();
        assert_eq!(
            vars,
            vec![
                ("RESTIC_REPOSITORY", "s3:http://127.0.0.1:9000/bucket"),
                ("AWS_ACCESS_KEY_ID", "minio"),
                ("AWS_SECRET_ACCESS_KEY", "minio-secret"),
                ("RESTIC_PASSWORD", "a long repository password"),
            ]
        );
        assert!(!format!("{h:?}").contains("minio-secret"));
        assert!(matches!(
            choose(&vault, Some(Provider::Aws), Role::Primary),
            Err(Error::IncompleteSet { .. })
        ));
        assert!(choose(&vault, None, Role::Alternate).is_err());
        minio_set(&vault, "_alt");
        assert_eq!(
            choose(&vault, None, Role::Alternate).unwrap().set.role,
            Role::Alternate
        );
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(sh_quote("plain"), "'plain'");
        assert_eq!(sh_quote("it's $HOME `x`"), r"'it'\''s $HOME `x`'");
    }
}
