//! `cio credential rotate --provider P [--alternate] --access-key`: a new access key and
//! secret key, checked live, written as one.

use serde_json::json;

use cio_credential::{Error, Field, Provider, Role, SetId, rotate_access_key};

use crate::commands::escrow;
use crate::context::Context;
use crate::error::CommandError;
use crate::input::read_key_pair;
use crate::output::warnings_json;

pub fn run(
    ctx: &mut Context,
    provider: Option<Provider>,
    alternate: bool,
) -> Result<(), CommandError> {
    const ACTION: &str = "Rotate credential";
    let fail = |e| CommandError::library(ACTION, e);
    // clap requires --provider with --access-key; this is the library's word for it anyway.
    let provider = provider.ok_or_else(|| {
        fail(Error::NoSuchSet(
            "--access-key needs --provider aws or --provider minio".into(),
        ))
    })?;
    let role = if alternate {
        Role::Alternate
    } else {
        Role::Primary
    };
    let set = SetId { provider, role };
    let (access_name, secret_name) = (set.name(Field::AccessKey), set.name(Field::SecretKey));
    let store = ctx.open(ACTION)?;
    let (access, secret) =
        read_key_pair(&ctx.out, access_name, secret_name).map_err(|problem| {
            CommandError::Input {
                action: format!("{ACTION}: {access_name}"),
                problem,
            }
        })?;
    let done = rotate_access_key(&store, set, &access, &secret).map_err(fail)?;
    for w in &done.warnings {
        ctx.out.warn(format!("{access_name} / {secret_name}: {w}"));
    }
    // The set changed: its escrow bundle too (when recovery recipients are configured).
    escrow::refresh_after_write(ctx, &store, &[access_name, secret_name]);
    if ctx.out.json {
        return Ok(ctx.out.json(&json!({
            "set": {"provider": set.provider, "role": set.role},
            "action": "rotate",
            "names": [
                {"name": access_name, "version": done.versions[0]},
                {"name": secret_name, "version": done.versions[1]},
            ],
            "checked": done.checked,
            "warnings": warnings_json(&done.warnings),
        }))?);
    }
    ctx.out.succeed(
        "Rotate",
        format!(
            "{access_name} and {secret_name} (versions {} and {}, written together; the new pair passed the endpoint, credentials, bucket and permissions checks; 'cio credential restore {access_name}' brings back the previous pair)",
            done.versions[0], done.versions[1]
        ),
    )?;
    Ok(())
}
