//! `exec --alternate` refuses restic's writing commands, plain `unlock` included. A stand-in
//! restic first on PATH records each run: a refused line is shown to run nothing, and the
//! same line with --allow-write to run restic.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use assert_cmd::assert::Assert;

use crate::recovery::{ACCESS, PASSWORD, REPO, SECRET};
use crate::util::*;

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
fn plain_unlock_is_refused() {
    let b = Bench::new();
    b.refused(
        &["restic", "unlock"],
        "Fail: Run with credentials: 'restic unlock' refused with the alternate set: it deletes the locks restic judges stale by this host's clock and name, which can be live locks of the owning cluster (restic --no-lock reads past a stale lock), in a repository that belongs to another cluster\nHint: the alternate set is for restoring; nothing was run. If you mean to change the other cluster's repository, add --allow-write (cio credential exec --alternate --allow-write -- restic ...)\n",
        "unlock",
    );
}
