//! How old secrets are: `list` shows it, `validate` warns (`key_old`) past
//! `max_key_age_days`. The old values are written by cio itself under libfaketime
//! (`faketime -f -2401h cio ...`): a real clock shift, not an edited store.

use crate::util::*;

/// `cio credential create NAME` with `value` on standard input, run 100 days and an hour in
/// the past: the hour keeps the age at 100 days when the test machine's clock is stepped
/// back between the write and the reading (a CI machine just booted, syncing its clock,
/// once read 99 days).
fn create_100_days_ago(env: &TestEnv, name: &str, value: &str) {
    let out = std::process::Command::new(testkit::require_binary("faketime"))
        // libfaketime's relative offset, exactly 2401 hours: no date parsing, no time zone.
        .args(["-f", "-2401h"])
        .arg(assert_cmd::cargo::cargo_bin("cio"))
        .args(["credential", "create", name, value])
        .env_clear()
        .env("HOME", env.home())
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("CIO_STORE", env.store())
        .env("CIO_KEY_FILE", env.key())
        .env("CIO_CONFIG", env.config())
        .output()
        .expect("running cio under faketime");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An aws set whose access key and password were set 100 days ago.
fn aged_set() -> TestEnv {
    let env = TestEnv::new();
    env.create("cio_aws_backup_repo", REF_REPO);
    create_100_days_ago(&env, "cio_aws_access_key", REF_ACCESS);
    env.create("cio_aws_secret_key", REF_SECRET);
    create_100_days_ago(
        &env,
        "cio_aws_backup_password",
        "a long repository password",
    );
    env
}

fn key_old_details(env: &TestEnv) -> Vec<String> {
    let out = env
        .cio(&["credential", "validate", "--offline", "--json"])
        .success();
    let doc: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    doc["sets"][0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["code"] == "key_old")
        .map(|c| {
            assert_eq!(
                (&c["step"], &c["status"]),
                (&"rules".into(), &"warn".into())
            );
            c["detail"].as_str().unwrap().to_string()
        })
        .collect()
}

#[test]
fn list_shows_ages_and_validate_warns_past_the_limit() {
    let env = aged_set();
    let text = stdout(&env.cio(&["credential", "list"]).success());
    let age_of = |name: &str| {
        let line = text.lines().find(|l| l.starts_with(name)).unwrap();
        // AGE is the column before CHECKED, which is "never" here (no validate --record).
        let fields: Vec<_> = line.split_whitespace().collect();
        assert_eq!(fields.last(), Some(&"never"), "{line}");
        fields[fields.len() - 2].to_string()
    };
    assert_eq!(age_of("cio_aws_access_key "), "100d");
    assert_eq!(age_of("cio_aws_secret_key "), "<1m");
    let out = env.cio(&["credential", "list", "--json"]).success();
    let doc: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let ages: Vec<_> = doc["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["age_days"].as_u64().unwrap())
        .collect();
    assert_eq!(ages, [0, 100, 0, 100]);

    // The default limit, 90 days: the access key and the password (not the secret key).
    assert_eq!(
        key_old_details(&env),
        [
            "cio_aws_access_key was set 100 days ago, more than max_key_age_days (90); rotate it with 'cio credential rotate --provider aws --access-key'",
            "cio_aws_backup_password was set 100 days ago, more than max_key_age_days (90); rotate it with 'cio credential rotate cio_aws_backup_password'",
        ]
    );
    // Text: a warning, and validate still passes.
    let text = stdout(&env.cio(&["credential", "validate", "--offline"]).success());
    let line = text
        .lines()
        .find(|l| l.contains("cio_aws_access_key was set 100 days ago"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.starts_with("  warn  rules "), "{text}");

    // cio.toml: a higher limit, or 0, says nothing.
    std::fs::write(env.config(), "max_key_age_days = 120\n").unwrap();
    assert!(key_old_details(&env).is_empty());
    std::fs::write(env.config(), "max_key_age_days = 0\n").unwrap();
    assert!(key_old_details(&env).is_empty());
    std::fs::write(env.config(), "max_key_age_days = 30\n").unwrap();
    assert_eq!(key_old_details(&env).len(), 2);
    // A value that is not a number of days is the file's error, exit 2.
    std::fs::write(env.config(), "max_key_age_days = \"ninety\"\n").unwrap();
    let out = env.cio(&["credential", "validate", "--offline"]).code(2);
    assert!(
        stderr(&out).contains("and max_key_age_days (a number of days)"),
        "{}",
        stderr(&out)
    );
}
