//! Sets, the unit every command that uses credentials works in: what a store holds without
//! opening a value ([`Listing`]), what a set has and lacks ([`SetStatus`]), a set's values by
//! field ([`SetValues`]), and which sets a command means ([`select`]).
//!
//! Rules:
//! - which names of a set are missing is decided here once, by [`SetStatus::of`]: `list`,
//!   `validate`, `exec` and `env` all show the same answer;
//! - choosing sets needs no value: [`select`] works on a [`Listing`], so only the chosen sets'
//!   values are ever opened, each once;
//! - `validate` ([`Purpose::Check`]) takes every set the filter matches that has any
//!   credential, complete or not; `exec` and `env` ([`Purpose::Use`]) take exactly one complete
//!   set, and an error that lists the choices otherwise.
//!
//! Everything here is a pure function of its arguments: no store, no key.

use crate::catalog::{CredentialName, Field, Provider, Role, SetId};
use crate::error::{Error, Result, list_names};
use crate::secret::SecretValue;
use crate::store::Action;

/// A live credential as the store lists it, its value not opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub name: CredentialName,
    /// 1 for the first write of the name, one more for each write since.
    pub version: u64,
    /// What the latest write did (never [`Action::Remove`]: a removed name is not live).
    pub action: Action,
    /// When the latest write happened, in milliseconds since the Unix epoch.
    pub updated_ms: i64,
}

/// The live credentials of a store, in catalog order, without their values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    credentials: Vec<Stored>,
}

impl FromIterator<Stored> for Listing {
    fn from_iter<I: IntoIterator<Item = Stored>>(iter: I) -> Listing {
        let mut credentials: Vec<Stored> = iter.into_iter().collect();
        credentials.sort_by_key(|s| s.name);
        Listing { credentials }
    }
}

impl Listing {
    /// Every live credential, in catalog order.
    pub fn credentials(&self) -> &[Stored] {
        &self.credentials
    }

    /// Whether `name` is live.
    pub fn contains(&self, name: CredentialName) -> bool {
        self.credentials.iter().any(|s| s.name == name)
    }

    /// What `set` has and lacks.
    pub fn set(&self, set: SetId) -> SetStatus {
        SetStatus::of(set, |name| self.contains(name))
    }

    /// The version (and write time) of each live credential of `set`: what a check of the
    /// set was made on.
    pub fn versions(&self, set: SetId) -> SetVersions {
        SetVersions(
            self.credentials
                .iter()
                .filter(|s| s.name.set() == set)
                .map(|s| (s.name.to_string(), (s.version, s.updated_ms)))
                .collect(),
        )
    }

    /// Every set that has at least one live credential, in catalog order.
    pub fn sets(&self) -> Vec<SetStatus> {
        SetId::all()
            .map(|set| self.set(set))
            .filter(|status| !status.is_empty())
            .collect()
    }
}

/// Each live credential of one set as one reading of the store saw it: credential name to
/// (version, when it was written, in milliseconds since the Unix epoch). The time tells a
/// name purged and created again, whose versions start over, from the one checked. Kept
/// with a recorded check (`validate --record`) so that `list` can tell a check of the
/// values it shows from a check of earlier ones.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct SetVersions(std::collections::BTreeMap<String, (u64, i64)>);

/// What a set has and lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetStatus {
    pub set: SetId,
    /// The set's names that have no live value, in field order.
    pub missing: Vec<CredentialName>,
}

impl SetStatus {
    /// The status of `set` when `has` tells which names are live: the one place that decides
    /// what a set is missing.
    pub fn of(set: SetId, has: impl Fn(CredentialName) -> bool) -> SetStatus {
        SetStatus {
            set,
            missing: set.names().into_iter().filter(|n| !has(*n)).collect(),
        }
    }

    /// Every name of the set is live.
    pub fn is_complete(&self) -> bool {
        self.missing.is_empty()
    }

    /// No name of the set is live.
    pub fn is_empty(&self) -> bool {
        self.missing.len() == self.set.names().len()
    }
}

/// A set's values, one field each; `None` where the credential does not exist.
pub struct SetValues {
    pub set: SetId,
    /// The restic repository URL (`s3:...`).
    pub backup_repo: Option<SecretValue>,
    /// The S3 access key id of the backup user.
    pub access_key: Option<SecretValue>,
    /// The S3 secret access key of the backup user.
    pub secret_key: Option<SecretValue>,
    /// The restic repository password.
    pub backup_password: Option<SecretValue>,
    /// Optional: the S3 signing region.
    pub region: Option<SecretValue>,
    /// Optional: PEM text of the CA (or self-signed) certificate the endpoint is trusted by.
    pub cacert: Option<SecretValue>,
}

impl std::fmt::Debug for SetValues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let present: Vec<&str> = Field::ALL
            .into_iter()
            .filter(|field| self.get(*field).is_some())
            .map(Field::as_str)
            .collect();
        write!(f, "SetValues({}, present: {present:?})", self.set)
    }
}

impl SetValues {
    /// A set with no value yet.
    pub fn empty(set: SetId) -> SetValues {
        SetValues {
            set,
            backup_repo: None,
            access_key: None,
            secret_key: None,
            backup_password: None,
            region: None,
            cacert: None,
        }
    }

    /// The value of `field`, if it exists.
    pub fn get(&self, field: Field) -> Option<&SecretValue> {
        match field {
            Field::BackupRepo => self.backup_repo.as_ref(),
            Field::AccessKey => self.access_key.as_ref(),
            Field::SecretKey => self.secret_key.as_ref(),
            Field::BackupPassword => self.backup_password.as_ref(),
            Field::Region => self.region.as_ref(),
            Field::Cacert => self.cacert.as_ref(),
        }
    }

    /// Sets the value of `field`.
    pub fn set_field(&mut self, field: Field, value: SecretValue) {
        let slot = match field {
            Field::BackupRepo => &mut self.backup_repo,
            Field::AccessKey => &mut self.access_key,
            Field::SecretKey => &mut self.secret_key,
            Field::BackupPassword => &mut self.backup_password,
            Field::Region => &mut self.region,
            Field::Cacert => &mut self.cacert,
        };
        *slot = Some(value);
    }

    /// What the set has and lacks.
    pub fn status(&self) -> SetStatus {
        SetStatus::of(self.set, |name| self.get(name.field).is_some())
    }

    /// The values that exist, with their names, in field order (optional fields last).
    pub fn present(&self) -> impl Iterator<Item = (CredentialName, &SecretValue)> {
        Field::ALL
            .into_iter()
            .filter_map(|field| self.get(field).map(|value| (self.set.name(field), value)))
    }
}

/// Which sets a command names; `None` matches any.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SetFilter {
    /// The set of this credential only (it must exist).
    pub name: Option<CredentialName>,
    pub provider: Option<Provider>,
    pub role: Option<Role>,
}

impl SetFilter {
    fn matches(&self, set: SetId) -> bool {
        self.name.is_none_or(|n| n.set() == set)
            && self.provider.is_none_or(|p| p == set.provider)
            && self.role.is_none_or(|r| r == set.role)
    }
}

/// What the chosen sets are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// To be checked (`validate`): every matching set that has any credential.
    Check,
    /// To be handed to the backup engine (`exec`, `env`): the one complete matching set.
    Use,
}

/// The sets `filter` means for `purpose`, in catalog order, decided on `listing` alone.
///
/// Errors: [`Error::NotFound`] when the filter's name does not exist; for
/// [`Purpose::Check`], [`Error::NoSuchSet`] when no set matches; for [`Purpose::Use`],
/// [`Error::IncompleteSet`] when the one set meant lacks names, [`Error::NoSuchSet`]
/// (listing what each lacks) when none is complete, and [`Error::SeveralSets`] (listing the
/// choices) when several are.
pub fn select(listing: &Listing, filter: &SetFilter, purpose: Purpose) -> Result<Vec<SetId>> {
    if let Some(name) = filter.name
        && !listing.contains(name)
    {
        return Err(Error::NotFound { name });
    }
    let matching: Vec<SetStatus> = SetId::all()
        .filter(|set| filter.matches(*set))
        .map(|set| listing.set(set))
        .collect();
    match purpose {
        Purpose::Check => {
            let sets: Vec<SetId> = matching
                .iter()
                .filter(|s| !s.is_empty())
                .map(|s| s.set)
                .collect();
            if sets.is_empty() {
                return Err(Error::NoSuchSet(
                    "there are no credentials to validate (of the provider and role asked)".into(),
                ));
            }
            Ok(sets)
        }
        Purpose::Use => the_complete_one(matching, filter).map(|set| vec![set]),
    }
}

/// The one complete set among `matching`, or why there is none.
fn the_complete_one(matching: Vec<SetStatus>, filter: &SetFilter) -> Result<SetId> {
    let named = filter.provider.is_some() || filter.name.is_some();
    let (complete, partial): (Vec<SetStatus>, Vec<SetStatus>) =
        matching.into_iter().partition(SetStatus::is_complete);
    // A set with no credential is no choice, unless the command named it.
    let mut partial: Vec<SetStatus> = partial
        .into_iter()
        .filter(|s| named || !s.is_empty())
        .collect();
    let role = filter.role.map_or(String::new(), |r| format!("{r} "));
    match (complete.as_slice(), partial.len()) {
        ([one], _) => Ok(one.set),
        ([], 1) => {
            let status = partial.remove(0);
            Err(Error::IncompleteSet {
                set: status.set,
                missing: status.missing,
            })
        }
        ([], 0) => Err(Error::NoSuchSet(format!(
            "there is no {role}set: create its four credentials (cio_{{aws|minio}}{}_backup_repo, ...) first",
            match filter.role {
                Some(Role::Primary) => "",
                Some(Role::Alternate) => "_alt",
                None => "[_alt]",
            }
        ))),
        ([], _) => Err(Error::NoSuchSet(format!(
            "no {role}set is complete: {}",
            partial
                .iter()
                .map(|s| format!(
                    "{} lacks {}",
                    describe(s.set, filter),
                    list_names(&s.missing)
                ))
                .collect::<Vec<_>>()
                .join("; ")
        ))),
        (several, _) => Err(Error::SeveralSets(format!(
            "{}{} {role}sets are complete: choose one with {}",
            if several.len() == 2 { "both " } else { "" },
            several
                .iter()
                .map(|s| format!("the {}", describe(s.set, filter)))
                .collect::<Vec<_>>()
                .join(" and "),
            several
                .iter()
                .map(|s| choice(s.set, filter))
                .collect::<Vec<_>>()
                .join(" or ")
        ))),
    }
}

/// A set as the messages name it: the provider alone when the role was asked for.
fn describe(set: SetId, filter: &SetFilter) -> String {
    match filter.role {
        Some(_) => set.provider.to_string(),
        None => set.to_string(),
    }
}

/// The options that name `set` among sets the filter matched.
fn choice(set: SetId, filter: &SetFilter) -> String {
    match (filter.role, set.role) {
        (None, Role::Alternate) => format!("--provider {} --alternate", set.provider),
        _ => format!("--provider {}", set.provider),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(names: &[&str]) -> Listing {
        names
            .iter()
            .map(|n| Stored {
                name: n.parse().unwrap(),
                version: 1,
                action: Action::Create,
                updated_ms: 0,
            })
            .collect()
    }

    fn set_of(provider: Provider, role: Role) -> SetId {
        SetId { provider, role }
    }

    fn full(prefix: &str) -> Vec<String> {
        ["backup_repo", "access_key", "secret_key", "backup_password"]
            .iter()
            .map(|f| format!("{prefix}_{f}"))
            .collect()
    }

    fn use_primary(l: &Listing, provider: Option<Provider>) -> Result<Vec<SetId>> {
        let filter = SetFilter {
            provider,
            role: Some(Role::Primary),
            ..SetFilter::default()
        };
        select(l, &filter, Purpose::Use)
    }

    #[test]
    fn missing_names_are_in_field_order_and_sets_in_catalog_order() {
        let l = listing(&["cio_minio_secret_key", "cio_aws_alt_access_key"]);
        let sets = l.sets();
        assert_eq!(
            sets.iter().map(|s| s.set.to_string()).collect::<Vec<_>>(),
            ["aws alternate", "minio primary"]
        );
        assert_eq!(
            sets[1]
                .missing
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            [
                "cio_minio_backup_repo",
                "cio_minio_access_key",
                "cio_minio_backup_password"
            ]
        );
        assert!(l.set(set_of(Provider::Aws, Role::Primary)).is_empty());
    }

    #[test]
    fn use_takes_the_only_complete_set_and_names_what_is_missing() {
        let none = listing(&[]);
        assert_eq!(
            use_primary(&none, None).unwrap_err().to_string(),
            "there is no primary set: create its four credentials (cio_{aws|minio}_backup_repo, ...) first"
        );
        let one_key = listing(&["cio_aws_access_key"]);
        assert_eq!(
            use_primary(&one_key, None).unwrap_err().to_string(),
            "the aws primary set is incomplete: missing cio_aws_backup_repo, cio_aws_secret_key, cio_aws_backup_password"
        );
        let mut names = full("cio_minio");
        names.push("cio_aws_access_key".into());
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let l = listing(&names);
        assert_eq!(
            use_primary(&l, None).unwrap(),
            [set_of(Provider::Minio, Role::Primary)]
        );
        assert!(matches!(
            use_primary(&l, Some(Provider::Aws)),
            Err(Error::IncompleteSet { .. })
        ));
        let alternate = SetFilter {
            role: Some(Role::Alternate),
            ..SetFilter::default()
        };
        assert!(select(&l, &alternate, Purpose::Use).is_err());
    }

    #[test]
    fn use_refuses_two_complete_sets_and_two_partial_ones() {
        let mut names = full("cio_minio");
        names.extend(full("cio_aws"));
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        assert_eq!(
            use_primary(&listing(&names), None).unwrap_err().to_string(),
            "both the aws and the minio primary sets are complete: choose one with --provider aws or --provider minio"
        );
        let l = listing(&["cio_aws_access_key", "cio_minio_backup_repo"]);
        assert_eq!(
            use_primary(&l, None).unwrap_err().to_string(),
            "no primary set is complete: aws lacks cio_aws_backup_repo, cio_aws_secret_key, cio_aws_backup_password; \
             minio lacks cio_minio_access_key, cio_minio_secret_key, cio_minio_backup_password"
        );
    }

    #[test]
    fn check_takes_every_matching_set_with_a_credential() {
        let l = listing(&[
            "cio_aws_access_key",
            "cio_minio_alt_backup_repo",
            "cio_minio_secret_key",
        ]);
        let all = select(&l, &SetFilter::default(), Purpose::Check).unwrap();
        assert_eq!(
            all.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["aws primary", "minio primary", "minio alternate"]
        );
        let minio_alt = SetFilter {
            provider: Some(Provider::Minio),
            role: Some(Role::Alternate),
            ..SetFilter::default()
        };
        assert_eq!(
            select(&l, &minio_alt, Purpose::Check).unwrap(),
            [set_of(Provider::Minio, Role::Alternate)]
        );
        let aws_alt = SetFilter {
            provider: Some(Provider::Aws),
            role: Some(Role::Alternate),
            ..SetFilter::default()
        };
        assert!(matches!(
            select(&l, &aws_alt, Purpose::Check),
            Err(Error::NoSuchSet(_))
        ));
        let by_name = SetFilter {
            name: Some("cio_minio_secret_key".parse().unwrap()),
            ..SetFilter::default()
        };
        assert_eq!(
            select(&l, &by_name, Purpose::Check).unwrap(),
            [set_of(Provider::Minio, Role::Primary)]
        );
        let absent = SetFilter {
            name: Some("cio_aws_secret_key".parse().unwrap()),
            ..SetFilter::default()
        };
        assert!(matches!(
            select(&l, &absent, Purpose::Check),
            Err(Error::NotFound { .. })
        ));
    }

    #[test]
    fn values_know_what_they_lack_and_never_show_a_value() {
        let set = set_of(Provider::Aws, Role::Primary);
        let mut values = SetValues::empty(set);
        values.set_field(
            Field::SecretKey,
            SecretValue::new("very-secret-value".into()),
        );
        assert_eq!(
            values.status(),
            SetStatus::of(set, |n| n.field == Field::SecretKey)
        );
        assert_eq!(values.present().count(), 1);
        let debug = format!("{values:?}");
        assert!(!debug.contains("very-secret"), "{debug}");
        assert!(debug.contains("secret_key"), "{debug}");
    }
}
