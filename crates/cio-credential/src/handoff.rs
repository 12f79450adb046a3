//! Handing a credential set to the backup engine (restic), as environment variables.
//!
//! Rules:
//! - only a complete set is handed over: never a backup with half a set (the set is chosen
//!   by [`crate::sets::select`] with [`crate::sets::Purpose::Use`]);
//! - the values go into the engine's environment only (never argv, never a file); variables
//!   that would override or conflict with them (a session token, password files) are removed.

use crate::catalog::{Field, SetId};
use crate::credentials::CredentialStore;
use crate::error::Result;
use crate::secret::SecretValue;
use crate::sets::{Purpose, SetFilter, SetValues};

/// The variable restic reads for a field; `None` for the CA certificate, which restic 0.14
/// reads from no variable.
pub fn variable(field: Field) -> Option<&'static str> {
    match field {
        Field::BackupRepo => Some("RESTIC_REPOSITORY"),
        Field::AccessKey => Some("AWS_ACCESS_KEY_ID"),
        Field::SecretKey => Some("AWS_SECRET_ACCESS_KEY"),
        Field::BackupPassword => Some("RESTIC_PASSWORD"),
        // restic 0.14 reads the region from here when `-o s3.region` is not given.
        Field::Region => Some("AWS_DEFAULT_REGION"),
        Field::Cacert => None,
    }
}

/// cio's own secrets (the etcd user and password of the cluster store): removed from the
/// environment of every child cio starts (`exec`'s command, restic), which has no use for
/// them. `env` leaves them alone: its output runs in the caller's shell, where they were
/// already, and unsetting them there would only break the caller's next cio command.
pub const CIO_SECRETS: &[&str] = &["CIO_ETCD_USER", "CIO_ETCD_PASSWORD"];

/// Variables that would override or conflict with a set's, so that restic sees exactly the
/// set and acts as `validate` checked (which reads none of them); removed from a child's
/// environment with [`CIO_SECRETS`], and unset by `env`:
/// - AWS settings that would change the region, profile, credentials or trusted
///   certificates the child uses (a session token for other keys, a caller's region);
/// - restic's variables that change the repository, its password or the keys tried
///   (`RESTIC_KEY_HINT` stays: it only chooses which key to try first), including those of
///   `--from-repo` and the TLS settings of later restic versions.
pub const OVERRIDING: &[&str] = &[
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CA_BUNDLE",
    "RESTIC_REPOSITORY_FILE",
    "RESTIC_PASSWORD_FILE",
    "RESTIC_PASSWORD_COMMAND",
    "RESTIC_FROM_REPOSITORY",
    "RESTIC_FROM_REPOSITORY_FILE",
    "RESTIC_FROM_PASSWORD",
    "RESTIC_FROM_PASSWORD_FILE",
    "RESTIC_FROM_PASSWORD_COMMAND",
    "RESTIC_FROM_KEY_HINT",
    "RESTIC_CACERT",
    "RESTIC_TLS_CLIENT_CERT",
];

/// Every variable removed from the environment of a child cio starts: [`CIO_SECRETS`] and
/// [`OVERRIDING`].
pub fn cleared() -> impl Iterator<Item = &'static str> {
    CIO_SECRETS.iter().chain(OVERRIDING).copied()
}

/// A set's values as the variables restic reads.
pub struct Handoff {
    pub set: SetId,
    /// (variable, value), in field order.
    pub vars: Vec<(&'static str, SecretValue)>,
    /// The set's CA certificate (PEM), which restic reads from no variable of its own: a
    /// caller hands it with [`crate::CaHandoff`] (`SSL_CERT_FILE=/dev/fd/N`).
    pub cacert: Option<SecretValue>,
}

impl std::fmt::Debug for Handoff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<_> = self.vars.iter().map(|(k, _)| *k).collect();
        write!(f, "Handoff({}, {names:?})", self.set)
    }
}

impl From<SetValues> for Handoff {
    /// The values that exist, each under its variable.
    fn from(values: SetValues) -> Handoff {
        let SetValues {
            set,
            backup_repo,
            access_key,
            secret_key,
            backup_password,
            region,
            cacert,
        } = values;
        let fields = [
            (Field::BackupRepo, backup_repo),
            (Field::AccessKey, access_key),
            (Field::SecretKey, secret_key),
            (Field::BackupPassword, backup_password),
            (Field::Region, region),
        ];
        let vars = fields
            .into_iter()
            .filter_map(|(field, value)| Some((variable(field)?, value?)))
            .collect();
        Handoff { set, vars, cacert }
    }
}

impl CredentialStore {
    /// The one complete set `filter` means, as restic's variables (see
    /// [`crate::sets::select`] with [`Purpose::Use`] for the choice and its errors).
    pub fn handoff(&self, filter: &SetFilter) -> Result<Handoff> {
        let values = self
            .sets(filter, Purpose::Use)?
            .pop()
            .expect("select() gives exactly one set for Purpose::Use, or an error");
        Ok(Handoff::from(values))
    }
}

/// Quotes a value for a POSIX shell: single quotes, with `'` written as `'\''`.
pub fn sh_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Provider, Role};

    #[test]
    fn a_set_becomes_restic_variables_in_field_order() {
        let set = SetId {
            provider: Provider::Minio,
            role: Role::Primary,
        };
        let mut values = SetValues::empty(set);
        values.set_field(
            Field::BackupPassword,
            SecretValue::new("a long password".into()),
        );
        values.set_field(Field::BackupRepo, SecretValue::new("s3:http://h/b".into()));
        values.set_field(Field::SecretKey, SecretValue::new("minio-secret".into()));
        values.set_field(Field::AccessKey, SecretValue::new("minio".into()));
        values.set_field(Field::Region, SecretValue::new("nl-ams".into()));
        values.set_field(Field::Cacert, SecretValue::new("PEM".into()));
        let h = Handoff::from(values);
        let vars: Vec<_> = h.vars.iter().map(|(k, v)| (*k, v.expose())).collect();
        assert_eq!(
            vars,
            vec![
                ("RESTIC_REPOSITORY", "s3:http://h/b"),
                ("AWS_ACCESS_KEY_ID", "minio"),
                ("AWS_SECRET_ACCESS_KEY", "minio-secret"),
                ("RESTIC_PASSWORD", "a long password"),
                ("AWS_DEFAULT_REGION", "nl-ams"),
            ]
        );
        assert!(!format!("{h:?}").contains("minio-secret"));
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(sh_quote("plain"), "'plain'");
        assert_eq!(sh_quote("it's $HOME `x`"), r"'it'\''s $HOME `x`'");
    }
}
