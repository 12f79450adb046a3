//! The help text of every level, kept as snapshots: a change to the user-facing text is a
//! visible diff in review.

use crate::util::*;

#[test]
fn help_of_every_command() {
    let env = TestEnv::new();
    let commands: &[&[&str]] = &[
        &["--help"],
        &["completion", "--help"],
        &["credential", "--help"],
        &["credential", "create", "--help"],
        &["credential", "list", "--help"],
        &["credential", "remove", "--help"],
        &["credential", "show", "--help"],
        &["credential", "history", "--help"],
        &["credential", "restore", "--help"],
        &["credential", "exec", "--help"],
        &["credential", "env", "--help"],
        &["credential", "validate", "--help"],
        &["credential", "migrate", "--help"],
        &["credential", "log", "--help"],
        &["credential", "export", "--help"],
        &["credential", "import", "--help"],
        &["credential", "rotate", "--help"],
        &["credential", "rekey", "--help"],
    ];
    for args in commands {
        let out = env
            .cmd()
            .env("COLUMNS", "100")
            .args(*args)
            .assert()
            .success();
        let name = format!("help_{}", args.join("_").replace("--", ""));
        insta::assert_snapshot!(name, redact(&env, &stdout(&out)));
    }
}

#[test]
fn aliases_are_listed_in_help() {
    let env = TestEnv::new();
    let out = env.cio(&["credential", "--help"]).success();
    let text = stdout(&out);
    assert!(text.contains("[alias: add]"));
    assert!(text.contains("[alias: ls]"));
    assert!(text.contains("[aliases: delete, rm]"));
}
