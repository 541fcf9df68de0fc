//! Standard Webhooks signing and verification against the floor: one-shot
//! HMAC-SHA256 (`hmac` + `sha2`, key setup included) over the already
//! concatenated `id.timestamp.payload` bytes, and the same floor with the
//! key set up once (as consentry's secrets are).
//!
//! `cargo bench --bench webhook`. The comparison with the `svix` and
//! `standardwebhooks` crates lives in `bench-peers/`, so that those crates
//! stay out of this crate's dependency graph.

use std::hint::black_box;
use std::time::{Duration, UNIX_EPOCH};

use base64::Engine as _;
use consentry::webhook::{WebhookSecret, standard};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const TS: u64 = 1_614_265_330;

/// A JSON object of exactly `len` bytes.
fn payload(len: usize) -> Vec<u8> {
    let mut p = br#"{"data":""#.to_vec();
    p.resize(len - 2, b'x');
    p.extend_from_slice(br#""}"#);
    p
}

fn webhooks(c: &mut Criterion) {
    let secret = WebhookSecret::parse(SECRET).expect("valid secret");
    let key = base64::engine::general_purpose::STANDARD
        .decode(&SECRET[6..])
        .expect("valid base64");
    let now = UNIX_EPOCH + Duration::from_secs(TS);
    let mut group = c.benchmark_group("webhook");
    for len in [256usize, 4096] {
        let body = payload(len);
        let mut joined = format!("{ID}.{TS}.").into_bytes();
        joined.extend_from_slice(&body);
        let signed = standard::sign(&secret, ID, TS, &body).expect("signs");
        let mut headers = http::HeaderMap::new();
        for (name, value) in signed.iter() {
            headers.insert(name, value.parse().expect("header value"));
        }
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
        group.bench_with_input(BenchmarkId::new("verify", len), &body, |b, body| {
            b.iter(|| standard::verify(&[&secret], black_box(&headers), black_box(body), now))
        });
        let pairs: Vec<(&str, &str)> = signed.iter().collect();
        group.bench_with_input(BenchmarkId::new("verify_pairs", len), &body, |b, body| {
            b.iter(|| standard::verify(&[&secret], black_box(&pairs[..]), black_box(body), now))
        });
        group.bench_with_input(BenchmarkId::new("sign", len), &body, |b, body| {
            b.iter(|| standard::sign(&secret, black_box(ID), TS, black_box(body)))
        });
    }
    group.finish();
}

criterion_group!(benches, webhooks);
criterion_main!(benches);
