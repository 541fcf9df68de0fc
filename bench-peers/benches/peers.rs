//! consentry's Standard Webhooks verification against the `svix` and
//! `standardwebhooks` crates and the floor (one-shot HMAC-SHA256 with
//! `hmac` + `sha2`, key setup included, over the already concatenated
//! `id.timestamp.payload`; also with the key set up once, as consentry's
//! secrets are), at 256 B and 4 KiB, in one run:
//!
//! ```text
//! cargo bench -p bench-peers -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! The peers read the system clock inside `verify`, so the message is
//! signed with the current time, and consentry's iteration reads the clock
//! too (`SystemTime::now()`), as a host would per request.

use std::hint::black_box;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use consentry::webhook::{WebhookSecret, standard};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";

/// A JSON object of exactly `len` bytes (the peers require UTF-8).
fn payload(len: usize) -> Vec<u8> {
    let mut p = br#"{"data":""#.to_vec();
    p.resize(len - 2, b'x');
    p.extend_from_slice(br#""}"#);
    p
}

fn verify(c: &mut Criterion) {
    let ts = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let ours = WebhookSecret::parse(SECRET).expect("valid secret");
    let svix = svix::webhooks::Webhook::new(SECRET).expect("valid secret");
    let sw = standardwebhooks::Webhook::new(SECRET).expect("valid secret");
    let key = base64::engine::general_purpose::STANDARD
        .decode(&SECRET[6..])
        .expect("valid base64");

    let mut group = c.benchmark_group("webhook_verify");
    for len in [256usize, 4096] {
        let body = payload(len);
        let mut joined = format!("{ID}.{ts}.").into_bytes();
        joined.extend_from_slice(&body);
        let signed = standard::sign(&ours, ID, ts, &body).expect("signs");
        let mut headers = http::HeaderMap::new();
        for (name, value) in signed.iter() {
            headers.insert(name, value.parse().expect("header value"));
        }
        // All three verifiers accept the same request.
        standard::verify(&[&ours], &headers, &body, SystemTime::now()).expect("consentry verifies");
        svix.verify(&body, &headers).expect("svix verifies");
        sw.verify(&body, &headers)
            .expect("standardwebhooks verifies");

        group.throughput(Throughput::Bytes(len as u64));
        group.bench_with_input(
            BenchmarkId::new("floor_hmac_sha256", len),
            &joined,
            |b, m| {
                b.iter(|| {
                    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(black_box(&key))
                        .expect("any key length");
                    mac.update(black_box(m));
                    mac.finalize().into_bytes()
                })
            },
        );
        // The same with the key set up once (consentry keeps its secrets
        // this way): two SHA-256 compressions fewer per message.
        let prekeyed = <Hmac<Sha256> as KeyInit>::new_from_slice(&key).expect("any key length");
        group.bench_with_input(
            BenchmarkId::new("floor_hmac_sha256_prekeyed", len),
            &joined,
            |b, m| {
                b.iter(|| {
                    let mut mac = black_box(&prekeyed).clone();
                    mac.update(black_box(m));
                    mac.finalize().into_bytes()
                })
            },
        );
        group.bench_with_input(BenchmarkId::new("consentry", len), &body, |b, body| {
            b.iter(|| {
                standard::verify(
                    &[&ours],
                    black_box(&headers),
                    black_box(body),
                    SystemTime::now(),
                )
            })
        });
        group.bench_with_input(BenchmarkId::new("svix", len), &body, |b, body| {
            b.iter(|| svix.verify(black_box(body), black_box(&headers)))
        });
        group.bench_with_input(
            BenchmarkId::new("standardwebhooks", len),
            &body,
            |b, body| b.iter(|| sw.verify(black_box(body), black_box(&headers))),
        );
    }
    group.finish();
}

criterion_group!(benches, verify);
criterion_main!(benches);
