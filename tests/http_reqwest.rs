//! `ReqwestClient` against a real HTTP/1.1 server on 127.0.0.1.
//!
//! The server is a few lines of tokio written for these tests, so each case
//! controls exactly what goes on the wire: a redirect, a stall before or in
//! the middle of the body, a 5 MB body with or without `Content-Length`.
#![cfg(feature = "reqwest")]
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use consentry::http::{HttpClient, HttpErrorKind, HttpRequest, Request, ReqwestClient};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const FIVE_MB: usize = 5 * 1024 * 1024;

#[derive(Debug, Default)]
struct Hits {
    target: AtomicUsize,
}

/// Starts the test server; returns its base URL and the hit counters.
async fn server() -> (String, Arc<Hits>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(Hits::default());
    let seen = hits.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let hits = seen.clone();
            tokio::spawn(async move {
                let _ = handle(stream, &hits).await;
            });
        }
    });
    (format!("http://{addr}"), hits)
}

/// Reads one request (headers and a `Content-Length` body).
async fn read_request(stream: &mut TcpStream) -> std::io::Result<(String, String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
    let len = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(str::to_owned)
        })
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).await?;
    Ok((path, head, body))
}

async fn handle(mut stream: TcpStream, hits: &Hits) -> std::io::Result<()> {
    let (path, head, body) = read_request(&mut stream).await?;
    match path.as_str() {
        "/redirect" => {
            stream
                .write_all(b"HTTP/1.1 302 Found\r\nLocation: /target\r\nContent-Length: 5\r\nConnection: close\r\n\r\nmoved")
                .await?;
        }
        "/target" => {
            hits.target.fetch_add(1, Ordering::SeqCst);
            stream
                .write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\ntarget",
                )
                .await?;
        }
        "/slow-headers" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                .await?;
        }
        "/slow-body" => {
            stream
                .write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\nhello",
                )
                .await?;
            stream.flush().await?;
            tokio::time::sleep(Duration::from_secs(5)).await;
            stream.write_all(b"world").await?;
        }
        "/big" => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {FIVE_MB}\r\nConnection: close\r\n\r\n"
            );
            stream.write_all(head.as_bytes()).await?;
            let chunk = vec![b'a'; 64 * 1024];
            for _ in 0..FIVE_MB / chunk.len() {
                stream.write_all(&chunk).await?;
            }
        }
        "/big-chunked" => {
            stream
                .write_all(
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
                )
                .await?;
            let chunk = vec![b'a'; 64 * 1024];
            for _ in 0..FIVE_MB / chunk.len() {
                stream
                    .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                    .await?;
                stream.write_all(&chunk).await?;
                stream.write_all(b"\r\n").await?;
            }
            stream.write_all(b"0\r\n\r\n").await?;
        }
        "/teapot" => {
            stream
                .write_all(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\nConnection: close\r\n\r\noops")
                .await?;
        }
        "/echo" => {
            let mut out = head.into_bytes();
            out.extend_from_slice(&body);
            let resp = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                out.len()
            );
            stream.write_all(resp.as_bytes()).await?;
            stream.write_all(&out).await?;
        }
        _ => {
            stream
                .write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                )
                .await?;
        }
    }
    stream.shutdown().await
}

fn get(url: &str) -> HttpRequest {
    Request::get(url).body(Vec::new()).unwrap()
}

fn client() -> ReqwestClient {
    ReqwestClient::builder()
        .timeout(Duration::from_millis(500))
        .connect_timeout(Duration::from_millis(500))
        .build()
        .unwrap()
}

#[tokio::test]
async fn redirects_are_returned_not_followed() {
    let (base, hits) = server().await;
    let resp = client()
        .send(get(&format!("{base}/redirect")))
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    assert_eq!(resp.headers()["location"], "/target");
    assert_eq!(resp.body(), b"moved");
    assert_eq!(
        hits.target.load(Ordering::SeqCst),
        0,
        "the redirect was followed"
    );
}

#[tokio::test]
async fn non_2xx_is_a_response() {
    let (base, _) = server().await;
    let resp = client().send(get(&format!("{base}/teapot"))).await.unwrap();
    assert_eq!(resp.status(), 500);
    assert_eq!(resp.body(), b"oops");
    let missing = client()
        .send(get(&format!("{base}/nowhere")))
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn a_stall_before_the_headers_times_out() {
    let (base, _) = server().await;
    let started = std::time::Instant::now();
    let err = client()
        .send(get(&format!("{base}/slow-headers")))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), HttpErrorKind::Timeout, "{err:?}");
    assert!(err.is_retryable());
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[tokio::test]
async fn a_stall_inside_the_body_times_out() {
    let (base, _) = server().await;
    let err = client()
        .send(get(&format!("{base}/slow-body")))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), HttpErrorKind::Timeout, "{err:?}");
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let (base, _) = server().await;
    let client = ReqwestClient::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    for path in ["/big", "/big-chunked"] {
        let err = client
            .send(get(&format!("{base}{path}")))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), HttpErrorKind::BodyTooLarge, "{path}: {err:?}");
        assert!(!err.is_retryable());
    }
    // The same bodies pass with a limit above their size.
    let roomy = ReqwestClient::builder()
        .timeout(Duration::from_secs(20))
        .max_response_bytes(FIVE_MB)
        .build()
        .unwrap();
    for path in ["/big", "/big-chunked"] {
        let resp = roomy.send(get(&format!("{base}{path}"))).await.unwrap();
        assert_eq!(resp.body().len(), FIVE_MB, "{path}");
    }
}

#[tokio::test]
async fn requests_carry_method_headers_body_and_user_agent() {
    let (base, _) = server().await;
    let req = Request::post(format!("{base}/echo"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(b"grant_type=refresh_token".to_vec())
        .unwrap();
    let resp = client().send(req).await.unwrap();
    let echoed = String::from_utf8(resp.body().clone()).unwrap();
    assert!(echoed.starts_with("POST /echo HTTP/1.1\r\n"), "{echoed}");
    let lower = echoed.to_ascii_lowercase();
    assert!(
        lower.contains(&format!(
            "user-agent: consentry/{}\r\n",
            env!("CARGO_PKG_VERSION")
        )),
        "{echoed}"
    );
    assert!(lower.contains("content-type: application/x-www-form-urlencoded\r\n"));
    assert!(echoed.ends_with("\r\n\r\ngrant_type=refresh_token"));
}

#[tokio::test]
async fn refused_connections_are_connect_errors() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let err = client()
        .send(get(&format!("http://{addr}/")))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), HttpErrorKind::Connect, "{err:?}");
    assert!(err.is_retryable());
}

#[test]
fn invalid_settings_are_refused() {
    assert!(
        ReqwestClient::builder()
            .timeout(Duration::ZERO)
            .build()
            .is_err()
    );
    assert!(
        ReqwestClient::builder()
            .user_agent("bad\nagent")
            .build()
            .is_err()
    );
}
