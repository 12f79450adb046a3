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

/// Every credential command's long help, and so its man page, ends with working examples,
/// in the same form: "Examples:", then each case's line and its indented command lines.
/// The commands are read from `cio credential --help`, so a new one is covered too.
#[test]
fn every_command_has_examples_in_its_help_and_man_page() {
    let env = TestEnv::new();
    let listing = stdout(&env.cio(&["credential", "--help"]).success());
    let commands: Vec<&str> = listing
        .lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert_eq!(commands.len(), 15, "{listing}");
    let dir = env.dir.path().join("man");
    std::fs::create_dir(&dir).unwrap();
    env.cio(&["generate-man", dir.to_str().unwrap()]).success();
    for command in commands {
        let help = stdout(&env.cio(&["credential", command, "--help"]).success());
        let examples = help
            .split("\nExamples:\n")
            .nth(1)
            .unwrap_or_else(|| panic!("{command} --help has no Examples: section:\n{help}"));
        assert!(
            examples.contains(&format!("cio credential {command}"))
                || examples.contains("cio credential --store"),
            "{command}: {examples}"
        );
        let page =
            std::fs::read_to_string(dir.join(format!("cio-credential-{command}.1"))).unwrap();
        assert!(
            page.contains("Examples:"),
            "the man page of {command} has no examples"
        );
    }
}
