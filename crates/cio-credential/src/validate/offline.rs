//! Steps 1 and 2, without network: are all four names there, and does each value follow the
//! catalog's rules.

use super::{Check, Report, Status, Step};
use crate::catalog::{Allow, Field, RepoUrl, check_value};
use crate::secret::SecretValue;
use crate::sets::SetValues;

/// The values the live steps need, checked.
pub(super) struct Values<'a> {
    pub repo: RepoUrl,
    pub access_key: &'a SecretValue,
    pub secret_key: &'a SecretValue,
    pub password: &'a SecretValue,
    pub region: Option<&'a str>,
    pub cacert: Option<&'a SecretValue>,
}

/// Runs completeness and rules into `report`; `Some` when the live steps may run.
pub(super) fn check<'a>(values: &'a SetValues, report: &mut Report) -> Option<Values<'a>> {
    let set = values.set;
    let names = set.names();
    let missing = values.status().missing;
    if let Some(first) = missing.first() {
        let missing: Vec<String> = missing.iter().map(ToString::to_string).collect();
        report.push(Check::fail(
            Step::Completeness,
            "incomplete",
            format!(
                "missing {}: create {} with 'cio credential create {first}'",
                missing.join(", "),
                if missing.len() == 1 { "it" } else { "them" },
            ),
        ));
        return None;
    }
    let (Some(repo), Some(access_key), Some(secret_key), Some(password)) = (
        values.backup_repo.as_ref(),
        values.access_key.as_ref(),
        values.secret_key.as_ref(),
        values.backup_password.as_ref(),
    ) else {
        return None;
    };
    report.push(Check::ok(
        Step::Completeness,
        format!("all 4 credentials of the {set} set exist"),
    ));

    let mut any_problem = false;
    let mut failed = false;
    // The optional region and CA certificate follow their rules too, when they exist.
    let optional = [
        (Field::Region, values.region.as_ref()),
        (Field::Cacert, values.cacert.as_ref()),
    ];
    let checked = names
        .iter()
        .copied()
        .zip([repo, access_key, secret_key, password])
        .chain(
            optional
                .into_iter()
                .filter_map(|(field, v)| v.map(|v| (set.name(field), v))),
        );
    for (name, value) in checked {
        // A stored password with white space or other characters the default refuses got
        // there through a create override: it is what restic uses, so validate warns
        // (`whitespace_kept`, `characters_kept`) instead of failing.
        let stored = Allow {
            whitespace: true,
            any_character: true,
        };
        match check_value(name, value.expose(), stored) {
            Ok(warnings) => {
                for w in warnings {
                    any_problem = true;
                    report.push(Check::new(
                        Step::Rules,
                        Status::Warn,
                        w.code(),
                        format!("{name}: {w}"),
                    ));
                }
            }
            Err(violation) => {
                any_problem = true;
                failed = true;
                report.push(Check::fail(
                    Step::Rules,
                    "invalid_value",
                    format!("{name}: {violation}; replace it with 'cio credential create {name}'"),
                ));
            }
        }
    }
    if failed {
        return None;
    }
    if !any_problem {
        report.push(Check::ok(Step::Rules, "all 4 values follow the rules"));
    }
    // check_value accepted the URL, so it parses.
    let repo = RepoUrl::parse(repo.expose()).ok()?;
    Some(Values {
        repo,
        access_key,
        secret_key,
        password,
        region: values.region.as_ref().map(SecretValue::expose),
        cacert: values.cacert.as_ref(),
    })
}
