//! Device authentication on the upgrade (PROTOCOL.md §1.4) in the modes
//! beyond `static`: signed JWTs (HS256 with a secret; RS256 and ES256 with
//! keys made by openssl), RFC 7662 token introspection against a real HTTP
//! endpoint on loopback, and `mixed`. Refusals are 401 envelopes that say why.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::http_receiver::{HttpReceiver, Reply};
use common::{Server, temp};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};

const DEVICE: &str = "94:a9:90:07:9d:88";
const SECRET: &str = "fleet-signing-secret";

fn now() -> i64 {
    jsonwebtoken::get_current_timestamp() as i64
}

fn hs256(claims: Value) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .expect("encode")
}

/// Connects as `device` with `token`; `Ok` when upgraded, else the 401's message.
fn connect(server: &Server, device: &str, token: Option<&str>) -> Result<(), String> {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Device-Id", device)];
    if let Some(bearer) = &bearer {
        headers.push(("Authorization", bearer.as_str()));
    }
    match common::Device::connect(&server.ws_url("/xiaozhi/v1/"), &headers) {
        Ok(_) => Ok(()),
        Err(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 401);
            let body = response.body().clone().unwrap_or_default();
            let v: Value = serde_json::from_slice(&body).expect("JSON envelope");
            assert_eq!(v["error"]["code"], "UNAUTHORIZED");
            Err(v["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_string())
        }
        Err(other) => panic!("expected an upgrade or a 401, got {other}"),
    }
}

fn assert_refused(result: Result<(), String>, why: &str) {
    match result {
        Ok(()) => panic!("accepted; expected a refusal for {why}"),
        Err(message) => assert!(message.contains(why), "{message:?} does not say {why:?}"),
    }
}

#[test]
fn hs256_jwts_are_checked_for_signature_time_audience_and_device() {
    let server = Server::start(&format!(
        "[server.auth]\nenabled = true\nmode = \"jwt\"\nallowed_devices = [\"AA:BB:CC:DD:EE:FF\"]\n\
         [server.auth.jwt]\nsecret = \"{SECRET}\"\naudience = \"huddle\"\nsub_prefix = \"device:\"\n"
    ));
    let claims = |sub: &str, exp: i64| json!({"sub": sub, "aud": "huddle", "exp": exp});
    let good = hs256(claims(&format!("device:{DEVICE}"), now() + 600));
    assert_eq!(connect(&server, DEVICE, Some(&good)), Ok(()));
    // The same token does not let another badge in.
    assert_refused(connect(&server, "11:22:33:44:55:66", Some(&good)), "sub");
    let expired = hs256(claims(&format!("device:{DEVICE}"), now() - 3600));
    assert_refused(connect(&server, DEVICE, Some(&expired)), "expired");
    let no_audience = hs256(json!({"sub": format!("device:{DEVICE}")}));
    assert_refused(connect(&server, DEVICE, Some(&no_audience)), "aud");
    let forged = encode(
        &Header::new(Algorithm::HS256),
        &claims(&format!("device:{DEVICE}"), now() + 600),
        &EncodingKey::from_secret(b"guessed"),
    )
    .unwrap();
    assert_refused(connect(&server, DEVICE, Some(&forged)), "bad signature");
    assert_refused(connect(&server, DEVICE, Some("s3cret")), "not a JWT");
    assert_refused(connect(&server, DEVICE, None), "missing Authorization");
    // The allow-list still needs no token.
    assert_eq!(connect(&server, "aa:bb:cc:dd:ee:ff", None), Ok(()));
    assert!(server.wait_log("refused: JWT refused: expired", common::SHORT));
}

/// A key pair made by openssl: (private PEM, public PEM).
fn openssl_key_pair(dir: &Path, kind: &str) -> (Vec<u8>, String) {
    let private = dir.join(format!("{kind}.key"));
    let args: &[&str] = match kind {
        "rsa" => &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ],
        _ => &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ],
    };
    let made = Command::new("openssl")
        .args(args)
        .arg("-out")
        .arg(&private)
        .status()
        .expect("openssl (installed by .ci/setup)");
    assert!(made.success());
    let public = Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&private)
        .output()
        .expect("openssl pkey");
    assert!(public.status.success());
    (
        std::fs::read(&private).expect("private key"),
        String::from_utf8(public.stdout).expect("PEM"),
    )
}

#[test]
fn rs256_and_es256_jwts_verify_with_a_public_key_inline_or_from_a_file() {
    let dir = temp::temp_path("huddle-jwt-keys");
    std::fs::create_dir_all(&dir).unwrap();
    let (rsa_private, rsa_public) = openssl_key_pair(&dir, "rsa");
    let (ec_private, ec_public) = openssl_key_pair(&dir, "ec");
    let claims = json!({"exp": now() + 600, "iss": "fleet"});
    let rs256 = encode(
        &Header::new(Algorithm::RS256),
        &claims,
        &EncodingKey::from_rsa_pem(&rsa_private).unwrap(),
    )
    .unwrap();
    let es256 = encode(
        &Header::new(Algorithm::ES256),
        &claims,
        &EncodingKey::from_ec_pem(&ec_private).unwrap(),
    )
    .unwrap();

    // RSA, the key inline (TOML multi-line string).
    let server = Server::start(&format!(
        "[server.auth]\nenabled = true\nmode = \"jwt\"\n[server.auth.jwt]\nalgorithms = [\"RS256\"]\n\
         issuer = \"fleet\"\npublic_key = \"\"\"\n{rsa_public}\"\"\"\n"
    ));
    assert_eq!(connect(&server, DEVICE, Some(&rs256)), Ok(()));
    assert_refused(
        connect(&server, DEVICE, Some(&es256)),
        "ES256 is not allowed",
    );
    // An HS256 token "signed" with the public key text must not pass.
    let confused = encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(rsa_public.as_bytes()),
    )
    .unwrap();
    assert_refused(
        connect(&server, DEVICE, Some(&confused)),
        "HS256 is not allowed",
    );
    drop(server);

    // Both families allowed: the header's alg picks the key, so the public key text is never an HMAC secret.
    let server = Server::start(&format!(
        "[server.auth]\nenabled = true\nmode = \"jwt\"\n[server.auth.jwt]\nalgorithms = [\"HS256\", \"RS256\"]\n\
         secret = \"{SECRET}\"\npublic_key = \"\"\"\n{rsa_public}\"\"\"\n"
    ));
    assert_eq!(connect(&server, DEVICE, Some(&rs256)), Ok(()));
    assert_eq!(
        connect(&server, DEVICE, Some(&hs256(json!({"exp": now() + 60})))),
        Ok(())
    );
    assert_refused(connect(&server, DEVICE, Some(&confused)), "bad signature");
    drop(server);

    // EC, the key from a file.
    let ec_file = dir.join("ec.pub.pem");
    std::fs::write(&ec_file, &ec_public).unwrap();
    let server = Server::start(&format!(
        "[server.auth]\nenabled = true\nmode = \"jwt\"\n[server.auth.jwt]\nalgorithms = [\"ES256\"]\n\
         issuer = \"fleet\"\npublic_key = \"{}\"\n",
        ec_file.display()
    ));
    assert_eq!(connect(&server, DEVICE, Some(&es256)), Ok(()));
    let wrong_issuer = encode(
        &Header::new(Algorithm::ES256),
        &json!({"iss": "rogue"}),
        &EncodingKey::from_ec_pem(&ec_private).unwrap(),
    )
    .unwrap();
    assert_refused(connect(&server, DEVICE, Some(&wrong_issuer)), "iss");
    let _ = std::fs::remove_dir_all(&dir);
}

fn oauth2_table(endpoint: &HttpReceiver) -> String {
    format!(
        "[server.auth.oauth2]\nintrospection_url = \"{}\"\nclient_id = \"huddle\"\nclient_secret = \"intro-secret\"\n",
        endpoint.url("/oauth2/introspect")
    )
}

#[test]
fn oauth2_introspection_lets_active_tokens_in_and_remembers_them() {
    let endpoint = HttpReceiver::start(&[
        Reply::Json(r#"{"active":true,"client_id":"badge-fleet"}"#),
        Reply::Json(r#"{"active":false}"#),
        Reply::Status(500),
        Reply::Json("not json"),
    ]);
    let server = Server::start(&format!(
        "[server.auth]\nenabled = true\nmode = \"oauth2\"\n{}",
        oauth2_table(&endpoint)
    ));
    assert_eq!(connect(&server, DEVICE, Some("token-alive")), Ok(()));
    // A reconnect within the minute reuses the answer: no second call.
    assert_eq!(connect(&server, DEVICE, Some("token-alive")), Ok(()));
    assert_refused(
        connect(&server, DEVICE, Some("token-revoked")),
        "not active",
    );
    // An inactive answer is reused for a few seconds too.
    assert_refused(
        connect(&server, DEVICE, Some("token-revoked")),
        "not active",
    );
    // Endpoint failures: the device hears only that introspection is unavailable; the log says why.
    for token in ["token-x", "token-y"] {
        let refusal = connect(&server, DEVICE, Some(token)).unwrap_err();
        assert_eq!(refusal, "token introspection is unavailable");
    }
    assert!(
        server.wait_log("introspect answered 500", common::SHORT),
        "{}",
        server.log()
    );
    assert!(
        server.wait_log("sent no JSON answer", common::SHORT),
        "{}",
        server.log()
    );
    let requests = endpoint.wait_requests(4, Duration::from_secs(5));
    assert_eq!(requests.len(), 4, "one call per distinct token");
    let first = &requests[0];
    assert_eq!(first.method, "POST");
    assert_eq!(first.path, "/oauth2/introspect");
    // base64("huddle:intro-secret")
    assert_eq!(
        first.header("authorization"),
        Some("Basic aHVkZGxlOmludHJvLXNlY3JldA==")
    );
    let form = String::from_utf8_lossy(&first.body);
    assert!(form.contains("token=token-alive"), "{form}");
    assert!(String::from_utf8_lossy(&requests[1].body).contains("token=token-revoked"));
}

#[test]
fn mixed_tries_static_then_jwt_then_introspection() {
    let endpoint = HttpReceiver::start_then(&[], Reply::Json(r#"{"active":false}"#));
    let server = Server::start(&format!(
        "[server.auth]\nenabled = true\nmode = \"mixed\"\ntokens = [{{ token = \"static-token\", name = \"bench\" }}]\n\
         [server.auth.jwt]\nsecret = \"{SECRET}\"\n{}",
        oauth2_table(&endpoint)
    ));
    assert_eq!(connect(&server, DEVICE, Some("static-token")), Ok(()));
    assert_eq!(
        connect(&server, DEVICE, Some(&hs256(json!({"exp": now() + 60})))),
        Ok(())
    );
    // Neither passes: every method was tried, and the reasons say so.
    let refusal = connect(&server, DEVICE, Some("opaque-token")).unwrap_err();
    for why in ["invalid token", "not a JWT", "not active"] {
        assert!(refusal.contains(why), "{refusal:?} lacks {why:?}");
    }
    // Only the last token reached the introspection endpoint.
    let requests = endpoint.wait_requests(1, Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(endpoint.requests().len(), 1);
    assert!(String::from_utf8_lossy(&requests[0].body).contains("token=opaque-token"));
}
