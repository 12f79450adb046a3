//! What a server that refused cio's TLS hello speaks: a TLS 1.2 hello offering what Go 1.19
//! offers (its default cipher suites, groups and signature schemes, as restic's client sends
//! them) is sent on a fresh connection, and the server's choice is read from its `ServerHello`.
//!
//! Rules:
//! - only asked after the server ended cio's handshake with an alert (no common cipher suite or
//!   version): a server that chooses, when offered Go's suites, one that rustls does not
//!   implement (RSA key exchange, CBC, 3DES) offers only suites cio does not speak, since it
//!   refused all of cio's; that is [`Unspoken`] (`tls_unchecked`), never a wrong certificate;
//! - a server that answers below TLS 1.2 is left to the first error: Go 1.19 refuses it too;
//! - a server that chooses a suite cio speaks differs from cio in another part of the hello
//!   that Go's offers (signature schemes: Go still offers SHA-1 ones): [`Unspoken`] too;
//! - a server that refuses this hello too is left to the first error (restic fails there
//!   too), which is no certificate problem;
//! - nothing is sent after the hello; the connection is dropped once the answer is read.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{Instant, timeout_at};

use super::connect::Io;
use super::tls::Unspoken;

/// Go 1.19's default TLS 1.2 cipher suites, in its order, and how cio's TLS stands to each:
/// `None` when rustls speaks it, else why not.
const GO_SUITES: &[(u16, &str, Option<&str>)] = &[
    (0xc02b, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", None),
    (0xc02f, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", None),
    (0xc02c, "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", None),
    (0xc030, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", None),
    (
        0xcca9,
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        None,
    ),
    (0xcca8, "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", None),
    (0xc009, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", Some(CBC)),
    (0xc013, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", Some(CBC)),
    (0xc00a, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", Some(CBC)),
    (0xc014, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", Some(CBC)),
    (0x009c, "TLS_RSA_WITH_AES_128_GCM_SHA256", Some(RSA_KX)),
    (0x009d, "TLS_RSA_WITH_AES_256_GCM_SHA384", Some(RSA_KX)),
    (0x002f, "TLS_RSA_WITH_AES_128_CBC_SHA", Some(RSA_KX)),
    (0x0035, "TLS_RSA_WITH_AES_256_CBC_SHA", Some(RSA_KX)),
    (0xc012, "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", Some(CBC)),
    (0x000a, "TLS_RSA_WITH_3DES_EDE_CBC_SHA", Some(RSA_KX)),
];

const CBC: &str = "CBC encryption";
const RSA_KX: &str = "RSA key exchange";

/// Go 1.19's signature schemes (`supportedSignatureAlgorithms`), in its order.
const GO_SCHEMES: &[u16] = &[
    0x0804, 0x0403, 0x0807, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601, 0x0503, 0x0603, 0x0201, 0x0203,
];

/// Go 1.19's groups: X25519, P-256, P-384, P-521.
const GO_GROUPS: &[u16] = &[0x001d, 0x0017, 0x0018, 0x0019];

/// `bytes` behind a big-endian length of `width` bytes.
fn with_len(width: usize, bytes: &[u8]) -> Vec<u8> {
    let len = bytes.len().to_be_bytes();
    let mut out = len[len.len() - width..].to_vec();
    out.extend_from_slice(bytes);
    out
}

fn extension(kind: u16, body: &[u8]) -> Vec<u8> {
    let mut out = kind.to_be_bytes().to_vec();
    out.extend(with_len(2, body));
    out
}

fn u16s(values: &[u16]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_be_bytes()).collect()
}

/// The TLS 1.2 `ClientHello` record Go 1.19 would send (its TLS 1.3 parts left out).
fn client_hello(host: &str) -> Vec<u8> {
    let mut random = [0u8; 32];
    // Any bytes do for a hello that is never completed.
    let _ = getrandom::fill(&mut random);
    let suites: Vec<u16> = GO_SUITES.iter().map(|(id, _, _)| *id).collect();
    let mut extensions = Vec::new();
    if host.parse::<std::net::IpAddr>().is_err() {
        let name = with_len(2, host.as_bytes());
        let mut entry = vec![0u8];
        entry.extend(name);
        extensions.extend(extension(0x0000, &with_len(2, &entry)));
    }
    extensions.extend(extension(0x000a, &with_len(2, &u16s(GO_GROUPS))));
    extensions.extend(extension(0x000b, &[1, 0]));
    extensions.extend(extension(0x000d, &with_len(2, &u16s(GO_SCHEMES))));
    extensions.extend(extension(0xff01, &[0]));
    let mut body = vec![3, 3];
    body.extend_from_slice(&random);
    body.push(0);
    body.extend(with_len(2, &u16s(&suites)));
    body.extend([1, 0]);
    body.extend(with_len(2, &extensions));
    let mut handshake = vec![1];
    handshake.extend(with_len(3, &body));
    let mut record = vec![0x16, 3, 1];
    record.extend(with_len(2, &handshake));
    record
}

/// The cipher suite of a `ServerHello` at the start of `data` (records of type handshake).
fn chosen_suite(data: &[u8]) -> Option<u16> {
    // The first record's payload: handshake type 2, length, version, random, session id.
    let payload = data.get(5..)?;
    if data.first() != Some(&0x16) || payload.first() != Some(&2) {
        return None;
    }
    // Below TLS 1.2 (a server that speaks only 1.0 or 1.1): Go 1.19 refuses it too, so the
    // first failure stands.
    if payload.get(4..6)? < &[3, 3][..] {
        return None;
    }
    let session_len = usize::from(*payload.get(4 + 2 + 32)?);
    let at = 4 + 2 + 32 + 1 + session_len;
    Some(u16::from_be_bytes([
        *payload.get(at)?,
        *payload.get(at + 1)?,
    ]))
}

/// What the server offers that cio does not speak, when it answers Go's hello with such a
/// suite; `None` otherwise (see the module rules).
pub(crate) async fn unspoken_suite(
    mut io: Box<dyn Io>,
    host: &str,
    deadline: Instant,
) -> Option<Unspoken> {
    let exchange = async {
        io.write_all(&client_hello(host)).await?;
        io.flush().await?;
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        while chosen_suite(&answer).is_none() && answer.len() < 64 * 1024 {
            let n = io.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
            if answer.first() != Some(&0x16) {
                break;
            }
        }
        Ok::<_, std::io::Error>(answer)
    };
    let answer = timeout_at(deadline, exchange).await.ok()?.ok()?;
    let suite = chosen_suite(&answer)?;
    let (_, name, why) = GO_SUITES.iter().find(|(id, _, _)| *id == suite)?;
    Some(Unspoken {
        what: match why {
            Some(why) => format!("only TLS 1.2 cipher suites with {why} (such as {name})"),
            // A suite cio speaks, refused in cio's hello: what differs is the rest of it
            // (signature schemes such as SHA-1 ones, which Go still offers).
            None => "TLS settings that restic's hello offers and cio's does not (it refused cio's hello and answered one like restic's)".into(),
        },
    })
}

/// Whether the server behind `io` speaks TLS: it answers a TLS hello with a TLS record (a
/// handshake or an alert, version 3.x). Asked of an `http://` endpoint that did not answer
/// HTTP.
pub(crate) async fn answers_tls(mut io: Box<dyn Io>, host: &str, deadline: Instant) -> bool {
    let exchange = async {
        io.write_all(&client_hello(host)).await?;
        io.flush().await?;
        let mut first = [0u8; 2];
        io.read_exact(&mut first).await?;
        Ok::<_, std::io::Error>(first)
    };
    matches!(
        timeout_at(deadline, exchange).await,
        Ok(Ok([0x15 | 0x16, 0x03]))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hello_is_one_well_formed_record() {
        let hello = client_hello("minio.example.com");
        assert_eq!(&hello[..3], &[0x16, 3, 1]);
        assert_eq!(
            usize::from(u16::from_be_bytes([hello[3], hello[4]])),
            hello.len() - 5
        );
        // The handshake length covers the rest of the record.
        let len = usize::from(hello[6]) << 16 | usize::from(hello[7]) << 8 | usize::from(hello[8]);
        assert_eq!(len, hello.len() - 9);
        // With an IP address, no server name is sent.
        assert!(client_hello("127.0.0.1").len() < hello.len());
    }

    #[test]
    fn the_servers_choice_is_read_from_its_hello() {
        let mut hello = vec![0x16, 3, 3, 0, 0, 2, 0, 0, 0, 3, 3];
        hello.extend([7u8; 32]);
        hello.push(2);
        hello.extend([9, 9]);
        hello.extend([0x00, 0x9d, 0]);
        assert_eq!(chosen_suite(&hello), Some(0x009d));
        assert_eq!(chosen_suite(&[0x15, 3, 3, 0, 2, 2, 40]), None);
        assert_eq!(chosen_suite(&hello[..20]), None);
    }
}
