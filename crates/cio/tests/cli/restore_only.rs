//! `exec --alternate` refuses restic's writing commands however the command line starts
//! restic: behind the everyday wrappers (env, nice, timeout, ...), under another name that is
//! the same file, behind a program cio does not read, and plain `unlock`. A stand-in restic
//! first on PATH records each run: a refused line is shown to run nothing, and the same line
//! with --allow-write to run restic through the real wrapper (so each line is a real bypass).
//! The lines whose restic command cio cannot see, and the commands restic locks the
//! repository for even with --no-lock, run against the real restic and s3s-fs: refused, the
//! repository's locks/ and snapshots/ stay empty.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use assert_cmd::assert::Assert;

use crate::recovery::{ACCESS, PASSWORD, REPO, SECRET};
use crate::util::*;

const REFUSED_BACKUP: &str = "Fail: Run with credentials: 'restic backup' refused with the alternate set: it adds a snapshot and data, in a repository that belongs to another cluster\nHint: the alternate set is for restoring; nothing was run. If you mean to change the other cluster's repository, add --allow-write (cio credential exec --alternate --allow-write -- restic ...)\n";

/// The refusal of a line with a word restic whose command is not on it.
const REFUSED_ELSEWHERE: &str = "Fail: Run with credentials: refused with the alternate set: cio cannot tell what restic will run: a word on the line names restic, but what follows it is no restic command cio knows (nothing, only options, or a placeholder), so the command may come from elsewhere (xargs reads it from its input or a file, parallel from its arguments); it may write to a repository that belongs to another cluster\nHint: nothing was run. Give restic and its command as cio's own words after -- (cio credential exec --alternate -- restic restore latest --target DIR), or, if you mean to let it change the other cluster's repository, add --allow-write (cio credential exec --alternate --allow-write -- ...)\n";

/// The refusal of a line with a shell line naming restic.
const REFUSED_SHELL: &str = "Fail: Run with credentials: refused with the alternate set: cio cannot tell what restic will run: a word on the line is a command line that names restic (sh -c, su -c, watch, ssh, ...), and cio does not read shell lines; it may write to a repository that belongs to another cluster\nHint: nothing was run. Give restic and its command as cio's own words after -- (cio credential exec --alternate -- restic restore latest --target DIR), or, if you mean to let it change the other cluster's repository, add --allow-write (cio credential exec --alternate --allow-write -- ...)\n";

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

/// Another cluster's repository, made by the real restic on a real S3 server (s3s-fs), as
/// this node's complete alternate set.
struct Other {
    _server: testkit::s3::S3Server,
    env: TestEnv,
    /// The repository's folder on the server.
    repo: PathBuf,
}

impl Other {
    fn new() -> Other {
        let server =
            testkit::s3::S3Server::start("other-cluster-access", "other-cluster-secret-key");
        server.create_bucket("cluster-a");
        let url = server.restic_init("cluster-a", "backups", PASSWORD);
        let env = TestEnv::new();
        env.minio_set(
            "_alt",
            &url,
            server.access_key(),
            server.secret_key(),
            PASSWORD,
        );
        let repo = server.root().join("cluster-a/backups");
        Other {
            _server: server,
            env,
            repo,
        }
    }

    /// `cio credential exec --alternate FLAGS -- LINE` with `input` on its standard input.
    fn exec(&self, flags: &[&str], line: &[&str], input: &str) -> Assert {
        self.env
            .cmd()
            .args(["credential", "exec", "--alternate"])
            .args(flags)
            .arg("--")
            .args(line)
            .write_stdin(input)
            .timeout(Duration::from_secs(60))
            .assert()
    }

    /// The objects under the repository's folder `dir` (`locks`, `snapshots`).
    fn objects(&self, dir: &str) -> Vec<String> {
        objects(&self.repo.join(dir))
    }

    /// LINE (`input` on its standard input) is refused with `refusal` and the repository
    /// gets no lock and no snapshot.
    fn refused(&self, line: &[&str], input: &str, refusal: &str) {
        let out = self.exec(&[], line, input).code(1);
        assert_eq!(stderr(&out), refusal, "{line:?}");
        assert_eq!(self.objects("locks"), Vec::<String>::new(), "{line:?}");
        assert_eq!(self.objects("snapshots"), Vec::<String>::new(), "{line:?}");
    }
}

fn objects(dir: &Path) -> Vec<String> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// The review's finding: `xargs restic` with `backup ...` on its input (or in the file of
/// `xargs -a`) backed up into the other cluster's repository: the line's restic word has no
/// command after it, so cio saw nothing to refuse. Such a line, and a shell line naming
/// restic, is refused; with --allow-write the same line backs up, so each was a real way in.
#[test]
fn a_restic_command_cio_cannot_see_is_refused_and_writes_nothing() {
    let o = Other::new();
    let args = o.env.dir.path().join("args");
    std::fs::write(&args, "backup /etc/hostname\n").unwrap();
    let args = args.to_str().unwrap();
    let backup = "backup /etc/hostname\n";
    for (line, input, refusal) in [
        (&["xargs", "restic"][..], backup, REFUSED_ELSEWHERE),
        (&["xargs", "-a", args, "restic"], "", REFUSED_ELSEWHERE),
        (&["xargs", "restic", "--verbose"], backup, REFUSED_ELSEWHERE),
        (
            &["xargs", "-I{}", "restic", "{}", "/etc/hostname"],
            "backup\n",
            REFUSED_ELSEWHERE,
        ),
        (&["xargs", "restic", "key"], "add\n", REFUSED_ELSEWHERE),
        (
            &["sh", "-c", "restic backup /etc/hostname"],
            "",
            REFUSED_SHELL,
        ),
        (
            &[
                "sh",
                "-c",
                "exec restic \"$@\"",
                "sh",
                "backup",
                "/etc/hostname",
            ],
            "",
            REFUSED_SHELL,
        ),
        (
            &["bash", "-c", "restic $0 /etc/hostname", "backup"],
            "",
            REFUSED_SHELL,
        ),
    ] {
        o.refused(line, input, refusal);
    }
    o.exec(&["--allow-write"], &["xargs", "restic", "-q"], backup)
        .success();
    assert_eq!(o.objects("snapshots").len(), 1);
}

/// The review's finding: restic 0.14 locks the repository for `key list` and for `migrate`
/// listing the migrations, --no-lock or not (a PUT and a DELETE under locks/): refused, with
/// a way to list the keys that writes nothing, which runs. A reading command behind a program
/// cio does not read runs with --no-lock too: with locks/ made a file, where no lock can be
/// written, both run (a lock would fail after restic's retries).
#[test]
fn key_list_and_migrate_are_refused_as_restic_locks_for_them() {
    let o = Other::new();
    let key_list = "Fail: Run with credentials: 'restic key list' refused with the alternate set: restic writes a lock file into the repository for it, --no-lock or not ('restic list keys' lists the keys' ids without one), in a repository that belongs to another cluster\nHint: the alternate set is for restoring; nothing was run. If you mean to change the other cluster's repository, add --allow-write (cio credential exec --alternate --allow-write -- restic ...)\n";
    o.refused(&["restic", "key", "list"], "", key_list);
    o.refused(&["restic", "--no-lock", "key", "list"], "", key_list);
    o.refused(
        &["restic", "migrate"],
        "",
        "Fail: Run with credentials: 'restic migrate' refused with the alternate set: restic writes a lock file into the repository for it, --no-lock or not, even to list the migrations, in a repository that belongs to another cluster\nHint: the alternate set is for restoring; nothing was run. If you mean to change the other cluster's repository, add --allow-write (cio credential exec --alternate --allow-write -- restic ...)\n",
    );
    let locks = o.repo.join("locks");
    let _ = std::fs::remove_dir(&locks);
    std::fs::write(&locks, "").unwrap();
    let out = o.exec(&[], &["restic", "list", "keys"], "").success();
    let keys = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert_eq!(
        keys.lines().collect::<Vec<_>>(),
        objects(&o.repo.join("keys"))
    );
    o.exec(&[], &["xargs", "restic", "snapshots"], "").success();
}

#[test]
fn a_wrapper_cio_cannot_read_is_refused() {
    let b = Bench::new();
    // env -S splits its string into a command line: cio does not follow it.
    b.refused(
        &["env", "-S", "restic backup /etc/hostname"],
        "Fail: Run with credentials: refused with the alternate set: cio cannot tell what restic will run: a program on the line runs a command it takes in a way cio does not read (env -S or --env0-from, or an option cio does not know); it may write to a repository that belongs to another cluster\nHint: nothing was run. Give restic and its command as cio's own words after -- (cio credential exec --alternate -- restic restore latest --target DIR), or, if you mean to let it change the other cluster's repository, add --allow-write (cio credential exec --alternate --allow-write -- ...)\n",
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
    // A reading command runs, without a lock (which a restore-only key may not write).
    b.exec(&[], &["slow", "restic", "snapshots"]).success();
    assert_eq!(b.runs(), "--no-lock snapshots\n");
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
