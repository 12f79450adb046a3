//! Steps 3 to 9 against the real object storage, one function per step, in [`Step`] order:
//! each takes what the step before it produced, so no step can run before the one it needs.
//!
//! Requests overlap where restic's would not depend on each other's answers (the key folders of
//! both layouts, the `config`, the snapshot and lock lists are asked at once), and key files
//! are read together; the verdicts are still reported step by step, the first failure first.
//! Folder names are the repository's layout's ([`Layout`], detected as restic detects it).

use bytes::Bytes;
use tokio::time::Instant;

use super::contents;
use super::endpoint::{self, Reached};
use super::failure::{Action, Place};
use super::layout::Layout;
use super::offline::Values;
use super::password::{self, Opened};
use super::region::{DEFAULT_REGION, REGION_CODES, RegionSource, regional_host};
use super::s3::{Listing, S3, S3Failure};
use super::{Check, Options, Report, Status, Step};
use crate::catalog::{Field, RepoUrl, Role, SetId};
use crate::restic;

/// What a step produced, and its check; or the failed check that stops the run.
type Outcome<T> = Result<(T, Check), Check>;

/// The answers fetched together once the region is known.
struct Fetched {
    /// The listing of `keys/`: restic's first request, whatever the layout.
    keys: Result<Listing, S3Failure>,
    layout: Layout,
    /// The key folder of the layout.
    layout_keys: Result<Listing, S3Failure>,
    config: Result<Option<Bytes>, S3Failure>,
    snapshots: Result<Listing, S3Failure>,
    locks: Result<Listing, S3Failure>,
}

/// Credentials and bucket proved: the key list answered.
struct Signed {
    s3: S3,
    place: Place,
    fetched: Fetched,
}

/// The key may do what restic needs.
struct Permitted {
    signed: Signed,
    config: Option<Bytes>,
}

/// A repository is at the URL.
struct Found {
    signed: Signed,
    config: Bytes,
}

/// Runs steps 3 to 9 into `report`.
pub(super) async fn run(set: SetId, values: &Values<'_>, opts: &Options, report: &mut Report) {
    let deadline = Instant::now() + opts.timeout;
    // restic drops a proxy value it cannot read without a word and goes direct: said here,
    // since whoever set it meant the storage to be reached through a proxy.
    let target = endpoint::target(&values.repo);
    if let Some(variable) = opts
        .proxies
        .ignored(&target.scheme, &target.host, target.port)
    {
        report.push(Check::new(
            Step::Endpoint,
            Status::Warn,
            "proxy_ignored",
            format!(
                "{variable} is set but is not a proxy URL restic can read, so restic ignores it and connects directly (as this check did); correct it (e.g. http://proxy.example.com:3128, with special characters in a password percent-encoded) or unset it"
            ),
        ));
    }
    let reached = match endpoint::run(set, values, opts, deadline).await {
        Ok((reached, check)) => {
            report.push(check);
            reached
        }
        Err(check) => {
            let cannot_tell = check.status == Status::Warn;
            report.push(check);
            if cannot_tell {
                report.skip_rest(
                    "skipped",
                    "not checked: cio cannot speak this server's TLS (see the endpoint step)",
                );
            }
            return;
        }
    };
    let Some(signed) = credentials_and_bucket(reached, report).await else {
        return;
    };
    let Some(permitted) = advance(report, permissions(signed, set.role, opts).await) else {
        return;
    };
    let found = match repository(permitted, &values.repo, set).await {
        Ok((found, check)) => {
            report.push(check);
            found
        }
        Err(check) => {
            let init_later = check.status == Status::Warn;
            report.push(check);
            if init_later {
                report.skip_rest("skipped", "not checked: the repository does not exist yet");
            }
            return;
        }
    };
    let Some((signed, opened)) = advance(report, password_step(found, values, opts).await) else {
        return;
    };
    for check in summary(&signed, &opened, set).await {
        report.push(check);
    }
}

fn advance<T>(report: &mut Report, outcome: Outcome<T>) -> Option<T> {
    match outcome {
        Ok((next, check)) => report.push(check).then_some(next),
        Err(check) => {
            report.push(check);
            None
        }
    }
}

/// Lists `folder` of the repository one level deep, as restic lists its folders.
async fn list_folder(s3: &S3, place: &Place, folder: &str) -> Result<Listing, S3Failure> {
    let dir = format!("{}/", object_key(&place.prefix, folder));
    s3.list(&dir, true, None).await
}

/// Asks for both layouts' key folders, the `config` and the default layout's snapshot and
/// lock folders at once; the old layout's are asked after, when it is the one detected.
async fn fetch(s3: &S3, place: &Place) -> Fetched {
    let config_key = object_key(&place.prefix, "config");
    let default = Layout::Default;
    let legacy = Layout::S3Legacy;
    let (keys, key, config, snapshots, locks) = tokio::join!(
        list_folder(s3, place, default.keys()),
        list_folder(s3, place, legacy.keys()),
        s3.get(&config_key),
        list_folder(s3, place, default.snapshots()),
        list_folder(s3, place, default.locks()),
    );
    let layout = Layout::detect(&keys, &key);
    if layout == Layout::Default {
        return Fetched {
            layout_keys: keys.clone(),
            keys,
            layout,
            config,
            snapshots,
            locks,
        };
    }
    let (snapshots, locks) = tokio::join!(
        list_folder(s3, place, legacy.snapshots()),
        list_folder(s3, place, legacy.locks()),
    );
    Fetched {
        keys,
        layout,
        layout_keys: key,
        config,
        snapshots,
        locks,
    }
}

/// The object key of `name` inside the repository at `prefix`.
pub(super) fn object_key(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}/{name}")
    }
}

/// The region a refusal names, when it is one minio-go follows.
fn named_region(f: &S3Failure) -> Option<Option<String>> {
    match f {
        S3Failure::Service { code, region, .. } if REGION_CODES.contains(&code.as_str()) => {
            Some(region.clone())
        }
        _ => None,
    }
}

/// Steps 4 and 5: settle the region as minio-go does, then list the key files (restic's first
/// request to a repository): an answer proves the keys and the bucket.
async fn credentials_and_bucket(reached: Reached, report: &mut Report) -> Option<Signed> {
    let Reached {
        mut s3,
        mut place,
        configured,
        location,
    } = reached;
    if !configured {
        let region = match &location {
            Ok(region) => Some((region.clone(), RegionSource::Server)),
            Err(f) => match named_region(f) {
                Some(Some(r)) => Some((r, RegionSource::Server)),
                Some(None) => Some((DEFAULT_REGION.to_string(), RegionSource::Default)),
                None => None,
            },
        };
        match (region, location) {
            (Some((region, source)), _) => {
                if let Some(host) = regional_host(&place.typed_host, &region) {
                    s3 = s3.with_host(&host);
                }
                s3.set_region(&region);
                place.region = region;
                place.region_source = source;
            }
            // restic stops here too: minio-go returns this error for every request.
            (None, Err(f)) => {
                report.push_after_oks(place.check(Step::Credentials, Action::Location, &f), &|s| {
                    oks(s, &place)
                });
                return None;
            }
            (None, Ok(_)) => {}
        }
    }
    let mut fetched = fetch(&s3, &place).await;
    // minio-go asks once more in the region a refusal names, when none is configured.
    if !configured
        && let Err(f) = &fetched.keys
        && let Some(Some(r)) = named_region(f)
        && r != place.region
    {
        s3.set_region(&r);
        place.region = r;
        place.region_source = RegionSource::Server;
        fetched = fetch(&s3, &place).await;
    }
    match &fetched.keys {
        Ok(_) => {}
        Err(f) => {
            report.push_after_oks(place.check(Step::Credentials, Action::List, f), &|s| {
                oks(s, &place)
            });
            return None;
        }
    };
    report.push(oks(Step::Credentials, &place));
    report.push(oks(Step::Bucket, &place));
    Some(Signed { s3, place, fetched })
}

/// The Ok check of a step whose request succeeded.
fn oks(step: Step, place: &Place) -> Check {
    match step {
        Step::Credentials => Check::ok(
            step,
            format!(
                "{} accepted the access key and its signature",
                place.address
            ),
        ),
        Step::Bucket => {
            let from = match place.region_source {
                RegionSource::Credential => format!(", from {}", place.region_name()),
                RegionSource::Server => ", as the server says".to_string(),
                RegionSource::Host | RegionSource::Default => String::new(),
            };
            Check::ok(
                step,
                format!(
                    "bucket '{}' exists (region {}{from})",
                    place.bucket, place.region
                ),
            )
        }
        Step::Permissions => Check::ok(step, "the key may list and read"),
        other => Check::ok(other, "ok"),
    }
}

/// Step 6: read (the `config` restic reads), and with the write check what `restic init`
/// (its bucket check, when there is no repository yet) and `restic backup` (write and delete)
/// ask.
async fn permissions(signed: Signed, role: Role, opts: &Options) -> Outcome<Permitted> {
    let config = match &signed.fetched.config {
        Ok(c) => c.clone(),
        Err(f) => return Err(signed.place.check(Step::Permissions, Action::Read, f)),
    };
    if !opts.write_check {
        let check = oks(Step::Permissions, &signed.place);
        return Ok((Permitted { signed, config }, check));
    }
    if config.is_none() && role == Role::Primary {
        signed.s3.head_bucket().await.map_err(|f| {
            signed
                .place
                .check(Step::Permissions, Action::HeadBucket, &f)
        })?;
    }
    let probe = write_probe(&signed.s3, &signed.place).await;
    let check = match (role, probe) {
        (Role::Primary, Ok(())) => Check::ok(
            Step::Permissions,
            "the key may list, read, write and delete",
        ),
        (Role::Primary, Err(failed)) => return Err(failed),
        // The alternate repository belongs to another cluster: a key that could change it
        // is one mistake away from damaging that cluster's backups; one that may not write
        // is what this set should hold.
        (Role::Alternate, Ok(())) => Check::new(
            Step::Permissions,
            Status::Warn,
            "alternate_can_write",
            "the key may list, read, write and delete; the alternate repository is another cluster's: give this set a read-only key",
        ),
        (Role::Alternate, Err(denied)) if denied.code == "access_denied" => Check::ok(
            Step::Permissions,
            "the key may list and read, and may not write: restore-only, as an alternate set should be",
        ),
        (Role::Alternate, Err(failed)) => return Err(failed),
    };
    Ok((Permitted { signed, config }, check))
}

/// Writes and deletes a small probe object beside the repository's files.
async fn write_probe(s3: &S3, place: &Place) -> Result<(), Check> {
    let mut random = [0u8; 8];
    // Without randomness the fixed name still works; only concurrent validations could clash.
    let _ = getrandom::fill(&mut random);
    let key = object_key(
        &place.prefix,
        &format!("cio-validate-{}", hex::encode(random)),
    );
    s3.put(
        &key,
        bytes::Bytes::from_static(b"cio credential validate probe\n"),
    )
    .await
    .map_err(|f| place.check(Step::Permissions, Action::Write, &f))?;
    s3.delete(&key).await.map_err(|f| {
        let mut check = place.check(Step::Permissions, Action::Delete, &f);
        check.detail = format!("{}; remove the probe object '{key}' by hand", check.detail);
        check
    })
}

/// Step 7: is a repository (its `config`) at the URL? If not, is one a level off?
async fn repository(permitted: Permitted, repo: &RepoUrl, set: SetId) -> Outcome<Found> {
    let Permitted { signed, config } = permitted;
    let url = repo.text_at(&repo.prefix);
    if let Some(config) = config {
        // restic looks at the config's size before it searches the keys, and stops on an
        // empty one whatever the password ("config file has zero size, invalid
        // repository?"); one of 1 to 15 bytes it reads with the key, and crashes on.
        if config.is_empty() {
            let object = format!(
                "{}/{}",
                signed.place.bucket,
                object_key(&signed.place.prefix, "config")
            );
            return Err(Check::fail(
                Step::Repository,
                "config_empty",
                format!(
                    "the restic repository at {url} has an empty config (0 bytes): restic cannot open it (\"config file has zero size, invalid repository?\"); restore '{object}' from a copy of the bucket; do not remove it to run 'restic init' there, which writes a new config and key over the old files"
                ),
            ));
        }
        return Ok((
            Found { signed, config },
            Check::ok(
                Step::Repository,
                format!("restic repository found at {url}"),
            ),
        ));
    }
    let repo_name = signed.place.name(Field::BackupRepo);
    let folders = repository_folders(&signed).await?;
    if !folders.is_empty() {
        // restic stops on every command ("unable to open config file"), and 'restic init'
        // would write a new config and master key beside the old keys and data.
        return Err(Check::fail(
            Step::Repository,
            "config_missing",
            format!(
                "the restic repository at {url} has no config (it has {}): restic cannot open it (\"unable to open config file\"); restore the object 'config' from a backup of the bucket, or correct {repo_name} if the repository is elsewhere; do not run 'restic init' there, which writes a new config and key over the old files",
                folders.join(", ")
            ),
        ));
    }
    if let Some(elsewhere) = nearby_repository(&signed.s3, &signed.place).await {
        let other = repo.text_at(&elsewhere);
        let init = if set.role == Role::Primary {
            "; 'restic init' here would start a second, empty repository"
        } else {
            ""
        };
        return Err(Check::fail(
            Step::Repository,
            "repo_elsewhere",
            format!(
                "no restic repository at {url}, but there is one at {other}: correct {repo_name}{init}"
            ),
        ));
    }
    Err(match set.role {
        Role::Primary => Check::new(
            Step::Repository,
            Status::Warn,
            "repo_not_initialized",
            format!(
                "no restic repository at {url} yet; create it with 'cio credential exec {} -- restic init'",
                set.options()
            ),
        ),
        Role::Alternate => Check::fail(
            Step::Repository,
            "repo_not_initialized",
            format!(
                "no restic repository at {url}; the alternate set must point at another cluster's existing repository: check the bucket and prefix in {repo_name}"
            ),
        ),
    })
}

/// The most files listed of `data/` and `index/` to find one named as restic names them.
const FOLDER_SAMPLE: usize = 20;

/// The repository folders (`keys/`, `data/`, `index/`, `snapshots/`, `locks/`, or the old
/// layout's names) at the URL that hold a file named by an id, as restic names its files:
/// the signs of a repository, whose `config` restic needs before anything else.
async fn repository_folders(signed: &Signed) -> Result<Vec<String>, Check> {
    let Signed { s3, place, fetched } = signed;
    let layout = fetched.layout;
    let sample = |folder: &'static str| async move {
        let dir = format!("{}/", object_key(&place.prefix, folder));
        s3.list(&dir, false, Some(FOLDER_SAMPLE)).await
    };
    let (data, index) = tokio::join!(sample("data"), sample("index"));
    let mut found = Vec::new();
    for (folder, listing) in [
        (Layout::Default.keys(), &fetched.keys),
        (layout.keys(), &fetched.layout_keys),
        ("data", &data),
        ("index", &index),
        (layout.snapshots(), &fetched.snapshots),
        (layout.locks(), &fetched.locks),
    ] {
        let listing = listing
            .as_ref()
            .map_err(|f| place.check(Step::Repository, Action::List, f))?;
        let has_id = listing
            .keys
            .iter()
            .filter_map(|k| k.rsplit('/').next())
            .any(restic::is_id);
        let name = format!("{folder}/");
        if has_id && !found.contains(&name) {
            found.push(name);
        }
    }
    Ok(found)
}

/// The most sub-folders searched for a repository one level down.
const MAX_NEARBY: usize = 20;

/// The prefix of a repository one level below `place.prefix`, or at its parent.
async fn nearby_repository(s3: &S3, place: &Place) -> Option<String> {
    let has_config = |prefix: String| async move {
        let key = object_key(&prefix, "config");
        match s3.list(&key, false, Some(1)).await {
            Ok(l) if l.keys.first() == Some(&key) => Some(prefix),
            _ => None,
        }
    };
    let folder = if place.prefix.is_empty() {
        String::new()
    } else {
        format!("{}/", place.prefix)
    };
    let below = match s3.list(&folder, true, None).await {
        Ok(l) => l.prefixes,
        Err(_) => Vec::new(),
    };
    let parent = (!place.prefix.is_empty()).then(|| {
        place
            .prefix
            .rsplit_once('/')
            .map_or(String::new(), |(p, _)| p.to_string())
    });
    let candidates: Vec<String> = below
        .iter()
        .take(MAX_NEARBY)
        .map(|p| p.trim_end_matches('/').to_string())
        .chain(parent)
        .collect();
    let found = futures_util::future::join_all(candidates.into_iter().map(has_config)).await;
    found.into_iter().flatten().next()
}

/// Step 8.
async fn password_step(
    found: Found,
    values: &Values<'_>,
    opts: &Options,
) -> Outcome<(Signed, Opened)> {
    let Found { signed, config } = found;
    let keys = match &signed.fetched.layout_keys {
        Ok(keys) => keys.clone(),
        Err(f) => return Err(signed.place.check(Step::Password, Action::List, f)),
    };
    let (check, opened) = password::check(
        &signed.s3,
        &signed.place,
        &keys,
        signed.fetched.layout.keys(),
        &config,
        values.password,
        opts,
    )
    .await;
    match opened {
        Some(opened) if check.status != Status::Fail => Ok(((signed, opened), check)),
        _ => Err(check),
    }
}

/// Step 9: what the repository holds, and what in it would stop restic.
async fn summary(signed: &Signed, opened: &Opened, set: SetId) -> Vec<Check> {
    let Signed { s3, place, fetched } = signed;
    let layout = fetched.layout;
    let snapshots = match &fetched.snapshots {
        Ok(listing) => {
            contents::snapshots(s3, place, layout.snapshots(), listing, opened, set.role).await
        }
        Err(f) => return vec![place.check(Step::Summary, Action::List, f)],
    };
    let mut checks = vec![snapshots];
    match &fetched.locks {
        Ok(listing) => {
            checks.extend(contents::locks(s3, place, layout.locks(), listing, opened, set).await)
        }
        Err(f) => checks.push(place.check(Step::Summary, Action::List, f)),
    }
    checks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_keys() {
        assert_eq!(object_key("", "config"), "config");
        assert_eq!(object_key("p/q", "keys"), "p/q/keys");
    }
}
