//! The S3 helper really serves restic.

#[test]
fn restic_init_and_backup_against_s3s_fs() {
    let s3 = testkit::s3::S3Server::start("testaccess", "testsecret123");
    s3.create_bucket("bucket1");
    let url = s3.restic_init("bucket1", "some/prefix", "a test password");
    assert!(s3.root().join("bucket1/some/prefix/config").is_file());
    let data = tempfile::tempdir().expect("tempdir");
    std::fs::write(data.path().join("f"), b"hello").expect("write");
    s3.restic_backup(&url, "a test password", data.path());
    let snaps = std::fs::read_dir(s3.root().join("bucket1/some/prefix/snapshots"))
        .expect("snapshots/")
        .count();
    assert_eq!(snaps, 1);
}
