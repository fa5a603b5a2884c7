//! How S3 error responses become `StorageError`s, through the real object_store S3 client and
//! a canned HTTP server on 127.0.0.1 that answers every request with one fixed response.
//!
//! object_store 0.14 types only some statuses (404, 403, 401, 409, 412 on object requests); the
//! status of every other failure (all LIST failures included) and the S3 `<Code>` reach us only
//! through its private `RetryError`'s text. These cases pin that reading: an object_store
//! upgrade that changes the text fails here, not in a user's cluster.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use cluster_backup::api::{StorageLocation, StorageProvider};
use cluster_backup::storage::{Credentials, ErrorCategory, Storage, StorageError};
use futures::TryStreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A server answering every request with `status` and `body`; its endpoint and a counter of
/// the requests it answered.
async fn canned(status: &'static str, body: String) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let answered = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&answered);
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let body = body.clone();
            let counter = Arc::clone(&counter);
            tokio::spawn(async move {
                // Read the request head and any body the Content-Length announces.
                let mut request = Vec::new();
                let mut buf = [0u8; 8192];
                loop {
                    let Ok(n) = socket.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&request).to_ascii_lowercase();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if request.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
                counter.fetch_add(1, Ordering::SeqCst);
                let response = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    (endpoint, answered)
}

fn s3_error(code: &str, message: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>1</RequestId></Error>"
    )
}

fn storage(endpoint: &str) -> Storage {
    let location = StorageLocation {
        provider: Some(StorageProvider::Minio),
        bucket: "pinned".to_string(),
        endpoint: Some(endpoint.to_string()),
        region: Some("us-east-1".to_string()),
        ..StorageLocation::default()
    };
    let credentials = Credentials {
        access_key_id: "AKIDEXAMPLE".to_string(),
        secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_string(),
        session_token: None,
    };
    Storage::new(&location, Some(credentials)).unwrap()
}

#[derive(Clone, Copy, Debug)]
enum Op {
    List,
    Get,
    Put,
}

async fn fail(op: Op, status: &'static str, body: String) -> (StorageError, usize) {
    let (endpoint, answered) = canned(status, body).await;
    let storage = storage(&endpoint);
    let err = match op {
        Op::List => storage
            .list("backups/")
            .try_collect::<Vec<_>>()
            .await
            .map(|_| ()),
        Op::Get => storage
            .get_bounded("backups/x.json", 1 << 20)
            .await
            .map(|_| ()),
        Op::Put => {
            storage
                .put("backups/x.json", Bytes::from_static(b"{}"))
                .await
        }
    }
    .expect_err("the canned server answers with an error");
    (err, answered.load(Ordering::SeqCst))
}

#[tokio::test]
async fn credential_codes_are_credentials_rejected_on_every_operation() {
    for op in [Op::List, Op::Get, Op::Put] {
        for code in ["InvalidAccessKeyId", "SignatureDoesNotMatch"] {
            let (err, _) = fail(op, "403 Forbidden", s3_error(code, "no")).await;
            match &err {
                StorageError::CredentialsRejected { code: got, .. } => assert_eq!(got, code),
                other => panic!("{op:?} {code}: {other:?}"),
            }
            assert_eq!(err.category(), ErrorCategory::Auth, "{op:?} {code}");
            assert!(!err.is_transient(), "{op:?} {code}");
        }
    }
    // 401 without a body.
    let (err, _) = fail(Op::List, "401 Unauthorized", String::new()).await;
    assert!(
        matches!(err, StorageError::CredentialsRejected { ref code, .. } if code == "Unauthorized"),
        "{err:?}"
    );
}

#[tokio::test]
async fn access_denied_and_missing_things() {
    for op in [Op::List, Op::Get, Op::Put] {
        let (err, _) = fail(
            op,
            "403 Forbidden",
            s3_error("AccessDenied", "Access Denied"),
        )
        .await;
        assert!(
            matches!(err, StorageError::AccessDenied { .. }),
            "{op:?}: {err:?}"
        );
        assert!(
            err.to_string().contains("AccessDenied: Access Denied"),
            "{err}"
        );
    }
    let (err, _) = fail(
        Op::List,
        "404 Not Found",
        s3_error("NoSuchBucket", "The specified bucket does not exist"),
    )
    .await;
    assert!(
        matches!(err, StorageError::BucketNotFound { .. }),
        "{err:?}"
    );
    let (err, _) = fail(Op::Get, "404 Not Found", s3_error("NoSuchKey", "no key")).await;
    assert!(matches!(err, StorageError::NotFound { .. }), "{err:?}");
    assert_eq!(err.category(), ErrorCategory::NotFound);
    let (err, _) = fail(
        Op::Get,
        "404 Not Found",
        s3_error("NoSuchBucket", "The specified bucket does not exist"),
    )
    .await;
    assert!(
        matches!(err, StorageError::BucketNotFound { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn server_errors_keep_their_status_and_code_and_are_retried() {
    for (op, status, code, transient) in [
        (Op::List, "503 Service Unavailable", "SlowDown", true),
        (Op::Put, "503 Service Unavailable", "SlowDown", true),
        (Op::Get, "500 Internal Server Error", "InternalError", true),
        (Op::List, "500 Internal Server Error", "InternalError", true),
        (Op::Put, "400 Bad Request", "EntityTooLarge", false),
        (Op::List, "400 Bad Request", "InvalidArgument", false),
    ] {
        let (err, answered) = fail(op, status, s3_error(code, "canned")).await;
        let expected: u16 = status[..3].parse().unwrap();
        match &err {
            StorageError::Rejected {
                status: got,
                detail,
                ..
            } => {
                assert_eq!(*got, expected, "{op:?} {code}");
                assert!(detail.contains(code), "{op:?}: {detail}");
            }
            other => panic!("{op:?} {code}: {other:?}"),
        }
        assert_eq!(err.is_transient(), transient, "{op:?} {code}");
        // object_store retried the server errors (MAX_RETRIES), not the client errors.
        let expected_requests = if transient {
            1 + cluster_backup::storage::MAX_RETRIES
        } else {
            1
        };
        assert_eq!(answered, expected_requests, "{op:?} {code}");
    }
}

#[tokio::test]
async fn a_success_status_with_an_unreadable_body_is_a_failure_not_a_panic() {
    let (err, _) = fail(Op::List, "200 OK", "not xml at all".to_string()).await;
    assert!(matches!(err, StorageError::Failed { .. }), "{err:?}");
    assert!(err.to_string().contains("list"), "{err}");
}

/// No response at all (the connection is closed, or nothing listens): the endpoint is
/// unreachable, which is transient, whatever object_store's text says.
#[tokio::test]
async fn no_response_is_unreachable() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            drop(socket);
        }
    });
    let err = storage(&endpoint).get_bounded("x", 10).await.unwrap_err();
    assert!(matches!(err, StorageError::Unreachable { .. }), "{err:?}");
    assert!(err.is_transient());
    assert_eq!(err.category(), ErrorCategory::Unreachable);

    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let err = storage(&endpoint).get_bounded("x", 10).await.unwrap_err();
    assert!(err.to_string().contains("connection refused"), "{err}");
}
