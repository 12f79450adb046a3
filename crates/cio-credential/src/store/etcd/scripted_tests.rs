//! Failure classification against scripted members.
//!
//! Each member here is a scripted HTTP responder (a std `TcpListener` on loopback), not a
//! real etcd: these tests need replies on demand that no real etcd can be made to send when
//! asked — a 503 or a proxy's 401 page, "request timed out", a reset connection, silence,
//! garbage — and the exact order of them across members. What a real etcd answers is tested
//! against real members in `tests.rs` and `crates/cio-credential/tests/etcd.rs`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::secret::SecretValue;
use crate::store::Action;

/// What a scripted member does with one request.
#[derive(Clone, Copy)]
enum Reply {
    /// Answers with this HTTP status and body.
    Http(u16, &'static str),
    /// Reads the request, then resets the connection instead of answering.
    Reset,
    /// Reads the request, then closes the connection without answering.
    Close,
    /// Reads the request and never answers, holding the connection open.
    Silent,
}

/// One request a scripted member received.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    path: String,
    authorization: Option<String>,
}

/// A scripted member: answers its n-th connection with `script[n]`, and every later one
/// with the script's last reply. Each answer closes its connection.
struct Member {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Member {
    fn start(script: &[Reply]) -> Member {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (script, log) = (script.to_vec(), Arc::clone(&seen));
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for (n, stream) in listener.incoming().enumerate() {
                let stream = stream.unwrap();
                let reply = script[n.min(script.len() - 1)];
                if let Some(stream) = serve(stream, reply, &log) {
                    held.push(stream);
                }
            }
        });
        Member { port, seen }
    }

    fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn paths(&self) -> Vec<String> {
        self.seen().into_iter().map(|s| s.path).collect()
    }
}

/// Answers one connection; returns it when it must stay open ([`Reply::Silent`]).
fn serve(stream: TcpStream, reply: Reply, log: &Mutex<Vec<Seen>>) -> Option<TcpStream> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let path = line.split(' ').nth(1).unwrap_or_default().to_string();
    let (mut length, mut authorization) = (0, None);
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(": ").unwrap();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.parse().unwrap(),
            "authorization" => authorization = Some(value.to_string()),
            _ => {}
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    log.lock().unwrap().push(Seen {
        path,
        authorization,
    });
    let mut stream = reader.into_inner();
    match reply {
        Reply::Http(status, body) => {
            let answer = format!(
                "HTTP/1.1 {status} Scripted\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(answer.as_bytes()).unwrap();
            None
        }
        Reply::Reset => {
            // SO_LINGER with a zero timeout: closing sends a reset instead of a FIN.
            rustix::net::sockopt::set_socket_linger(&stream, Some(Duration::ZERO)).unwrap();
            None
        }
        Reply::Close => None,
        Reply::Silent => Some(stream),
    }
}

/// The time budget of the stores under test: short, because a member that fails a read is
/// asked again until the budget runs out.
const BUDGET: Duration = Duration::from_millis(300);

fn store_of(members: &[&Member], auth: Option<(&str, &str)>) -> EtcdStore {
    let endpoints: Vec<String> = members.iter().map(|m| m.endpoint()).collect();
    let spec = EtcdSpec::parse(&format!("etcd://{}", endpoints.join(",")))
        .unwrap()
        .unwrap();
    let options = EtcdOptions {
        timeout: Some(BUDGET),
        auth: auth.map(|(user, password)| EtcdAuth {
            user: user.into(),
            password: SecretValue::new(password.into()),
        }),
        ..EtcdOptions::default()
    };
    EtcdStore::new(spec, options).unwrap()
}

fn store(member: &Member) -> EtcdStore {
    store_of(&[member], None)
}

/// A write: one transaction, never sent twice.
fn write(store: &EtcdStore) -> Result<(), StoreError> {
    let version = crate::store::suite::record("cio_aws_access_key", 1, Action::Create, Some(&[1]));
    let swap = crate::store::ManifestSwap {
        store_id: "id".into(),
        expected: None,
        new: b"m".to_vec(),
    };
    store.append(0, &version, "fp", &swap)
}

/// A read: asked again, of every member, until the budget runs out.
fn read(store: &EtcdStore) -> Result<Option<crate::store::ReadRecord>, StoreError> {
    store.latest("cio_aws_access_key")
}

const EMPTY_RANGE: &str = r#"{"header":{"revision":"5"},"kvs":[],"count":"0"}"#;
const DENIED_HINT: &str = "check CIO_ETCD_USER and CIO_ETCD_PASSWORD, and that the user's etcd role may read and write the store's key prefix";
const UNREACHABLE_HINT: &str =
    "check that the cluster store is running and reachable from this node, then try again";

fn location(members: &[&Member]) -> String {
    let endpoints: Vec<String> = members.iter().map(|m| m.endpoint()).collect();
    format!("etcd://{}/cio/credentials", endpoints.join(","))
}

fn unusable_hint(location: &str) -> String {
    format!(
        "check that {location} names etcd members' client ports (etcd 3.4 or later, /v3 API), or choose another store with --store / CIO_STORE"
    )
}

/// Asserts the error's variant (by `matches`), its message and its hint.
macro_rules! assert_error {
    ($err:expr, $variant:pat, $message:expr, $hint:expr) => {{
        let err = &$err;
        assert!(matches!(err, $variant), "{err:?}");
        assert_eq!(err.to_string(), $message);
        assert_eq!(err.hint(), $hint);
    }};
}

#[test]
fn permission_denied_is_denied_naming_user_and_prefix() {
    let m = Member::start(&[
        Reply::Http(200, r#"{"token":"t1"}"#),
        Reply::Http(
            403,
            r#"{"error":"etcdserver: permission denied","message":"etcdserver: permission denied","code":7}"#,
        ),
    ]);
    let err = read(&store_of(&[&m], Some(("cio", "pw")))).unwrap_err();
    assert_error!(
        err,
        StoreError::Denied { .. },
        format!(
            "the credential store {} refused this user: etcdserver: permission denied: the etcd user in CIO_ETCD_USER may not read and write /cio/credentials",
            location(&[&m])
        ),
        DENIED_HINT
    );
    assert_eq!(m.paths(), ["/v3/auth/authenticate", "/v3/kv/range"]);
    assert_eq!(m.seen()[1].authorization.as_deref(), Some("t1"));
}

#[test]
fn a_wrong_password_is_denied_without_the_password() {
    let m = Member::start(&[Reply::Http(
        400,
        r#"{"error":"etcdserver: authentication failed, invalid user ID or password","message":"etcdserver: authentication failed, invalid user ID or password","code":3}"#,
    )]);
    let err = read(&store_of(&[&m], Some(("Canary-User", "Canary-Pw-1")))).unwrap_err();
    assert_error!(
        err,
        StoreError::Denied { .. },
        format!(
            "the credential store {} refused this user: etcd refused the user in CIO_ETCD_USER (wrong user name or password)",
            location(&[&m])
        ),
        DENIED_HINT
    );
    assert!(!format!("{err:?}").contains("Canary"));
    assert!(
        !err.to_string().contains("Canary"),
        "the user is never quoted"
    );
    assert_eq!(m.paths(), ["/v3/auth/authenticate"], "not asked again");
}

#[test]
fn auth_required_without_a_user_is_denied() {
    for answer in [
        r#"{"error":"etcdserver: user name is empty","message":"etcdserver: user name is empty","code":3}"#,
        r#"{"error":"etcdserver: invalid auth token","message":"etcdserver: invalid auth token","code":16}"#,
    ] {
        let status = if answer.contains("16") { 401 } else { 400 };
        let m = Member::start(&[Reply::Http(status, answer)]);
        let err = read(&store(&m)).unwrap_err();
        assert_error!(
            err,
            StoreError::Denied { .. },
            format!(
                "the credential store {} refused this user: the cluster requires authentication and no etcd user was given",
                location(&[&m])
            ),
            DENIED_HINT
        );
    }
}

#[test]
fn an_expired_token_is_renewed_once_then_denied() {
    let invalid = Reply::Http(
        401,
        r#"{"error":"etcdserver: invalid auth token","message":"etcdserver: invalid auth token","code":16}"#,
    );
    let m = Member::start(&[
        Reply::Http(200, r#"{"token":"t1"}"#),
        invalid,
        Reply::Http(200, r#"{"token":"t2"}"#),
        invalid,
    ]);
    let err = read(&store_of(&[&m], Some(("cio", "pw")))).unwrap_err();
    assert_error!(
        err,
        StoreError::Denied { .. },
        format!(
            "the credential store {} refused this user: etcdserver: invalid auth token (the token etcd gave could not be used)",
            location(&[&m])
        ),
        DENIED_HINT
    );
    let tokens: Vec<Option<String>> = m.seen().into_iter().map(|s| s.authorization).collect();
    assert_eq!(tokens, [None, Some("t1".into()), None, Some("t2".into())]);
}

#[test]
fn a_page_that_is_not_etcds_is_unusable_whatever_its_status() {
    for (status, body) in [
        (401, "<html>401 Authorization Required</html>"),
        (403, "Forbidden"),
        (404, "404 page not found"),
        (400, "{}"),
    ] {
        let m = Member::start(&[Reply::Http(status, body)]);
        let err = read(&store(&m)).unwrap_err();
        let location = location(&[&m]);
        assert_error!(
            err,
            StoreError::Unusable { .. },
            format!(
                "the credential store {location} cannot be used: {} answered HTTP {status}, not as an etcd v3 gateway would ({body:?}); is it etcd 3.4 or later, and does the scheme (etcd:// or etcds://) match?",
                m.endpoint()
            ),
            unusable_hint(&location)
        );
        assert_eq!(m.paths().len(), 1, "not asked again");
    }
}

#[test]
fn garbage_with_200_is_unusable() {
    let m = Member::start(&[Reply::Http(200, "not json at all")]);
    let err = read(&store(&m)).unwrap_err();
    let location = location(&[&m]);
    assert_error!(
        err,
        StoreError::Unusable { .. },
        format!(
            "the credential store {location} cannot be used: {} answered /v3/kv/range with something that is not etcd's: expected ident at line 1 column 2",
            m.endpoint()
        ),
        unusable_hint(&location)
    );
}

#[test]
fn an_unknown_etcd_error_is_unusable_and_final() {
    let m = Member::start(&[Reply::Http(
        400,
        r#"{"error":"etcdserver: too many operations in txn request","code":3}"#,
    )]);
    let err = write(&store(&m)).unwrap_err();
    let location = location(&[&m]);
    assert_error!(
        err,
        StoreError::Unusable { .. },
        format!(
            "the credential store {location} cannot be used: {}: etcdserver: too many operations in txn request",
            m.endpoint()
        ),
        unusable_hint(&location)
    );
}

#[test]
fn request_timed_out_fails_a_write_without_resending_it() {
    let timed_out = Reply::Http(
        503,
        r#"{"error":"etcdserver: request timed out","message":"etcdserver: request timed out","code":14}"#,
    );
    let (a, b) = (Member::start(&[timed_out]), Member::start(&[timed_out]));
    let err = write(&store_of(&[&a, &b], None)).unwrap_err();
    assert_error!(
        err,
        StoreError::Unreachable { .. },
        format!(
            "the credential store {} cannot be reached: {}: etcdserver: request timed out; the write may or may not have been applied as a whole, never in part",
            location(&[&a, &b]),
            a.endpoint()
        ),
        UNREACHABLE_HINT
    );
    assert_eq!(a.paths(), ["/v3/kv/txn"]);
    assert!(
        b.paths().is_empty(),
        "a write that may have been applied is not resent"
    );
}

#[test]
fn request_timed_out_on_a_read_is_unreachable_once_the_budget_is_spent() {
    let m = Member::start(&[Reply::Http(
        503,
        r#"{"error":"etcdserver: request timed out","message":"etcdserver: request timed out","code":14}"#,
    )]);
    let err = read(&store(&m)).unwrap_err();
    assert_error!(
        err,
        StoreError::Unreachable { .. },
        format!(
            "the credential store {} cannot be reached: no member answered within 300ms ({}: etcdserver: request timed out)",
            location(&[&m]),
            m.endpoint()
        ),
        UNREACHABLE_HINT
    );
    assert!(m.paths().len() > 1, "a read is asked again");
}

#[test]
fn a_plain_503_is_unreachable() {
    let m = Member::start(&[Reply::Http(503, "Service Unavailable")]);
    let err = read(&store(&m)).unwrap_err();
    assert_error!(
        err,
        StoreError::Unreachable { .. },
        format!(
            "the credential store {} cannot be reached: no member answered within 300ms ({}: HTTP 503)",
            location(&[&m]),
            m.endpoint()
        ),
        UNREACHABLE_HINT
    );
}

/// A member that takes a write and then resets the connection, closes it or says nothing:
/// the write may have been applied, so it is not sent again, and the error says so.
#[test]
fn a_write_without_an_answer_is_unreachable_and_not_resent() {
    for (reply, what) in [
        (Reply::Reset, "Connection reset by peer (os error 104)"),
        (Reply::Close, "Peer disconnected"),
        (Reply::Silent, "no answer in time (timeout: global)"),
    ] {
        let (m, other) = (Member::start(&[reply]), Member::start(&[reply]));
        let err = write(&store_of(&[&m, &other], None)).unwrap_err();
        assert_error!(
            err,
            StoreError::Unreachable { .. },
            format!(
                "the credential store {} cannot be reached: {}: {what}; the write may or may not have been applied as a whole, never in part",
                location(&[&m, &other]),
                m.endpoint()
            ),
            UNREACHABLE_HINT
        );
        assert_eq!(m.paths(), ["/v3/kv/txn"]);
        assert!(other.paths().is_empty(), "{what}: not resent");
    }
}

/// A member that answered last is asked first next time; a member that refuses before doing
/// anything ("no leader") is skipped even for a write.
#[test]
fn the_next_member_answers_and_is_asked_first_afterwards() {
    let no_leader = Reply::Http(
        503,
        r#"{"error":"etcdserver: no leader","message":"etcdserver: no leader","code":14}"#,
    );
    let a = Member::start(&[no_leader]);
    let b = Member::start(&[
        Reply::Http(200, EMPTY_RANGE),
        Reply::Http(200, r#"{"header":{"revision":"6"},"succeeded":true}"#),
    ]);
    let s = store_of(&[&a, &b], None);
    assert_eq!(read(&s).unwrap(), None);
    assert_eq!(a.paths(), ["/v3/kv/range"]);
    assert_eq!(b.paths(), ["/v3/kv/range"]);
    write(&s).unwrap();
    assert_eq!(a.paths(), ["/v3/kv/range"], "b answered last: asked first");
    assert_eq!(b.paths(), ["/v3/kv/range", "/v3/kv/txn"]);

    // A fresh store starts with a; "no leader" is a refusal before anything was done, so
    // the write goes on to b.
    let fresh = store_of(&[&a, &b], None);
    write(&fresh).unwrap();
    assert_eq!(a.paths(), ["/v3/kv/range", "/v3/kv/txn"]);
    assert_eq!(b.paths(), ["/v3/kv/range", "/v3/kv/txn", "/v3/kv/txn"]);
}

#[test]
fn an_already_compacted_revision_is_success() {
    let m = Member::start(&[
        Reply::Http(200, EMPTY_RANGE),
        Reply::Http(
            400,
            r#"{"error":"etcdserver: mvcc: required revision has been compacted","message":"etcdserver: mvcc: required revision has been compacted","code":11}"#,
        ),
    ]);
    assert_eq!(store(&m).compact().unwrap(), Some(5));
    assert_eq!(m.paths(), ["/v3/kv/range", "/v3/kv/compaction"]);
}
