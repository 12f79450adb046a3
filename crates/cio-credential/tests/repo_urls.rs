//! Repository URLs mean to cio what they mean to restic 0.14.
//!
//! The tables give, for each form, what restic's `ParseConfig` (internal/backend/s3/config.go)
//! and its S3 library (minio-go 7.0.34) make of it: endpoint, plain HTTP or not, bucket and
//! cleaned prefix, or a failure. The oracle test then hands URLs to the real restic against a
//! real S3 server (s3s-fs) and checks that the repository lands exactly where cio says, and
//! that restic fails (or lands elsewhere) for each URL cio refuses.

use std::path::Path;
use std::process::Command;

use cio_credential::{Allow, CredentialName, RepoUrl, RuleViolation, check_value};
use testkit::require_binary;
use testkit::s3::S3Server;

/// (URL, scheme, endpoint, bucket, prefix, warning codes).
type Accepted = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
);

#[rustfmt::skip]
const ACCEPTED: &[Accepted] = &[
    // s3:https://host[:port]/bucket[/prefix]
    ("s3:https://s3.amazonaws.com/backup-123", "https", "s3.amazonaws.com", "backup-123", "", &[]),
    ("s3:https://minio:9000/bucket/node1", "https", "minio:9000", "bucket", "node1", &[]),
    ("s3:http://minio:9000/bucket/node1", "http", "minio:9000", "bucket", "node1", &["plain_http"]),
    ("s3:https://minio/bucket/a/b/c/", "https", "minio", "bucket", "a/b/c", &[]),
    ("s3:https://minio/bucket/", "https", "minio", "bucket", "", &[]),
    // restic cleans the prefix with path.Clean
    ("s3:https://minio/bucket/a/./b", "https", "minio", "bucket", "a/b", &[]),
    ("s3:https://minio/bucket/a//b", "https", "minio", "bucket", "a/b", &[]),
    ("s3:https://minio/bucket/x/../node1", "https", "minio", "bucket", "node1", &[]),
    ("s3:https://minio/bucket/node1/config/..", "https", "minio", "bucket", "node1", &[]),
    ("s3:https://minio/bucket/.", "https", "minio", "bucket", "", &[]),
    ("s3:https://minio/bucket/node1/..", "https", "minio", "bucket", "", &[]),
    // the URL form's path is percent-decoded (Go's url.Parse); '?' and '#' end it
    ("s3:https://minio/bucket/node%31", "https", "minio", "bucket", "node1", &[]),
    ("s3:https://minio/bucket/a%2Fb", "https", "minio", "bucket", "a/b", &[]),
    ("s3:https://minio/buck%65t/p", "https", "minio", "bucket", "p", &[]),
    ("s3:https://minio/bucket/my%20backups", "https", "minio", "bucket", "my backups", &[]),
    // any UTF-8 text: minio-go sends it, restic stores under it (a server that lists keys
    // raw, unlike AWS, MinIO and moto, may fail it: validate says so, as restic)
    ("s3:https://minio/bucket/a%0Ab%09c", "https", "minio", "bucket", "a\nb\tc", &[]),
    ("s3:https://minio/bucket/e%7F%C2%85%1B%00", "https", "minio", "bucket", "e\u{7f}\u{85}\u{1b}\0", &[]),
    ("s3:https://minio/bucket/node1?region=x", "https", "minio", "bucket", "node1", &["ignored_url_part"]),
    ("s3:https://minio/bucket#frag", "https", "minio", "bucket", "", &["ignored_url_part"]),
    // Go lowercases the scheme, restic asks only whether it is "http"
    ("s3:httpS://minio/bucket", "https", "minio", "bucket", "", &[]),
    ("s3:http://minio/bucket", "http", "minio", "bucket", "", &["plain_http"]),
    // ports: Go's digits, an empty port is the scheme's default
    ("s3:http://127.0.0.1:9000/bucket", "http", "127.0.0.1:9000", "bucket", "", &["plain_http"]),
    ("s3:https://127.0.0.1:09000/bucket", "https", "127.0.0.1:9000", "bucket", "", &[]),
    ("s3:https://minio:/bucket", "https", "minio", "bucket", "", &[]),
    // bracketed IPv6
    ("s3:http://[::1]:9000/bucket/p", "http", "[::1]:9000", "bucket", "p", &["plain_http"]),
    ("s3:https://[2001:db8::7]/bucket", "https", "[2001:db8::7]", "bucket", "", &[]),
    ("s3:[::1]:9000/bucket/p", "https", "[::1]:9000", "bucket", "p", &[]),
    // s3:host/bucket[/prefix]: https, no decoding, prefix cleaned
    ("s3:s3.amazonaws.com/backup-123", "https", "s3.amazonaws.com", "backup-123", "", &[]),
    ("s3:minio:9000/bucket/node1/", "https", "minio:9000", "bucket", "node1", &[]),
    ("s3:minio/bucket/a/../b", "https", "minio", "bucket", "b", &[]),
    ("s3:minio/bucket/node%31", "https", "minio", "bucket", "node%31", &[]),
    ("s3:minio/bucket/a?b", "https", "minio", "bucket", "a?b", &[]),
    // the older s3://host/bucket[/prefix]
    ("s3://s3.amazonaws.com/backup-123/restic", "https", "s3.amazonaws.com", "backup-123", "restic", &[]),
    ("s3://minio:9000/bucket", "https", "minio:9000", "bucket", "", &[]),
    // old buckets AWS serves but no longer creates
    ("s3:https://s3.amazonaws.com/Old_Bucket/restic", "https", "s3.amazonaws.com", "Old_Bucket", "restic", &["legacy_bucket_name"]),
    ("s3:https://minio/MyBackups", "https", "minio", "MyBackups", "", &["legacy_bucket_name"]),
    // virtual-host style: restic's bucket is the first path element, not the host's
    ("s3:mybucket.s3.eu-west-1.example.com/restic", "https", "mybucket.s3.eu-west-1.example.com", "restic", "", &["virtual_host_style"]),
    ("s3:https://mybucket.s3.wasabisys.com/restic/node1", "https", "mybucket.s3.wasabisys.com", "restic", "node1", &["virtual_host_style"]),
];

#[test]
fn accepted_forms_give_restics_endpoint_bucket_and_prefix() {
    let repo = CredentialName::all()
        .find(|n| n.to_string() == "cio_minio_backup_repo")
        .expect("a catalog name");
    for (url, scheme, host, bucket, prefix, warnings) in ACCEPTED {
        let parsed = RepoUrl::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(
            (
                parsed.scheme.as_str(),
                parsed.host.as_str(),
                parsed.bucket.as_str(),
                parsed.prefix.as_str()
            ),
            (*scheme, *host, *bucket, *prefix),
            "{url}"
        );
        let codes: Vec<_> = check_value(repo, url, Allow::default())
            .unwrap_or_else(|e| panic!("{url}: {e}"))
            .iter()
            .map(|w| w.code())
            .collect();
        assert_eq!(codes, *warnings, "{url}");
    }
}

/// (URL, why restic fails or reads it otherwise, cio's exact refusal).
#[rustfmt::skip]
const REFUSED: &[(&str, &str, RuleViolation)] = &[
    ("https://minio/bucket", "not an s3 location", RuleViolation::RepoMissingS3Prefix),
    ("minio/bucket", "not an s3 location", RuleViolation::RepoNotS3),
    ("S3:https://minio/bucket", "restic's prefix is lowercase", RuleViolation::RepoNotS3),
    ("rest:https://minio/bucket", "another backend", RuleViolation::RepoNotS3),
    ("s3:httpbin.example/bucket", "a URL with no host", RuleViolation::RepoNotHttpUrl),
    ("s3:http:/minio/bucket", "a URL with no host", RuleViolation::RepoNotHttpUrl),
    ("s3:ftp://minio/bucket", "endpoint 'ftp:', bucket ''", RuleViolation::RepoNotS3),
    ("s3:HTTPS://minio/bucket", "endpoint 'HTTPS:', bucket ''", RuleViolation::RepoNotS3),
    ("s3:https://minio", "s3: bucket name not found", RuleViolation::RepoNoBucket),
    ("s3:https://minio/", "bucket name cannot be empty", RuleViolation::RepoNoBucket),
    ("s3:minio", "host/region or bucket name not found", RuleViolation::RepoNoBucket),
    ("s3:minio/", "bucket name cannot be empty", RuleViolation::RepoNoBucket),
    ("s3:https:///bucket", "endpoint url cannot be empty", RuleViolation::RepoNoHost),
    ("s3:///bucket", "endpoint url cannot be empty", RuleViolation::RepoNoHost),
    ("s3:https://:9000/bucket", "endpoint url cannot be empty", RuleViolation::RepoNoHost),
    ("s3:http://minio:9000//bucket/node1", "bucket name cannot be empty", RuleViolation::RepoDoubleSlash),
    ("s3:minio//bucket", "bucket name cannot be empty", RuleViolation::RepoDoubleSlash),
    ("s3:http://minio:9000/bucket//node1", "keys '/node1/...'", RuleViolation::RepoDoubleSlash),
    ("s3:minio/bucket//node1", "keys '/node1/...'", RuleViolation::RepoDoubleSlash),
    ("s3:https://minio/bucket//", "keys '/config'", RuleViolation::RepoDoubleSlash),
    ("s3:https://minio/bucket/..", "keys '../config'", RuleViolation::RepoPrefixAboveBucket),
    ("s3:https://minio/bucket/../other/node1", "keys '../other/node1/...'", RuleViolation::RepoPrefixAboveBucket),
    ("s3:https://minio/bucket/%2e%2e/x", "keys '../x/...'", RuleViolation::RepoPrefixAboveBucket),
    ("s3:https://minio/bucket/a%zz", "invalid URL escape", RuleViolation::RepoBadEscape),
    ("s3:https://minio/bucket/a%ff", "minio-go: not valid UTF-8", RuleViolation::RepoBadEscape),
    ("s3:https://mi nio/bucket", "invalid character in host name", RuleViolation::RepoBadHost),
    ("s3:https://minio?x/bucket", "bucket name not found", RuleViolation::RepoNoBucket),
    ("s3:https://bücher.example/bucket", "no such host", RuleViolation::RepoBadHost),
    ("s3:https://127.1/bucket", "no such host", RuleViolation::RepoBadHost),
    ("s3:https://::1/bucket", "not an ip address or domain name", RuleViolation::RepoBadHost),
    ("s3:https://[::1/bucket", "missing ']' in host", RuleViolation::RepoBadHost),
    ("s3:https://minio:9000:/bucket", "not an ip address or domain name", RuleViolation::RepoBadHost),
    ("s3:https://minio:+9000/bucket", "invalid port", RuleViolation::RepoBadPort),
    ("s3:https://minio:99999/bucket", "invalid port on dial", RuleViolation::RepoBadPort),
    ("s3:https://minio:0/bucket", "connection refused", RuleViolation::RepoBadPort),
    ("s3:https://key:secret@minio/bucket", "ignored, and listings would show it", RuleViolation::RepoUserInfo),
    ("s3:https://minio/ab", "bucket name shorter than 3", RuleViolation::RepoBadBucket),
    ("s3:https://minio/192.168.0.1", "bucket name cannot be an ip address", RuleViolation::RepoBadBucket),
    ("s3:https://minio/a..b", "invalid characters", RuleViolation::RepoBadBucket),
    ("s3:https://minio/bad%20bucket", "invalid characters", RuleViolation::RepoBadBucket),
    ("s3:https://mybucket.s3.amazonaws.com/restic", "Amazon S3 endpoint should be 's3.amazonaws.com'", RuleViolation::RepoBucketInHost("Amazon S3", "s3.REGION.amazonaws.com")),
    ("s3:https://mybucket.storage.googleapis.com/restic", "Google Cloud Storage endpoint should be 'storage.googleapis.com'", RuleViolation::RepoBucketInHost("Google Cloud Storage", "storage.googleapis.com")),
];

#[test]
fn refused_forms_are_what_restic_fails_on_or_reads_elsewhere() {
    for (url, restic, violation) in REFUSED {
        assert_eq!(
            RepoUrl::parse(url).as_ref(),
            Err(violation),
            "{url} ({restic})"
        );
    }
}

#[test]
fn refusals_say_the_fix_and_never_repeat_the_url() {
    let texts = [
        (
            RuleViolation::RepoDoubleSlash,
            "the repository URL has '//' in its path: restic would read an empty bucket name, or look for the repository under keys starting with '/'; write one '/' between host, bucket and prefix",
        ),
        (
            RuleViolation::RepoPrefixAboveBucket,
            "the repository URL's prefix climbs above the bucket with '..': restic would look for keys starting with '../'; remove the '..'",
        ),
        (
            RuleViolation::RepoBadHost,
            "the repository URL's host is not a DNS name, an IPv4 address or an IPv6 address in brackets; write it as s3:https://HOST[:PORT]/BUCKET",
        ),
        (
            RuleViolation::RepoUserInfo,
            "the repository URL holds a user name or password before '@', which restic ignores and every listing would show; remove it (the keys belong in the set's access_key and secret_key)",
        ),
        (
            RuleViolation::RepoBucketInHost("Amazon S3", "s3.REGION.amazonaws.com"),
            "restic refuses Amazon S3 hosts that start with the bucket name (virtual-host style); write it as s3:https://s3.REGION.amazonaws.com/BUCKET[/PREFIX]",
        ),
    ];
    for (violation, text) in texts {
        assert_eq!(violation.to_string(), text);
    }
    for url in [
        "https://canary.example/canarybucket",
        "s3:https://canary host/canarybucket",
        "s3:https://canary.example:99999/canarybucket",
        "s3:https://canaryuser:canarypw@canary.example/canarybucket",
        "s3:https://canary.example//canarybucket/canaryprefix",
        "s3:https://canary.example/canarybucket//canaryprefix",
        "s3:https://canary.example/canarybucket/../canaryprefix",
        "s3:https://canary.example/canary_bucket!/canaryprefix",
        "s3:https://canary.example/canarybucket/canary%zz",
        "s3:canary.s3.amazonaws.com/canarybucket",
    ] {
        let text = RepoUrl::parse(url).expect_err(url).to_string();
        assert!(!text.contains("canary"), "{url}: {text}");
    }
}

/// Runs the real restic with `args` against `url`; `true` when it succeeded.
fn restic(server: &S3Server, url: &str, args: &[&str]) -> bool {
    let home = server.root().join(".home");
    std::fs::create_dir_all(&home).expect("a HOME for restic");
    Command::new(require_binary("restic"))
        .args(args)
        .env_clear()
        .env("HOME", &home)
        .env("RESTIC_REPOSITORY", url)
        .env("RESTIC_PASSWORD", "oracle password")
        .env("AWS_ACCESS_KEY_ID", server.access_key())
        .env("AWS_SECRET_ACCESS_KEY", server.secret_key())
        .output()
        .expect("running restic")
        .status
        .success()
}

/// Where s3s-fs keeps the object `bucket/key`.
fn object(root: &Path, bucket: &str, prefix: &str, name: &str) -> std::path::PathBuf {
    let key = if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}/{name}")
    };
    root.join(bucket).join(key)
}

/// The oracle: restic itself, against a real S3 server.
#[test]
fn restic_puts_the_repository_where_cio_says_and_fails_where_cio_refuses() {
    let server = S3Server::start(
        "AKIAORACLEKEY0000001",
        "oracle-secret-key-0000000000000000000000",
    );
    server.create_bucket("bucket1");
    let port = server.port();
    let accepted = [
        format!("s3:http://127.0.0.1:{port}/bucket1/node1"),
        format!("s3:http://127.0.0.1:{port}/bucket1/a/./b/"),
        format!("s3:http://127.0.0.1:{port}/bucket1/x/../node3"),
        format!("s3:http://127.0.0.1:{port}/bucket1/node%34"),
        format!("s3:http://127.0.0.1:{port}/bucket1/node5?ignored=1"),
        format!("s3:http://127.0.0.1:0{port}/bucket1/node6"),
        format!("s3:http://localhost:{port}/bucket1/node7"),
        format!("s3:http://127.0.0.1:{port}/bucket1"),
        format!("s3:http://127.0.0.1:{port}/bucket1/line%0Abreak%09tab"),
        format!("s3:http://127.0.0.1:{port}/bucket1/del%7F%C2%85"),
    ];
    for url in &accepted {
        let parsed = RepoUrl::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
        let config = object(server.root(), &parsed.bucket, &parsed.prefix, "config");
        assert!(
            !config.exists(),
            "{url}: a repository is already at {config:?}"
        );
        assert!(restic(&server, url, &["init"]), "restic init {url} failed");
        assert!(
            config.is_file(),
            "{url}: restic's config is not at {config:?}"
        );
        assert!(restic(&server, url, &["cat", "config"]), "{url}");
    }
    // The same repositories through the plainest spelling cio would write.
    for (url, plain) in [
        (&accepted[1], "bucket1/a/b"),
        (&accepted[3], "bucket1/node4"),
    ] {
        let plain = format!("s3:http://127.0.0.1:{port}/{plain}");
        assert!(
            restic(&server, &plain, &["cat", "config"]),
            "{url} is not at {plain}"
        );
    }

    let refused = [
        (
            format!("s3:http://127.0.0.1:{port}//bucket1/node10"),
            "bucket1/node10",
        ),
        (
            format!("s3:http://127.0.0.1:{port}/bucket1//node11"),
            "bucket1/node11",
        ),
        (
            format!("s3:http://127.0.0.1:{port}/bucket1/../node12"),
            "bucket1/node12",
        ),
        (format!("s3:http://127.0.0.1:{port}"), "bucket1"),
        (
            format!("s3:http://127.0.0.1:{port}:/bucket1/node13"),
            "bucket1/node13",
        ),
        (
            format!("s3:http://127.0.0.1 :{port}/bucket1/node14"),
            "bucket1/node14",
        ),
        (
            format!("s3:http://127.0.0.1:{port}/bucket1/node%zz"),
            "bucket1/node%zz",
        ),
    ];
    for (url, naive) in &refused {
        assert!(RepoUrl::parse(url).is_err(), "cio accepts {url}");
        let naive_config = server.root().join(naive).join("config");
        let worked = restic(&server, url, &["init"]);
        assert!(
            !worked || !naive_config.exists(),
            "restic init {url} made a repository at {naive}, where cio refuses to look"
        );
    }
}
