//! A cluster store this node cannot speak TLS with, or whose members speak the other scheme:
//! each cause the handshake makes knowable is named, with the setting that fixes it (the
//! black-box review's finding: "cannot be reached ... unexpected end of file", "Peer
//! disconnected" or "UnknownIssuer", each with the hint to check that the cluster store is
//! running). Real etcd members, plain and TLS, started by the tests; exit 3 (the store cannot
//! be used), nothing written, and neither the etcd user nor its password in any message.

use std::path::Path;

use testkit::etcd::{EtcdCluster, TestCerts};

use crate::util::*;

const USER: &str = "user-CANARY";
const PASSWORD: &str = "password-CANARY";

const CA_SETTING: &str = "CIO_ETCD_CACERT (or --etcd-cacert, or cio.toml's etcd_cacert)";
const CLIENT_SETTING: &str = "CIO_ETCD_CERT and CIO_ETCD_KEY (or --etcd-cert and --etcd-key, or cio.toml's etcd_cert and etcd_key)";

/// The TLS files of one attempt: CA, client certificate and key.
struct Files<'a> {
    ca: Option<&'a Path>,
    client: Option<(&'a Path, &'a Path)>,
}

const NO_FILES: Files<'static> = Files {
    ca: None,
    client: None,
};

/// Runs `cio ARGS` (a value on standard input) against `store` with `files` and an etcd
/// login; asserts exit 3, nothing on standard output, exactly `expected` on standard error,
/// and no file of the node changed.
fn refused(store: &str, files: &Files<'_>, args: &[&str], expected: &str) {
    let env = TestEnv::new();
    env.create("cio_minio_access_key", "local-value");
    let before = env.snapshot_files();
    let mut cmd = env.cmd();
    cmd.env("CIO_STORE", store)
        .env("CIO_ETCD_USER", USER)
        .env("CIO_ETCD_PASSWORD", PASSWORD);
    if let Some(ca) = files.ca {
        cmd.env("CIO_ETCD_CACERT", ca);
    }
    if let Some((cert, key)) = files.client {
        cmd.env("CIO_ETCD_CERT", cert).env("CIO_ETCD_KEY", key);
    }
    cmd.args(args)
        .write_stdin("a-value-never-stored")
        .assert()
        .code(3)
        .stdout("")
        .stderr(expected.to_string());
    assert!(!expected.contains("CANARY"));
    assert_eq!(env.snapshot_files(), before, "{args:?}");
}

/// Nothing was written under any key of `cluster`.
fn assert_empty(cluster: &EtcdCluster) {
    let out = cluster.etcdctl(&["get", "--prefix", "", "--keys-only"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "nothing was written to etcd");
}

const CREATE: &[&str] = &["credential", "create", "cio_minio_secret_key"];

#[test]
fn a_tls_store_whose_member_speaks_plain_http_says_so_for_every_command() {
    let cluster = EtcdCluster::single();
    let endpoint = &cluster.endpoints()[0];
    let store = format!("etcds://{endpoint}/cio/credentials");
    let expected = |action: &str| {
        format!(
            "Fail: {action}: the credential store {store} cannot be reached over TLS: the member {endpoint} speaks plain HTTP (it answered an http:// request), not TLS\n\
             Hint: name the store etcd://{endpoint}/cio/credentials for members that speak plain HTTP (everything goes in clear then, the etcd password too, and no TLS file is used: unset cio.toml's etcd_cacert, etcd_cert, etcd_key and CIO_ETCD_CACERT, CIO_ETCD_CERT, CIO_ETCD_KEY), or serve the members' client URLs over TLS (etcd --cert-file, --key-file and https:// in --listen-client-urls)\n"
        )
    };
    refused(&store, &NO_FILES, CREATE, &expected("Create credential"));
    refused(
        &store,
        &NO_FILES,
        &["credential", "list"],
        &expected("List credentials"),
    );
    assert_empty(&cluster);
}

#[test]
fn a_plain_store_whose_member_speaks_tls_says_so_and_how_to_name_it() {
    let certs = TestCerts::new();
    let cluster = EtcdCluster::start(1, Some(&certs));
    let endpoint = &cluster.endpoints()[0];
    let store = format!("etcd://{endpoint}/cio/credentials");
    let expected = |action: &str| {
        format!(
            "Fail: {action}: the credential store {store} cannot be reached: the member {endpoint} speaks TLS, not plain HTTP\n\
             Hint: name the store etcds://{endpoint}/cio/credentials, with the certificate of the CA that signed the members' certificates in {CA_SETTING}, and this node's client certificate and key in {CLIENT_SETTING} if the members require one (etcd --client-cert-auth)\n"
        )
    };
    refused(&store, &NO_FILES, CREATE, &expected("Create credential"));
    // The migration's target too: it is opened the same way.
    let env = TestEnv::new();
    env.create("cio_minio_access_key", "local-value");
    let before = env.snapshot_files();
    env.cmd()
        .env("CIO_ETCD_USER", USER)
        .env("CIO_ETCD_PASSWORD", PASSWORD)
        .args(["credential", "migrate", "--to", &store])
        .assert()
        .code(3)
        .stdout("")
        .stderr(expected("Migrate credentials"));
    assert_eq!(env.snapshot_files(), before);
    assert_empty(&cluster);
}

#[test]
fn a_failed_handshake_names_whose_part_is_wrong_and_the_setting_that_fixes_it() {
    let certs = TestCerts::new();
    let cluster = EtcdCluster::start(1, Some(&certs));
    let endpoint = &cluster.endpoints()[0];
    let store = format!("etcds://{endpoint}/cio/credentials");
    let client = Some((certs.client_cert.as_path(), certs.client_key.as_path()));
    let fail = |detail: &str, hint: &str| {
        format!(
            "Fail: Create credential: the credential store {store} cannot be reached over TLS: {endpoint}: {detail}\nHint: {hint}\n"
        )
    };

    // A CA file that did not sign the member's certificate.
    let files = Files {
        ca: Some(&certs.other_ca),
        client,
    };
    let detail = format!(
        "the member's certificate is not signed by the CA in the etcd CA file {}",
        certs.other_ca.display()
    );
    let hint = format!(
        "name in {CA_SETTING} the certificate of the CA that signed the members' certificates (the issuer of etcd's --cert-file; openssl x509 -noout -issuer -in FILE shows it)"
    );
    refused(&store, &files, CREATE, &fail(&detail, &hint));

    // No CA file: the system's authorities do not know the test CA.
    let files = Files { ca: None, client };
    refused(
        &store,
        &files,
        CREATE,
        &fail(
            "its certificate is signed by an authority this machine does not trust, and no etcd CA file is given",
            &format!(
                "no etcd CA file is given, so only the system's authorities are trusted: name in {CA_SETTING} the certificate of the CA that signed the members' certificates"
            ),
        ),
    );

    // The member requires a client certificate (etcd --client-cert-auth) and none is given.
    let files = Files {
        ca: Some(&certs.ca),
        client: None,
    };
    refused(
        &store,
        &files,
        CREATE,
        &fail(
            "the server ended the handshake with the TLS alert 'bad certificate': it requires a client certificate, and none is given",
            &format!(
                "the members require a client certificate (etcd --client-cert-auth): name this node's certificate and key in {CLIENT_SETTING}, signed by a CA the members trust (etcd --trusted-ca-file)"
            ),
        ),
    );

    // A client certificate of a CA the member does not trust.
    let files = Files {
        ca: Some(&certs.ca),
        client: Some((&certs.other_client_cert, &certs.other_client_key)),
    };
    refused(
        &store,
        &files,
        CREATE,
        &fail(
            "the server ended the handshake with the TLS alert 'bad certificate': it refused the client certificate given",
            &format!(
                "the client certificate in {CLIENT_SETTING} must be signed by a CA the members trust (etcd --trusted-ca-file), be current, and be meant for client authentication"
            ),
        ),
    );
    assert_empty(&cluster);
}

#[test]
fn a_member_certificate_for_another_name_or_expired_is_named() {
    let certs = TestCerts::new();
    let client = Some((certs.client_cert.as_path(), certs.client_key.as_path()));
    let files = Files {
        ca: Some(&certs.ca),
        client,
    };
    for (cert, key, detail, hint) in [
        (
            &certs.wrong_name_cert,
            &certs.wrong_name_key,
            "its certificate is not valid for the name 127.0.0.1, only for elsewhere.example",
            "name the members in the store location by a host name or address their certificates hold (openssl x509 -noout -ext subjectAltName -in FILE lists them, FILE being etcd's --cert-file), or give the members certificates for the names the location uses",
        ),
        (
            &certs.expired_cert,
            &certs.expired_key,
            "its certificate has expired",
            "give the members current certificates (etcd --cert-file; openssl x509 -noout -dates -in FILE shows their dates), and check this machine's clock",
        ),
    ] {
        let cluster = EtcdCluster::serving(&certs, cert, key);
        let endpoint = &cluster.endpoints()[0];
        let store = format!("etcds://{endpoint}/cio/credentials");
        refused(
            &store,
            &files,
            CREATE,
            &format!(
                "Fail: Create credential: the credential store {store} cannot be reached over TLS: {endpoint}: {detail}\nHint: {hint}\n"
            ),
        );
        assert_empty(&cluster);
    }
}
