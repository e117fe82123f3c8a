//! Handshake auth cost per connecting badge (PROTOCOL.md §1.4): verifying one
//! device JWT with HS256, RS256 (2048-bit) and ES256 (P-256), as a reconnect
//! storm pays it once per handshake. Keys are made by openssl at start.
//! Run: `cargo bench --bench auth`.

use std::hint::black_box;
use std::path::Path;
use std::process::Command;

use criterion::{Criterion, criterion_group, criterion_main};
use huddle::config::JwtConfig;
use huddle::net::auth::jwt::JwtVerifier;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::json;

const DEVICE: &str = "94:a9:90:07:9d:88";

/// (private PEM, public PEM) for `genpkey` `args`.
fn key_pair(dir: &Path, name: &str, args: &[&str]) -> (Vec<u8>, String) {
    let private = dir.join(format!("{name}.key"));
    let made = Command::new("openssl")
        .arg("genpkey")
        .args(args)
        .arg("-out")
        .arg(&private)
        .status()
        .expect("openssl");
    assert!(made.success());
    let public = Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&private)
        .output()
        .expect("openssl");
    (
        std::fs::read(&private).expect("key"),
        String::from_utf8(public.stdout).expect("PEM"),
    )
}

fn verify(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("huddle-bench-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let claims = json!({
        "sub": format!("device:{DEVICE}"),
        "aud": "huddle",
        "exp": jsonwebtoken::get_current_timestamp() + 3600,
    });
    let config = |algorithm: &str| JwtConfig {
        algorithms: vec![algorithm.to_string()],
        audience: Some("huddle".into()),
        sub_prefix: Some("device:".into()),
        ..JwtConfig::default()
    };
    let (rsa_private, rsa_public) = key_pair(
        &dir,
        "rsa",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    );
    let (ec_private, ec_public) = key_pair(
        &dir,
        "ec",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    );
    let cases = [
        (
            "hs256",
            JwtConfig {
                secret: Some("fleet-signing-secret".into()),
                ..config("HS256")
            },
            encode(
                &Header::new(Algorithm::HS256),
                &claims,
                &EncodingKey::from_secret(b"fleet-signing-secret"),
            ),
        ),
        (
            "rs256_2048",
            JwtConfig {
                public_key: Some(rsa_public),
                ..config("RS256")
            },
            encode(
                &Header::new(Algorithm::RS256),
                &claims,
                &EncodingKey::from_rsa_pem(&rsa_private).expect("RSA key"),
            ),
        ),
        (
            "es256",
            JwtConfig {
                public_key: Some(ec_public),
                ..config("ES256")
            },
            encode(
                &Header::new(Algorithm::ES256),
                &claims,
                &EncodingKey::from_ec_pem(&ec_private).expect("EC key"),
            ),
        ),
    ];
    let _ = std::fs::remove_dir_all(&dir);
    let mut group = c.benchmark_group("jwt_verify");
    for (name, config, token) in cases {
        let verifier = JwtVerifier::new(&config).expect("config");
        let token = token.expect("token");
        assert_eq!(verifier.verify(&token, DEVICE), Ok(()));
        group.bench_function(name, |b| {
            b.iter(|| black_box(verifier.verify(black_box(&token), DEVICE)))
        });
    }
    group.finish();
}

criterion_group!(benches, verify);
criterion_main!(benches);
