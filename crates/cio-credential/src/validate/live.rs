//! Steps 3 to 9, against the real object storage: endpoint, credentials, bucket, permissions,
//! repository, password, summary.
//!
//! Rules: one S3 client per set with the set's static keys (never the environment or a
//! profile), path-style addressing, one attempt per request, and every request bounded by the
//! set's deadline. S3 error codes decide which step failed: a signature error is the
//! credentials' fault even when it answers a bucket request.

use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use tokio::time::{Instant, timeout_at};

use super::offline::Values;
use super::{Check, Options, Report, Status, Step, endpoint};
use crate::catalog::{CredentialName, Field, RepoUrl, Role, SetId};
use crate::restic::{self, ResticError};
use crate::secret::SecretValue;

/// The region requests go to when the host names none.
const DEFAULT_REGION: &str = "us-east-1";

/// The region an AWS host names (`s3.<region>.amazonaws.com`, `s3-<region>.amazonaws.com`,
/// `s3.dualstack.<region>.amazonaws.com`), else `us-east-1`.
pub(super) fn region_of(repo: &RepoUrl) -> String {
    let (host, _) = endpoint::host_port(repo);
    let Some(head) = host.strip_suffix(".amazonaws.com") else {
        return DEFAULT_REGION.to_string();
    };
    let labels: Vec<&str> = head.split('.').collect();
    let region = match labels.as_slice() {
        ["s3", "dualstack", region] | ["s3", region] => Some(*region),
        [single] => single.strip_prefix("s3-"),
        _ => None,
    };
    match region {
        Some(r) if !r.is_empty() && r != "external-1" => r.to_string(),
        _ => DEFAULT_REGION.to_string(),
    }
}

/// Why an S3 request did not succeed, with nothing secret in it.
#[derive(Debug)]
enum S3Failure {
    Timeout,
    Network(String),
    Service {
        status: u16,
        code: String,
        /// The region the server named (header `x-amz-bucket-region` or `<Region>`).
        region: Option<String>,
    },
}

impl S3Failure {
    fn is_region(&self) -> bool {
        match self {
            S3Failure::Service { status, code, .. } => {
                *status == 301
                    || matches!(
                        code.as_str(),
                        "PermanentRedirect"
                            | "AuthorizationHeaderMalformed"
                            | "IllegalLocationConstraintException"
                    )
            }
            _ => false,
        }
    }

    fn region(&self) -> Option<&str> {
        match self {
            S3Failure::Service { region, .. } => region.as_deref(),
            _ => None,
        }
    }
}

fn classify<E: ProvideErrorMetadata + std::error::Error + 'static>(
    err: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> S3Failure {
    match err {
        SdkError::TimeoutError(_) => S3Failure::Timeout,
        SdkError::DispatchFailure(d) if d.is_timeout() => S3Failure::Timeout,
        SdkError::ServiceError(ctx) => {
            let raw = ctx.raw();
            S3Failure::Service {
                status: raw.status().as_u16(),
                code: ctx.err().code().unwrap_or_default().to_string(),
                region: region_in(raw),
            }
        }
        SdkError::ResponseError(ctx) => {
            let raw = ctx.raw();
            S3Failure::Service {
                status: raw.status().as_u16(),
                code: String::new(),
                region: region_in(raw),
            }
        }
        other => S3Failure::Network(DisplayErrorContext(&other).to_string()),
    }
}

/// The region a redirect or a region error names.
fn region_in(raw: &aws_sdk_s3::config::http::HttpResponse) -> Option<String> {
    if let Some(r) = raw.headers().get("x-amz-bucket-region") {
        return Some(r.to_string());
    }
    let body = std::str::from_utf8(raw.body().bytes()?).ok()?;
    let start = body.find("<Region>")? + "<Region>".len();
    let len = body[start..].find("</Region>")?;
    let region = &body[start..start + len];
    let valid = !region.is_empty()
        && region.len() <= 32
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    valid.then(|| region.to_string())
}

/// Everything the live steps share for one set.
struct Ctx<'a> {
    set: SetId,
    repo: &'a RepoUrl,
    host: String,
    deadline: Instant,
    timeout: Duration,
}

impl Ctx<'_> {
    fn name(&self, field: Field) -> CredentialName {
        CredentialName {
            provider: self.set.provider,
            role: self.set.role,
            field,
        }
    }

    /// `bucket/prefix` as an administrator reads it.
    fn place(&self) -> String {
        if self.repo.prefix.is_empty() {
            format!("bucket '{}'", self.repo.bucket)
        } else {
            format!("'{}/{}'", self.repo.bucket, self.repo.prefix)
        }
    }

    /// The object key of `name` inside the repository.
    fn key(&self, name: &str) -> String {
        if self.repo.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}/{name}", self.repo.prefix)
        }
    }

    /// The check a failure stands for; `step` is the one being run, `action` what the key
    /// tried (for `access_denied`).
    fn failure(&self, step: Step, action: &str, failure: &S3Failure) -> Check {
        let secs = self.timeout.as_secs_f64();
        let host = &self.host;
        let (at, code, detail) = match failure {
            S3Failure::Timeout => (
                step,
                "timeout",
                format!(
                    "no answer from {host} within {secs}s (while trying to {action}); the server may be overloaded or the network slow"
                ),
            ),
            S3Failure::Network(why) => (
                step,
                "unreachable",
                format!("the connection to {host} failed while trying to {action}: {why}"),
            ),
            S3Failure::Service { status, code, .. } => match code.as_str() {
                // AWS and MinIO say InvalidAccessKeyId; s3s-based servers say NotSignedUp.
                "InvalidAccessKeyId" | "NotSignedUp" => (
                    Step::Credentials,
                    "invalid_access_key",
                    format!(
                        "{host} does not know the access key in {}; check it, or create a key on the server",
                        self.name(Field::AccessKey)
                    ),
                ),
                "SignatureDoesNotMatch" => (
                    Step::Credentials,
                    "signature_mismatch",
                    format!(
                        "the secret key in {} does not belong to the access key in {}; set the matching secret key",
                        self.name(Field::SecretKey),
                        self.name(Field::AccessKey)
                    ),
                ),
                "RequestTimeTooSkewed" => (
                    Step::Credentials,
                    "clock_skew",
                    format!(
                        "this machine's clock differs from {host}'s by more than 15 minutes; correct the time (NTP) and validate again"
                    ),
                ),
                "ExpiredToken" | "TokenRefreshRequired" | "InvalidToken" => (
                    Step::Credentials,
                    "expired_token",
                    format!(
                        "the access key in {} is a temporary key that has expired; create a long-term access key",
                        self.name(Field::AccessKey)
                    ),
                ),
                "NoSuchBucket" => (
                    Step::Bucket,
                    "no_such_bucket",
                    format!(
                        "bucket '{}' does not exist on {host}; create it, or correct the bucket in {}",
                        self.repo.bucket,
                        self.name(Field::BackupRepo)
                    ),
                ),
                "AccessDenied" | "AllAccessDisabled" => (
                    Step::Permissions,
                    "access_denied",
                    format!(
                        "the key may not {action} in {}; grant it in the bucket or user policy",
                        self.place()
                    ),
                ),
                _ if failure.is_region() => (
                    Step::Bucket,
                    "wrong_region",
                    self.region_detail(failure.region()),
                ),
                "" => (
                    step,
                    "s3_error",
                    format!("{host} answered HTTP {status} when trying to {action}"),
                ),
                other => (
                    step,
                    "s3_error",
                    format!("{host} answered HTTP {status} {other} when trying to {action}"),
                ),
            },
        };
        // A failure is reported at the step being run, or a later one; never an earlier one.
        Check::fail(at.max(step), code, detail)
    }

    fn region_detail(&self, region: Option<&str>) -> String {
        let url = |r: &str| {
            let mut u = format!("s3:https://s3.{r}.amazonaws.com/{}", self.repo.bucket);
            if !self.repo.prefix.is_empty() {
                u.push('/');
                u.push_str(&self.repo.prefix);
            }
            u
        };
        match region {
            Some(r) => format!(
                "bucket '{}' is in region {r}, not {}; write {} as {}",
                self.repo.bucket,
                region_of(self.repo),
                self.name(Field::BackupRepo),
                url(r)
            ),
            None => format!(
                "bucket '{}' is in another region than {}; name its region in {} ({})",
                self.repo.bucket,
                region_of(self.repo),
                self.name(Field::BackupRepo),
                url("REGION")
            ),
        }
    }
}

/// Pushes Ok for every step between the last reported one and `check`'s, then `check`.
/// Returns whether the run may go on.
fn report_at(report: &mut Report, check: Check, oks: &dyn Fn(Step) -> Check) -> bool {
    let last = report.checks.last().map(|c| c.step);
    for step in Step::ALL {
        if last.is_none_or(|l| step > l) && step < check.step {
            report.push(oks(step));
        }
    }
    report.push(check)
}

fn client(
    repo: &RepoUrl,
    access_key: &SecretValue,
    secret_key: &SecretValue,
    region: &str,
    timeout: Duration,
) -> Client {
    let credentials = Credentials::from_keys(access_key.expose(), secret_key.expose(), None);
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .endpoint_url(repo.endpoint())
        .force_path_style(true)
        .credentials_provider(credentials)
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(timeout)
                .operation_timeout(timeout)
                .build(),
        )
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
        .build();
    Client::from_conf(config)
}

/// Lists at most one object of the repository: the request that proves credentials, bucket
/// and the list permission.
async fn list_probe(client: &Client, ctx: &Ctx<'_>) -> Result<(), S3Failure> {
    let mut req = client
        .list_objects_v2()
        .bucket(&ctx.repo.bucket)
        .max_keys(1);
    if !ctx.repo.prefix.is_empty() {
        req = req.prefix(format!("{}/", ctx.repo.prefix));
    }
    match timeout_at(ctx.deadline, req.send()).await {
        Err(_) => Err(S3Failure::Timeout),
        Ok(r) => r.map(|_| ()).map_err(classify),
    }
}

/// Reads an object; `Ok(None)` when it does not exist.
async fn get(client: &Client, ctx: &Ctx<'_>, key: &str) -> Result<Option<Vec<u8>>, S3Failure> {
    let req = client.get_object().bucket(&ctx.repo.bucket).key(key);
    let fetch = async {
        match req.send().await {
            Ok(out) => out
                .body
                .collect()
                .await
                .map(|b| Some(b.into_bytes().to_vec()))
                .map_err(|e| S3Failure::Network(e.to_string())),
            Err(e) => match classify(e) {
                S3Failure::Service { code, .. } if code == "NoSuchKey" => Ok(None),
                S3Failure::Service {
                    status: 404, code, ..
                } if code.is_empty() => Ok(None),
                other => Err(other),
            },
        }
    };
    timeout_at(ctx.deadline, fetch)
        .await
        .unwrap_or(Err(S3Failure::Timeout))
}

/// The keys under `dir/` (at most `limit`, or all when `None`).
async fn list(
    client: &Client,
    ctx: &Ctx<'_>,
    dir: &str,
    limit: Option<usize>,
) -> Result<Vec<String>, S3Failure> {
    let prefix = format!("{}/", ctx.key(dir));
    let mut keys = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let req = client
            .list_objects_v2()
            .bucket(&ctx.repo.bucket)
            .prefix(&prefix)
            .set_continuation_token(token.take());
        let out = match timeout_at(ctx.deadline, req.send()).await {
            Err(_) => return Err(S3Failure::Timeout),
            Ok(r) => r.map_err(classify)?,
        };
        for object in out.contents() {
            if let Some(key) = object.key()
                && !key.ends_with('/')
            {
                keys.push(key.to_string());
                if limit.is_some_and(|l| keys.len() >= l) {
                    return Ok(keys);
                }
            }
        }
        match out.next_continuation_token() {
            Some(t) if out.is_truncated() == Some(true) => token = Some(t.to_string()),
            _ => return Ok(keys),
        }
    }
}

/// Runs steps 3 to 9 into `report`.
pub(super) async fn check(set: SetId, values: Values<'_>, opts: &Options, report: &mut Report) {
    let deadline = Instant::now() + opts.timeout;
    if !report.push(endpoint::check(&values.repo, deadline, opts.timeout).await) {
        return;
    }
    let (host, port) = endpoint::host_port(&values.repo);
    let ctx = Ctx {
        set,
        repo: &values.repo,
        host: format!("{host}:{port}"),
        deadline,
        timeout: opts.timeout,
    };
    let mut region = region_of(&values.repo);
    let mut s3 = client(
        &values.repo,
        values.access_key,
        values.secret_key,
        &region,
        opts.timeout,
    );

    // Steps 4, 5 and the list half of 6: one list request, asked again once in the region
    // the server names if it names another.
    let mut probe = list_probe(&s3, &ctx).await;
    let mut moved_to = None;
    if let Err(f) = &probe
        && f.is_region()
        && let Some(r) = f.region().filter(|r| *r != region).map(str::to_string)
    {
        s3 = client(
            &values.repo,
            values.access_key,
            values.secret_key,
            &r,
            opts.timeout,
        );
        region = r.clone();
        moved_to = Some(r);
        probe = list_probe(&s3, &ctx).await;
    }
    let oks = |step: Step| match step {
        Step::Credentials => Check::ok(
            step,
            format!("{} accepted the access key and its signature", ctx.host),
        ),
        Step::Bucket => Check::ok(
            step,
            format!("bucket '{}' exists (region {region})", ctx.repo.bucket),
        ),
        Step::Permissions => Check::ok(step, "the key may list and read"),
        other => Check::ok(other, "ok"),
    };
    if let Some(r) = &moved_to {
        let credentials = match &probe {
            Err(f) if f.is_region() => Check::new(
                Step::Credentials,
                Status::Warn,
                "unverified",
                format!(
                    "{} keeps sending the requests to another region; the keys could not be checked",
                    ctx.host
                ),
            ),
            // Only a credentials failure matters here: the bucket step reports the region.
            Err(f) => {
                let check = ctx.failure(Step::Credentials, "list objects", f);
                if check.step == Step::Credentials {
                    check
                } else {
                    oks(Step::Credentials)
                }
            }
            Ok(()) => oks(Step::Credentials),
        };
        if !report.push(credentials) {
            return;
        }
        report.push(Check::fail(
            Step::Bucket,
            "wrong_region",
            ctx.region_detail(Some(r)),
        ));
        return;
    }
    if let Err(f) = &probe {
        report_at(
            report,
            ctx.failure(Step::Credentials, "list objects", f),
            &oks,
        );
        return;
    }
    report.push(oks(Step::Credentials));
    report.push(oks(Step::Bucket));

    // Step 6: read (the repository's config, which step 7 needs anyway) and optionally write.
    let config = match get(&s3, &ctx, &ctx.key("config")).await {
        Ok(c) => c,
        Err(f) => {
            report.push(ctx.failure(Step::Permissions, "read objects", &f));
            return;
        }
    };
    if opts.write_check {
        match write_probe(&s3, &ctx).await {
            Ok(()) => report.push(Check::ok(
                Step::Permissions,
                "the key may list, read, write and delete",
            )),
            Err(check) => report.push(check),
        };
        if report
            .checks
            .last()
            .is_some_and(|c| c.status == Status::Fail)
        {
            return;
        }
    } else {
        report.push(oks(Step::Permissions));
    }

    // Step 7.
    let url = values.repo_url_text();
    let Some(config) = config else {
        match set.role {
            Role::Primary => {
                report.push(Check::new(
                    Step::Repository,
                    Status::Warn,
                    "repo_not_initialized",
                    format!(
                        "no restic repository at {url} yet; create it with 'cio credential exec -- restic init'"
                    ),
                ));
                report.skip_rest("skipped", "not checked: the repository does not exist yet");
            }
            Role::Alternate => {
                report.push(Check::fail(
                    Step::Repository,
                    "repo_not_initialized",
                    format!(
                        "no restic repository at {url}; the alternate set must point at another cluster's existing repository: check the bucket and prefix in {}",
                        ctx.name(Field::BackupRepo)
                    ),
                ));
            }
        }
        return;
    };
    report.push(Check::ok(
        Step::Repository,
        format!("restic repository found at {url}"),
    ));

    // Step 8.
    if !report.push(password(&s3, &ctx, &config, values.password).await) {
        return;
    }

    // Step 9.
    report.push(match list(&s3, &ctx, "snapshots", None).await {
        Ok(snaps) => Check::ok(
            Step::Summary,
            match snaps.len() {
                0 => "no snapshots yet".to_string(),
                1 => "1 snapshot".to_string(),
                n => format!("{n} snapshots"),
            },
        ),
        Err(f) => ctx.failure(Step::Summary, "list snapshots", &f),
    });
}

impl Values<'_> {
    /// The repository URL as written (not secret).
    fn repo_url_text(&self) -> String {
        let mut url = format!("s3:{}/{}", self.repo.endpoint(), self.repo.bucket);
        if !self.repo.prefix.is_empty() {
            url.push('/');
            url.push_str(&self.repo.prefix);
        }
        url
    }
}

/// Writes and deletes a small probe object.
async fn write_probe(client: &Client, ctx: &Ctx<'_>) -> Result<(), Check> {
    let mut random = [0u8; 8];
    // Without randomness the fixed name still works; only concurrent validations could clash.
    let _ = getrandom::fill(&mut random);
    let key = ctx.key(&format!("cio-validate-{}", hex::encode(random)));
    let put = client
        .put_object()
        .bucket(&ctx.repo.bucket)
        .key(&key)
        .body(ByteStream::from_static(b"cio credential validate probe\n"))
        .send();
    match timeout_at(ctx.deadline, put).await {
        Err(_) => return Err(ctx.failure(Step::Permissions, "write objects", &S3Failure::Timeout)),
        Ok(Err(e)) => return Err(ctx.failure(Step::Permissions, "write objects", &classify(e))),
        Ok(Ok(_)) => {}
    }
    let delete = client
        .delete_object()
        .bucket(&ctx.repo.bucket)
        .key(&key)
        .send();
    let failure = match timeout_at(ctx.deadline, delete).await {
        Err(_) => S3Failure::Timeout,
        Ok(Err(e)) => classify(e),
        Ok(Ok(_)) => return Ok(()),
    };
    let mut check = ctx.failure(Step::Permissions, "delete objects", &failure);
    check.detail = format!("{}; remove the probe object '{key}' by hand", check.detail);
    Err(check)
}

/// Step 8: does the password open one of the key files, and the config with it.
async fn password(client: &Client, ctx: &Ctx<'_>, config: &[u8], password: &SecretValue) -> Check {
    let name = ctx.name(Field::BackupPassword);
    let keys = match list(client, ctx, "keys", Some(restic::MAX_KEY_FILES)).await {
        Ok(k) => k,
        Err(f) => return ctx.failure(Step::Password, "list key files", &f),
    };
    if keys.is_empty() {
        return Check::fail(
            Step::Password,
            "no_keys",
            "the repository has no key files under keys/; it is damaged or not a restic repository",
        );
    }
    let mut files = Vec::with_capacity(keys.len());
    for key in &keys {
        match get(client, ctx, key).await {
            Ok(Some(bytes)) => {
                let id = key.rsplit('/').next().unwrap_or(key).to_string();
                files.push((id, bytes));
            }
            Ok(None) => {}
            Err(f) => return ctx.failure(Step::Password, "read key files", &f),
        }
    }
    let count = files.len();
    let config = config.to_vec();
    // A copy the blocking task owns; zeroed when dropped like the original.
    let password = SecretValue::new(password.expose().to_string());
    let work = tokio::task::spawn_blocking(move || {
        let opened = restic::open_any(
            files.iter().map(|(id, b)| (id.as_str(), b.as_slice())),
            &password,
        )?;
        opened
            .map(|(id, master)| master.open_config(&config).map(|c| (id, c)))
            .transpose()
    });
    let secs = ctx.timeout.as_secs_f64();
    let outcome = match timeout_at(ctx.deadline, work).await {
        Err(_) => {
            return Check::fail(
                Step::Password,
                "timeout",
                format!(
                    "trying the password on {count} key files took longer than {secs}s; validate again with a longer --timeout"
                ),
            );
        }
        Ok(Err(e)) => {
            return Check::fail(
                Step::Password,
                "internal",
                format!("the password check stopped: {e}"),
            );
        }
        Ok(Ok(outcome)) => outcome,
    };
    match outcome {
        Ok(Some((id, config))) => Check::ok(
            Step::Password,
            format!(
                "the password opens key {}; repository {}, format version {}",
                short(&id),
                short(&config.id),
                config.version
            ),
        ),
        Ok(None) => Check::fail(
            Step::Password,
            "wrong_password",
            format!(
                "the password in {name} opens none of the repository's {count} key files; set the password this repository was created with"
            ),
        ),
        Err(ResticError::Unauthenticated(what)) => Check::fail(
            Step::Password,
            "config_damaged",
            format!(
                "the password opens a key, but the repository's {what} does not open with it; the repository is damaged"
            ),
        ),
        Err(e) => Check::fail(
            Step::Password,
            "bad_key_file",
            format!("{e}; the repository's keys/ folder is damaged"),
        ),
    }
}

/// The first 8 characters of an id, as restic shows them.
fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_from_aws_hosts() {
        let r = |s: &str| region_of(&RepoUrl::parse(s).expect("valid"));
        assert_eq!(r("s3:s3.amazonaws.com/bucket"), "us-east-1");
        assert_eq!(r("s3:s3.eu-west-1.amazonaws.com/bucket"), "eu-west-1");
        assert_eq!(
            r("s3:https://s3-us-west-2.amazonaws.com/bucket"),
            "us-west-2"
        );
        assert_eq!(
            r("s3:s3.dualstack.ap-south-1.amazonaws.com/bucket"),
            "ap-south-1"
        );
        assert_eq!(r("s3:http://127.0.0.1:9000/bucket"), "us-east-1");
    }
}
