use super::*;
use crate::catalog::cacert::tests::CERT;
use crate::catalog::{Provider, Role};
use crate::secret::SecretValue;
use crate::store::sqlite::SqliteStore;

const MINIO: SetId = SetId {
    provider: Provider::Minio,
    role: Role::Primary,
};
const AWS_ALT: SetId = SetId {
    provider: Provider::Aws,
    role: Role::Alternate,
};

fn files(dir: &Path) -> CaFiles {
    CaFiles::new(false, |k| {
        (k == "XDG_RUNTIME_DIR").then(|| dir.as_os_str().to_owned())
    })
}

fn os(text: &str) -> Option<OsString> {
    Some(text.into())
}

#[test]
fn the_folder_is_the_runtime_folder_else_run_for_root_else_the_cache() {
    let env = |k: &str| match k {
        "XDG_RUNTIME_DIR" => os("/run/user/1000"),
        "HOME" => os("/home/ann"),
        _ => None,
    };
    let at = |files: CaFiles| files.path(MINIO);
    assert_eq!(
        at(CaFiles::new(false, env)),
        Path::new("/run/user/1000/cio/minio-primary-ca.pem")
    );
    let relative = |k: &str| match k {
        "XDG_RUNTIME_DIR" => os("relative"),
        "HOME" => os("/home/ann"),
        _ => None,
    };
    assert_eq!(
        at(CaFiles::new(true, relative)),
        Path::new("/run/cio/minio-primary-ca.pem")
    );
    assert_eq!(
        at(CaFiles::new(false, relative)),
        Path::new("/home/ann/.cache/cio/minio-primary-ca.pem")
    );
    assert_eq!(
        CaFiles::new(true, |_| None).path(AWS_ALT),
        Path::new("/run/cio/aws-alternate-ca.pem")
    );
}

#[test]
fn an_inherited_file_is_cios_only_under_a_bundle_name() {
    let dir = Path::new("/run/user/7");
    let files = files(dir);
    let bundle = dir.join("cio/aws-alternate-ca.pem");
    assert_eq!(files.inherited(None, os("/mine.pem")), InheritedCa::None);
    assert_eq!(files.inherited(os(""), None), InheritedCa::None);
    assert_eq!(
        files.inherited(os("/etc/ssl/mine.pem"), os("/other.pem")),
        InheritedCa::Own("/etc/ssl/mine.pem".into())
    );
    // Another file in cio's folder is not a bundle.
    let near = dir.join("cio/minio-primary-ca.pem.bak");
    assert_eq!(
        files.inherited(Some(near.clone().into()), None),
        InheritedCa::Own(near)
    );
    assert_eq!(
        files.inherited(Some(bundle.clone().into()), os("/etc/ssl/mine.pem")),
        InheritedCa::Cio {
            set: AWS_ALT,
            own: Some("/etc/ssl/mine.pem".into())
        }
    );
    // The caller's "own" file is never a bundle of cio's.
    let other = dir.join("cio/minio-primary-ca.pem");
    assert_eq!(
        files.inherited(Some(bundle.into()), Some(other.into())),
        InheritedCa::Cio {
            set: AWS_ALT,
            own: None
        }
    );
}

#[test]
fn a_set_without_a_ca_leaves_no_cio_bundle_and_keeps_the_callers_own() {
    let cio = |own: Option<&str>| InheritedCa::Cio {
        set: MINIO,
        own: own.map(PathBuf::from),
    };
    let set = |v: &str| VarChange::Set(v.into());
    assert_eq!(
        ca_variables(&cio(None), None),
        CaVariables {
            ssl_cert_file: VarChange::Unset,
            caller: VarChange::Unset
        }
    );
    assert_eq!(
        ca_variables(&cio(Some("/mine.pem")), None),
        CaVariables {
            ssl_cert_file: set("/mine.pem"),
            caller: VarChange::Unset
        }
    );
    for theirs in [InheritedCa::None, InheritedCa::Own("/mine.pem".into())] {
        assert_eq!(
            ca_variables(&theirs, None),
            CaVariables {
                ssl_cert_file: VarChange::Keep,
                caller: VarChange::Unset
            }
        );
    }
}

#[test]
fn a_set_with_a_ca_names_its_bundle_and_remembers_the_callers_own() {
    let handed = Some(OsStr::new("/run/cio/minio-primary-ca.pem"));
    let set = |v: &str| VarChange::Set(v.into());
    assert_eq!(
        ca_variables(&InheritedCa::Own("/mine.pem".into()), handed),
        CaVariables {
            ssl_cert_file: set("/run/cio/minio-primary-ca.pem"),
            caller: set("/mine.pem")
        }
    );
    let again = InheritedCa::Cio {
        set: MINIO,
        own: Some("/mine.pem".into()),
    };
    assert_eq!(
        ca_variables(&again, handed),
        ca_variables(&InheritedCa::Own("/mine.pem".into()), handed)
    );
    assert_eq!(
        ca_variables(&InheritedCa::None, handed).caller,
        VarChange::Unset
    );
}

#[test]
fn sweep_deletes_the_bundles_of_a_certificate_removed_or_replaced_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = CredentialStore::new(
        Box::new(SqliteStore::new(dir.path().join("store.db"))),
        dir.path().join("key"),
    );
    let runtime = dir.path().join("runtime");
    let files = files(&runtime);
    std::fs::create_dir_all(files.path(MINIO).parent().unwrap()).unwrap();
    let write = |set: SetId, pem: &str| {
        std::fs::write(files.path(set), CaFiles::bundle(set, pem, None).bytes).unwrap();
    };
    let cacert = |set: SetId| set.name(Field::Cacert);
    store
        .put(cacert(MINIO), &SecretValue::new(CERT.into()))
        .unwrap();
    store
        .put(cacert(AWS_ALT), &SecretValue::new(CERT.into()))
        .unwrap();
    write(MINIO, CERT);
    write(AWS_ALT, CERT);
    assert!(files.sweep(&store).is_empty());
    assert!(files.path(MINIO).exists() && files.path(AWS_ALT).exists());

    // Replaced: the bundle of the old certificate goes.
    let chain = format!("{CERT}{CERT}");
    store
        .put(cacert(MINIO), &SecretValue::new(chain.clone()))
        .unwrap();
    assert!(files.sweep(&store).is_empty());
    assert!(!files.path(MINIO).exists(), "a replaced CA's bundle stays");
    assert!(files.path(AWS_ALT).exists(), "another set's bundle went");

    // Removed: the same; a bundle of the new certificate would have stayed.
    write(MINIO, &chain);
    store.remove(cacert(AWS_ALT)).unwrap();
    assert!(files.sweep(&store).is_empty());
    assert!(files.path(MINIO).exists());
    assert!(!files.path(AWS_ALT).exists(), "a removed CA's bundle stays");

    // A file under a bundle's name without cio's header line is the user's: left alone,
    // and said.
    std::fs::write(files.path(MINIO), &chain).unwrap();
    let left = files.sweep(&store);
    assert!(
        matches!(&left[..], [StaleBundle::NotCios { set: MINIO, path }] if *path == files.path(MINIO)),
        "{left:?}"
    );
    assert_eq!(std::fs::read_to_string(files.path(MINIO)).unwrap(), chain);
    assert!(matches!(
        CaFiles::check_replaceable(&files.path(MINIO)),
        Err(BundleNotOurs::NotCios)
    ));
}

#[test]
fn the_folder_must_be_this_users_alone() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let runtime = dir.path().join("runtime");
    let files = files(&runtime);
    // Missing: checked by what is above it.
    files.check_folder().unwrap();
    std::fs::create_dir_all(files.folder()).unwrap();
    files.check_folder().unwrap();
    std::fs::set_permissions(files.folder(), std::fs::Permissions::from_mode(0o777)).unwrap();
    assert!(matches!(
        files.check_folder(),
        Err(UnsafeFolder::Unsafe(crate::files::Unsafe::Folder { .. }))
    ));
    std::fs::set_permissions(files.folder(), std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o777)).unwrap();
    assert!(
        files.check_folder().is_err(),
        "a folder above others may write"
    );
    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o1777)).unwrap();
    files.check_folder().unwrap();
    // A link, even to a folder of this user's.
    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::remove_dir(files.folder()).unwrap();
    std::os::unix::fs::symlink(&elsewhere, files.folder()).unwrap();
    assert!(matches!(files.check_folder(), Err(UnsafeFolder::Link)));
}

/// A runtime folder reached through a link another user owns is refused: that user may point
/// the link elsewhere after `env` printed a path through it (review). A link of this user's
/// or root's is theirs to point.
#[test]
fn a_link_above_the_folder_owned_by_another_user_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real");
    std::fs::create_dir(&real).unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let files = files(&link);
    files.check_folder().unwrap();
    if !crate::paths::running_as_root() {
        return; // only root may give a link to another user
    }
    rustix::fs::chownat(
        rustix::fs::CWD,
        &link,
        Some(rustix::fs::Uid::from_raw(65534)),
        None,
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap();
    let err = files.check_folder().unwrap_err();
    assert!(
        matches!(err, UnsafeFolder::ForeignLink(ref at) if *at == link),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "is reached through {}, a symbolic link of another user",
            link.display()
        )
    );
}

#[test]
fn a_bundle_says_its_certificate_before_the_certificates() {
    let bundle = String::from_utf8(CaFiles::bundle(MINIO, CERT, None).bytes).unwrap();
    let mut lines = bundle.lines();
    assert!(lines.next().unwrap().starts_with("# The CA bundle cio"));
    assert_eq!(lines.next().unwrap(), format!("{MADE_FOR}{}", digest(CERT)));
    assert!(bundle.ends_with(CERT));
}
