//! `validate --offline`: completeness and value rules for the 16 required names, no network.

use cio_credential::{
    CredentialName, Field, Provider, SecretValue, SetId, SetReport, SetValues, Status, Step,
    ValidateOptions, validate_set,
};

fn offline() -> ValidateOptions {
    ValidateOptions {
        offline: true,
        ..ValidateOptions::default()
    }
}

/// Good values for a set: no rule broken, no warning.
fn good(set: SetId) -> [SecretValue; 4] {
    let v = match set.provider {
        Provider::Aws => [
            "s3:https://s3.amazonaws.com/backup-123",
            "AKIAYHD623GGZX7VDFMJ",
            "0aC91tg8AVlJoqVqH1vag4YX9NOjcT9hGSWq8vZd",
            "a long repository password",
        ],
        Provider::Minio => [
            "s3:https://minio.example:9000/backups/cluster1",
            "backup-user",
            "minio-secret-key",
            "a long repository password",
        ],
    };
    v.map(|s| SecretValue::new(s.to_string()))
}

/// A value that breaks `field`'s rule, and the detail validate must give.
fn bad(name: CredentialName) -> (&'static str, String) {
    let (value, why) = match (name.field, name.provider) {
        (Field::BackupRepo, _) => (
            "https://minio/bucket",
            "a repository URL starts with 's3:' (restic's S3 repository syntax); put 's3:' in front of it, as in s3:https://HOST/BUCKET",
        ),
        (Field::AccessKey, Provider::Aws) => (
            "AKIA123",
            "an AWS access key is 16 to 128 uppercase letters and digits (like AKIAIOSFODNN7EXAMPLE); this one is 7 characters",
        ),
        (Field::AccessKey, Provider::Minio) => (
            "Z#",
            "a MinIO access key is at least 3 characters; this one is 2",
        ),
        (Field::SecretKey, Provider::Aws) => (
            "XQ9Z7TZ7",
            "an AWS secret key is exactly 40 characters; this one is 8",
        ),
        (Field::SecretKey, Provider::Minio) => (
            "Qz#5x",
            "a MinIO secret key is at least 8 characters; this one is 5",
        ),
        // The password; only required names come here. A stored password with any other
        // character got there through --allow-any-character, and validate warns of it.
        _ => (
            "pass\0word",
            "the value contains a NUL character at position 5, which no environment variable can hold, so restic could never be given it",
        ),
    };
    (
        value,
        format!("{name}: {why}; replace it with 'cio credential create {name}'"),
    )
}

/// Validates `set` with `v`, its values in field order (`None`: missing).
fn run(set: SetId, v: [Option<&SecretValue>; 4]) -> SetReport {
    let mut values = SetValues::empty(set);
    for (field, value) in Field::ALL.into_iter().zip(v) {
        if let Some(value) = value {
            values.set_field(field, SecretValue::new(value.expose().to_string()));
        }
    }
    validate_set(&values, &offline())
}

/// The report for `values` (in field order) of `set`.
fn run_values(set: SetId, values: [&str; 4]) -> SetReport {
    let v = values.map(|s| SecretValue::new(s.to_string()));
    run(set, [0, 1, 2, 3].map(|i| Some(&v[i])))
}

/// The rules step's checks: status, code, detail.
fn rule_checks(r: &SetReport) -> Vec<(Status, &'static str, &str)> {
    r.checks
        .iter()
        .filter(|c| c.step == Step::Rules)
        .map(|c| (c.status, c.code, c.detail.as_str()))
        .collect()
}

fn statuses(r: &SetReport) -> Vec<(Step, Status, &'static str)> {
    r.checks
        .iter()
        .map(|c| (c.step, c.status, c.code))
        .collect()
}

#[test]
fn good_values_pass_offline_and_the_live_steps_are_not_run() {
    for set in SetId::all() {
        let v = good(set);
        let report = run(set, [0, 1, 2, 3].map(|i| Some(&v[i])));
        let mut expected = vec![
            (Step::Completeness, Status::Ok, "ok"),
            (Step::Rules, Status::Ok, "ok"),
        ];
        expected.extend(
            Step::ALL[2..]
                .iter()
                .map(|&s| (s, Status::Skipped, "offline")),
        );
        assert_eq!(statuses(&report), expected, "{set}");
        assert_eq!(
            report.check(Step::Completeness).map(|c| c.detail.as_str()),
            Some(format!("all 4 credentials of the {set} set exist").as_str())
        );
        assert_eq!(
            report.check(Step::Endpoint).map(|c| c.detail.as_str()),
            Some("not checked offline")
        );
        assert!(report.passed());
    }
}

#[test]
fn each_of_the_16_names_missing_is_named() {
    for name in CredentialName::all().filter(|n| n.field.is_required()) {
        let set = name.set();
        let v = good(set);
        let mut values = [0, 1, 2, 3].map(|i| Some(&v[i]));
        let index = Field::REQUIRED
            .iter()
            .position(|f| *f == name.field)
            .expect("a field");
        values[index] = None;
        let report = run(set, values);
        let first = &report.checks[0];
        assert_eq!(
            (first.step, first.status, first.code),
            (Step::Completeness, Status::Fail, "incomplete")
        );
        assert_eq!(
            first.detail,
            format!("missing {name}: create it with 'cio credential create {name}'")
        );
        assert!(
            report.checks[1..]
                .iter()
                .all(|c| c.status == Status::Skipped && c.code == "skipped"),
            "{report:#?}"
        );
        assert!(!report.passed());
    }
}

#[test]
fn an_empty_set_lists_all_four_names() {
    let set = SetId::all().nth(3).expect("four sets");
    let report = run(set, [None, None, None, None]);
    assert_eq!(
        report.checks[0].detail,
        "missing cio_minio_alt_backup_repo, cio_minio_alt_access_key, cio_minio_alt_secret_key, cio_minio_alt_backup_password: create them with 'cio credential create cio_minio_alt_backup_repo'"
    );
}

#[test]
fn each_of_the_16_names_with_a_bad_value_fails_the_rules_without_showing_it() {
    for name in CredentialName::all().filter(|n| n.field.is_required()) {
        let set = name.set();
        let (value, detail) = bad(name);
        let bad_value = SecretValue::new(value.to_string());
        let v = good(set);
        let mut values = [0, 1, 2, 3].map(|i| Some(&v[i]));
        let index = Field::REQUIRED
            .iter()
            .position(|f| *f == name.field)
            .expect("a field");
        values[index] = Some(&bad_value);
        let report = run(set, values);
        let rules: Vec<_> = report
            .checks
            .iter()
            .filter(|c| c.step == Step::Rules)
            .collect();
        assert_eq!(rules.len(), 1, "{report:#?}");
        assert_eq!(
            (rules[0].status, rules[0].code),
            (Status::Fail, "invalid_value")
        );
        assert_eq!(rules[0].detail, detail);
        if name.field.is_secret() {
            let json = serde_json::to_string(&report).expect("serializes");
            assert!(!json.contains(value.trim()), "{json}");
        }
        assert!(!report.passed());
    }
}

#[test]
fn warnings_do_not_stop_the_run() {
    let set = SetId::all().next().expect("aws primary");
    let report = run_values(
        set,
        [
            "s3:http://s3.amazonaws.com/backup-123",
            "ASIAYHD623GGZX7VDFMJ",
            "0aC91tg8AVlJoqVqH1vag4YX9NOjcT9hGSWq8vZd",
            "password",
        ],
    );
    let rules: Vec<_> = rule_checks(&report)
        .into_iter()
        .map(|(status, code, _)| (status, code))
        .collect();
    assert_eq!(
        rules,
        vec![
            (Status::Warn, "plain_http"),
            (Status::Warn, "temporary_key"),
            (Status::Warn, "well_known_password"),
            (Status::Warn, "short_password"),
        ]
    );
    assert_eq!(report.status(), Status::Warn);
    assert!(report.passed());
    let json = serde_json::to_string(&report).expect("serializes");
    assert!(
        json.contains(r#""step":"rules","status":"warn","code":"plain_http""#),
        "{json}"
    );
    assert!(
        json.contains(r#""set":{"provider":"aws","role":"primary"}"#),
        "{json}"
    );
}

/// A password stored with `--allow-whitespace` and an old bucket name are what restic uses:
/// validate warns, it does not fail.
#[test]
fn values_restic_accepts_but_cio_doubts_warn() {
    let set = SetId::all().nth(1).expect("aws alternate");
    let report = run_values(
        set,
        [
            "s3:https://s3.amazonaws.com/Old_Bucket/cluster2",
            "AKIAYHD623GGZX7VDFMJ",
            "0aC91tg8AVlJoqVqH1vag4YX9NOjcT9hGSWq8vZd",
            "  another cluster's\tpassword ",
        ],
    );
    assert_eq!(
        rule_checks(&report),
        vec![
            (
                Status::Warn,
                "legacy_bucket_name",
                "cio_aws_alt_backup_repo: the bucket name has capitals, '_' or ':', which AWS no longer allows for new buckets: it works for an existing bucket, but 'restic init' cannot create it"
            ),
            (
                Status::Warn,
                "whitespace_kept",
                "cio_aws_alt_backup_password: the repository password starts or ends with white space or holds a tab, kept as given (--allow-whitespace): restic needs exactly these characters"
            ),
        ]
    );
    assert!(report.passed());
}
