//! `cio completion` and `cio generate-man`: generated from the clap definition, and working in
//! the real shells (bash's completion function called as bash calls it on Tab).

use crate::util::*;

/// What bash offers on Tab for the command line `words` (the last word is being completed):
/// the generated script is sourced and the function it registers for cio (`complete -p cio`)
/// called with COMP_WORDS / COMP_CWORD, as bash's programmable completion does.
fn bash_complete(script: &std::path::Path, words: &[&str]) -> Vec<String> {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let cword = words.len() - 1;
    let prev = if cword > 0 { words[cword - 1] } else { "" };
    let program = format!(
        "source '{}'\nCOMP_WORDS=({})\nCOMP_CWORD={cword}\nf=$(complete -p cio | sed -n 's/.* -F \\([^ ]*\\) .*/\\1/p')\n$f cio '{}' '{prev}'\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        script.display(),
        quoted.join(" "),
        words[cword],
    );
    let out = std::process::Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &program])
        .output()
        .expect("bash is installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// What fish offers on Tab for `line` (its last word, maybe empty, is being completed),
/// with the generated script sourced: the words only, without their descriptions.
fn fish_complete(script: &std::path::Path, line: &str) -> Vec<String> {
    let out = std::process::Command::new("fish")
        .arg("-c")
        .arg(format!(
            "source '{}'; complete -C '{line}'",
            script.display()
        ))
        .output()
        .expect("fish is installed (scripts/install-test-deps)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split('\t').next().unwrap_or("").to_string())
        .collect()
}

#[test]
fn bash_completes_commands_and_credential_names() {
    let env = TestEnv::new();
    let out = env.cio(&["completion", "bash"]).success();
    let script = env.dir.path().join("cio.bash");
    std::fs::write(&script, stdout(&out)).unwrap();

    assert_eq!(bash_complete(&script, &["cio", "cred"]), ["credential"]);
    assert_eq!(
        bash_complete(&script, &["cio", "credential", "cr"]),
        ["create"]
    );
    // After `create `: the 24 names (and the flags).
    let after_create = bash_complete(&script, &["cio", "credential", "create", ""]);
    for name in ["cio_aws_access_key", "cio_minio_alt_backup_password"] {
        assert!(after_create.iter().any(|w| w == name), "{after_create:?}");
    }
    assert_eq!(
        after_create
            .iter()
            .filter(|w| w.starts_with("cio_"))
            .count(),
        24
    );
    // The alias completes the same.
    assert_eq!(
        bash_complete(&script, &["cio", "credential", "add", "cio_minio_se"]),
        ["cio_minio_secret_key"]
    );
    assert_eq!(
        bash_complete(&script, &["cio", "credential", "rm", "cio_aws_alt_b"]),
        ["cio_aws_alt_backup_repo", "cio_aws_alt_backup_password"]
    );
    assert_eq!(
        bash_complete(&script, &["cio", "credential", "validate", "--prov"]),
        ["--provider"]
    );
    // `rotate` offers the passwords it changes: the primary sets' only.
    assert_eq!(
        bash_complete(&script, &["cio", "credential", "rotate", "cio_"]),
        ["cio_aws_backup_password", "cio_minio_backup_password"]
    );
    // `help` knows the credential commands too (lost once when `credential` was deferred).
    assert_eq!(
        bash_complete(&script, &["cio", "help", "credential", "cr"]),
        ["create"]
    );
}

/// Once a command's CREDENTIALNAME is given, no name is offered again: create's VALUE (a
/// secret) gets nothing. Hidden commands are not offered, neither alone nor under `help`.
/// After `exec --`, a command line: command names, not cio's flags.
#[test]
fn bash_offers_names_only_as_the_name_no_hidden_command_and_commands_after_exec() {
    let env = TestEnv::new();
    let out = env.cio(&["completion", "bash"]).success();
    let script = env.dir.path().join("cio.bash");
    std::fs::write(&script, stdout(&out)).unwrap();

    let none: [&str; 0] = [];
    for words in [
        &["cio", "credential", "create", "cio_aws_access_key", ""][..],
        &["cio", "credential", "add", "cio_aws_access_key", "cio_"],
        &[
            "cio",
            "credential",
            "create",
            "cio_aws_access_key",
            "--",
            "",
        ],
        &[
            "cio",
            "credential",
            "--store",
            "s.db",
            "create",
            "cio_aws_cacert",
            "",
        ],
        &[
            "cio",
            "credential",
            "create",
            "--from-file",
            "ca.pem",
            "cio_aws_cacert",
            "",
        ],
        &[
            "cio",
            "credential",
            "show",
            "--reveal",
            "cio_aws_access_key",
            "",
        ],
        &[
            "cio",
            "credential",
            "restore",
            "cio_aws_access_key",
            "--version",
            "2",
            "",
        ],
    ] {
        assert_eq!(bash_complete(&script, words), none, "{words:?}");
    }
    // The name itself still completes behind options, and the flags after it.
    assert_eq!(
        bash_complete(
            &script,
            &["cio", "credential", "--store", "s.db", "show", "cio_aws_se"]
        ),
        ["cio_aws_secret_key"]
    );
    assert_eq!(
        bash_complete(
            &script,
            &[
                "cio",
                "credential",
                "create",
                "--from-file",
                "ca.pem",
                "cio_aws_c"
            ]
        ),
        ["cio_aws_cacert"]
    );
    assert_eq!(
        bash_complete(
            &script,
            &["cio", "credential", "create", "cio_aws_cacert", "--from"]
        ),
        ["--from-file"]
    );

    assert_eq!(
        bash_complete(&script, &["cio", "help", ""]),
        ["credential", "completion", "help"]
    );
    let top = bash_complete(&script, &["cio", ""]);
    assert!(top.contains(&"credential".to_string()), "{top:?}");
    assert!(!top.iter().any(|w| w.contains("generate")), "{top:?}");

    let after = bash_complete(
        &script,
        &[
            "cio",
            "credential",
            "exec",
            "--provider",
            "minio",
            "--",
            "bas",
        ],
    );
    assert!(after.contains(&"bash".to_string()), "{after:?}");
    assert!(after.iter().all(|w| w.starts_with("bas")), "{after:?}");
    let after = bash_complete(&script, &["cio", "credential", "exec", "--", ""]);
    assert!(
        !after.iter().any(|w| w.starts_with('-')),
        "cio's flags: {after:?}"
    );
    assert!(after.contains(&"bash".to_string()));
}

/// fish offers the 24 names where bash and zsh do (its clap_complete generator completes no
/// positional argument), behind the command's options, and only until the name is given.
#[test]
fn fish_completes_credential_names_in_the_name_position() {
    let env = TestEnv::new();
    let out = env.cio(&["completion", "fish"]).success();
    let script = env.dir.path().join("cio.fish");
    std::fs::write(&script, stdout(&out)).unwrap();

    let names = fish_complete(&script, "cio credential create ");
    assert_eq!(names.len(), 24, "{names:?}");
    assert!(names.iter().all(|n| n.starts_with("cio_")), "{names:?}");
    assert_eq!(
        fish_complete(&script, "cio credential add cio_minio_se"),
        ["cio_minio_secret_key"]
    );
    assert_eq!(
        fish_complete(&script, "cio credential rm --purge cio_aws_alt_b"),
        ["cio_aws_alt_backup_password", "cio_aws_alt_backup_repo"]
    );
    assert_eq!(
        fish_complete(&script, "cio credential --store s.db show cio_aws_se"),
        ["cio_aws_secret_key"]
    );
    assert_eq!(
        fish_complete(
            &script,
            "cio credential create --from-file ca.pem cio_aws_c"
        ),
        ["cio_aws_cacert"]
    );
    assert_eq!(
        fish_complete(&script, "cio credential rotate cio_"),
        ["cio_aws_backup_password", "cio_minio_backup_password"]
    );
    for line in [
        "cio credential validate cio_",
        "cio credential log cio_",
        "cio credential history cio_",
        "cio credential restore cio_",
    ] {
        assert_eq!(fish_complete(&script, line).len(), 24, "{line}");
    }
    // Not after the name (create's VALUE), nor for a command without one.
    for line in [
        "cio credential create cio_aws_access_key cio_",
        "cio credential show cio_aws_access_key cio_",
        "cio credential list cio_",
    ] {
        assert_eq!(fish_complete(&script, line), Vec::<String>::new(), "{line}");
    }
    // The hidden packaging command is not offered.
    let top = fish_complete(&script, "cio ");
    assert!(top.contains(&"credential".to_string()), "{top:?}");
    assert!(!stdout(&out).contains("generate-man"));
}

#[test]
fn zsh_and_fish_scripts_are_valid() {
    let env = TestEnv::new();
    for (shell, check) in [("zsh", &["-n"][..]), ("fish", &["--no-execute"][..])] {
        let out = env.cio(&["completion", shell]).success();
        let script = env.dir.path().join(format!("cio.{shell}"));
        std::fs::write(&script, stdout(&out)).unwrap();
        let status = std::process::Command::new(shell)
            .args(check)
            .arg(&script)
            .status()
            .unwrap_or_else(|e| {
                panic!("{shell} must be installed (scripts/install-test-deps): {e}")
            });
        assert!(status.success(), "{shell} refuses the script");
        assert!(stdout(&out).contains("cio_aws_access_key"), "{shell}");
    }
    // `cio help credential <Tab>` offers the credential commands: fish run on it, zsh's
    // function for it present (zsh has no way to ask outside an interactive shell).
    let zsh = stdout(&env.cio(&["completion", "zsh"]).success());
    assert!(zsh.contains("_cio__subcmd__help__subcmd__credential__subcmd__create_commands()"));
    let script = env.dir.path().join("cio.fish");
    let out = std::process::Command::new("fish")
        .arg("-c")
        .arg(format!(
            "source '{}'; complete -C 'cio help credential cr'",
            script.display()
        ))
        .output()
        .expect("fish is installed");
    let offered = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        offered
            .lines()
            .map(|l| l.split('\t').next().unwrap_or(""))
            .collect::<Vec<_>>(),
        ["create"],
        "{offered}"
    );
}

#[test]
fn unknown_shell_is_a_usage_error_listing_the_shells() {
    let env = TestEnv::new();
    let out = env.cio(&["completion", "tcsh"]).code(2);
    assert_eq!(stdout(&out), "");
    assert_eq!(
        stderr(&out).lines().next().unwrap(),
        "Fail: usage: one of the values isn't valid for an argument: <SHELL> (one of: bash, zsh, fish)"
    );
}

#[test]
fn man_pages_for_every_command() {
    let env = TestEnv::new();
    let dir = env.dir.path().join("man");
    std::fs::create_dir(&dir).unwrap();
    env.cio(&["generate-man", dir.to_str().unwrap()]).success();
    let mut pages: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    let mut expected = vec!["cio.1", "cio-completion.1", "cio-credential.1"];
    let commands = [
        "create", "env", "exec", "export", "history", "import", "list", "log", "migrate", "rekey",
        "remove", "restore", "rotate", "show", "validate",
    ];
    let named: Vec<String> = commands
        .iter()
        .map(|c| format!("cio-credential-{c}.1"))
        .collect();
    expected.extend(named.iter().map(String::as_str));
    expected.sort();
    assert_eq!(pages, expected);
    let create = std::fs::read_to_string(dir.join("cio-credential-create.1")).unwrap();
    assert!(
        create.contains("\n.TH cio-credential-create 1 "),
        "{create}"
    );
    assert!(
        create.contains("cio_aws_backup_password"),
        "the names' help is there"
    );
    // The hidden packaging command has no page of its own.
    assert!(!dir.join("cio-generate-man.1").exists());

    let missing = env.dir.path().join("no-such-folder");
    let out = env
        .cio(&["generate-man", missing.to_str().unwrap()])
        .code(1);
    assert!(stderr(&out).starts_with("Fail: Generate man pages: cannot write "));
}

/// A man page replaces only a regular file: a symbolic link (or a device, a FIFO) with a
/// page's name is refused and left as it is, never written through.
#[test]
fn man_pages_never_write_through_a_link() {
    let env = TestEnv::new();
    let dir = env.dir.path().join("man");
    std::fs::create_dir(&dir).unwrap();
    let kept = env.dir.path().join("kept.txt");
    std::fs::write(&kept, "kept\n").unwrap();
    let link = dir.join("cio-credential-create.1");
    std::os::unix::fs::symlink(&kept, &link).unwrap();
    let out = env.cio(&["generate-man", dir.to_str().unwrap()]).code(1);
    assert_eq!(
        stderr(&out),
        format!(
            "Fail: Generate man pages: cannot write {}: it is a symbolic link, not a regular file\nHint: remove what has that name (a page replaces only a regular file), or give another folder\n",
            link.display()
        )
    );
    assert!(link.symlink_metadata().unwrap().file_type().is_symlink());
    assert_eq!(std::fs::read_to_string(&kept).unwrap(), "kept\n");
    // A regular file is replaced, whole.
    std::fs::remove_file(&link).unwrap();
    std::fs::write(&link, "old\n").unwrap();
    env.cio(&["generate-man", dir.to_str().unwrap()]).success();
    assert!(
        std::fs::read_to_string(&link)
            .unwrap()
            .contains(".TH cio-credential-create 1 ")
    );
}
