//! `exec --alternate` refuses restic's writing commands however the command line starts
//! restic: behind the everyday wrappers (env, nice, timeout, ...), under another name that is
//! the same file, behind a program cio does not read, and plain `unlock`. A stand-in restic
//! first on PATH records each run: a refused line is shown to run nothing, and the same line
//! with --allow-write to run restic through the real wrapper (so each line is a real bypass).

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use assert_cmd::assert::Assert;

use crate::recovery::{ACCESS, PASSWORD, REPO, SECRET};
use crate::util::*;

const REFUSED_BACKUP: &str = "Fail: Run with credentials: 'restic backup' refused with the alternate set: it adds a snapshot and data, in a repository that belongs to another cluster\nHint: the alternate set is for restoring; nothing was run. If you mean to change the other cluster's repository, add --allow-write (cio credential exec --alternate --allow-write -- restic ...)\n";

/// A complete alternate set, and `bin/restic`, a script that appends its arguments to a log.
struct Bench {
    env: TestEnv,
    bin: PathBuf,
    log: PathBuf,
}

impl Bench {
    fn new() -> Bench {
        let env = TestEnv::new();
        env.minio_set("_alt", REPO, ACCESS, SECRET, PASSWORD);
        let bin = env.dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let log = env.dir.path().join("restic-runs");
        let restic = bin.join("restic");
        std::fs::write(
            &restic,
            format!("#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\n", log.display()),
        )
        .unwrap();
        std::fs::set_permissions(&restic, std::fs::Permissions::from_mode(0o755)).unwrap();
        Bench { env, bin, log }
    }

    /// `cio credential exec --alternate FLAGS -- LINE`, with bin/ first on PATH.
    fn exec(&self, flags: &[&str], line: &[&str]) -> Assert {
        let path = format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        self.env
            .cmd()
            .env("PATH", path)
            .args(["credential", "exec", "--alternate"])
            .args(flags)
            .arg("--")
            .args(line)
            .write_stdin("")
            .assert()
    }

    /// The runs of bin/restic so far, one line of arguments each; the log is emptied.
    fn runs(&self) -> String {
        let runs = std::fs::read_to_string(&self.log).unwrap_or_default();
        let _ = std::fs::remove_file(&self.log);
        runs
    }

    /// LINE is refused with `refusal` on stderr and runs nothing; with --allow-write it runs
    /// bin/restic with `ran` as its arguments.
    fn refused(&self, line: &[&str], refusal: &str, ran: &str) {
        let out = self.exec(&[], line).code(1);
        assert_eq!(stderr(&out), refusal, "{line:?}");
        assert_eq!(self.runs(), "", "{line:?} ran restic");
        self.exec(&["--allow-write"], line).success();
        assert_eq!(
            self.runs(),
            format!("{ran}\n"),
            "{line:?} with --allow-write"
        );
    }
}

#[test]
fn restic_behind_a_wrapper_is_refused() {
    let b = Bench::new();
    let path = format!("PATH={}", b.bin.display());
    let lock = b.env.dir.path().join("lock");
    let lock = lock.to_str().unwrap();
    for wrapper in [
        &["env"][..],
        &["env", "VAR=x"],
        &["env", "-i", &path],
        &["env", "-u", "HOME", "--"],
        &["nice"],
        &["nice", "-n", "10"],
        &["nice", "-5"],
        &["ionice", "-c3"],
        &["ionice", "-c", "2", "-n", "7"],
        &["timeout", "30"],
        &["timeout", "-s", "KILL", "-k", "5", "30"],
        &["nohup"],
        &["stdbuf", "-oL"],
        &["stdbuf", "-o", "L", "-e", "0"],
        &["chrt", "-o", "0"],
        &["taskset", "ffffffff"],
        &["setsid", "-w"],
        &["flock", lock],
        &["flock", "-w", "10", lock],
        &[
            "nice", "-n", "5", "timeout", "1h", "env", "X=1", "ionice", "-c3",
        ],
    ] {
        let mut line = wrapper.to_vec();
        line.extend(["restic", "backup", "/etc/hostname"]);
        b.refused(&line, REFUSED_BACKUP, "backup /etc/hostname");
    }
    // A reading command still runs behind a wrapper, without --allow-write, and without a
    // lock (which a restore-only key may not write).
    b.exec(&[], &["nice", "-n", "10", "restic", "snapshots"])
        .success();
    assert_eq!(b.runs(), "--no-lock snapshots\n");
}

#[test]
fn restic_under_another_name_is_refused() {
    let b = Bench::new();
    let links = b.env.dir.path().join("links");
    std::fs::create_dir(&links).unwrap();
    // A symbolic link (its file is named restic) and a hard link (the same file as the restic
    // on PATH), by path and through PATH.
    let rst = links.join("rst");
    std::os::unix::fs::symlink(b.bin.join("restic"), &rst).unwrap();
    std::fs::hard_link(b.bin.join("restic"), b.bin.join("rst2")).unwrap();
    let rst = rst.to_str().unwrap();
    for line in [
        &[rst, "backup", "/etc/hostname"][..],
        &["rst2", "backup", "/etc/hostname"],
        &["env", "rst2", "backup", "/etc/hostname"],
    ] {
        b.refused(line, REFUSED_BACKUP, "backup /etc/hostname");
    }
    // A link to the installed restic.
    let real = links.join("real");
    std::os::unix::fs::symlink(testkit::require_binary("restic"), &real).unwrap();
    let out = b
        .exec(&[], &[real.to_str().unwrap(), "backup", "/etc/hostname"])
        .code(1);
    assert_eq!(stderr(&out), REFUSED_BACKUP);
}

#[test]
fn a_wrapper_cio_cannot_read_is_refused() {
    let b = Bench::new();
    // env -S splits its string into a command line: cio does not follow it.
    b.refused(
        &["env", "-S", "restic backup /etc/hostname"],
        "Fail: Run with credentials: 'restic <wrapped command>' refused with the alternate set: cio cannot read the options of the program that runs it (env -S or --env0-from, or an option cio does not know), so it may write, in a repository that belongs to another cluster\nHint: the alternate set is for restoring; nothing was run. If you mean to change the other cluster's repository, add --allow-write (cio credential exec --alternate --allow-write -- restic ...)\n",
        "backup /etc/hostname",
    );
}

#[test]
fn restic_behind_a_program_cio_does_not_read_is_refused_when_it_writes() {
    let b = Bench::new();
    // A copy of nice under another name: cio does not read its options, but the restic word
    // on its line, followed by a writing command, is refused.
    std::fs::copy(testkit::require_binary("nice"), b.bin.join("slow")).unwrap();
    b.refused(
        &["slow", "-n", "5", "restic", "backup", "/etc/hostname"],
        REFUSED_BACKUP,
        "backup /etc/hostname",
    );
    b.exec(&[], &["slow", "restic", "snapshots"]).success();
    assert_eq!(b.runs(), "snapshots\n");
}

#[test]
fn plain_unlock_is_refused() {
    let b = Bench::new();
    b.refused(
        &["restic", "unlock"],
        "Fail: Run with credentials: 'restic unlock' refused with the alternate set: it deletes the locks restic judges stale by this host's clock and name, which can be live locks of the owning cluster (restic --no-lock reads past a stale lock), in a repository that belongs to another cluster\nHint: the alternate set is for restoring; nothing was run. If you mean to change the other cluster's repository, add --allow-write (cio credential exec --alternate --allow-write -- restic ...)\n",
        "unlock",
    );
}
