//! `server.auth.mode = "jwt"` (PROTOCOL.md §1.4): a device token is accepted when its signature verifies with
//! `secret` (HS*) or `public_key` (RS*, PS*, ES*, EdDSA), its algorithm is one of `algorithms`, `exp` and `nbf`
//! hold when present (60 s leeway for badge clocks), `aud`/`iss` equal `audience`/`issuer` when those are set,
//! and `sub` is `sub_prefix` + the device id when `sub_prefix` is set.
//!
//! The header's `alg` picks the key, and only from the configured list, so a token cannot choose a weaker
//! algorithm or present the public key as an HMAC secret. Keys are parsed once per config (config load rejects a
//! bad one, naming the field) and shared by every handshake. `public_key` is PEM text here: a path in the config
//! file is read into the config when it loads (`config::load`), so verifying never touches the disk.

use std::str::FromStr;
use std::sync::{Arc, LazyLock};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, Validation};
use parking_lot::Mutex;
use serde::Deserialize;

use crate::config::JwtConfig;
use crate::net::identity::normalize_id;

/// Seconds of clock skew allowed on `exp` and `nbf`: badges set their clock from the network at boot.
const LEEWAY_S: u64 = 60;

/// A config that cannot verify anything: the field at fault and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtConfigError {
    pub field: &'static str,
    pub reason: String,
}

impl JwtConfigError {
    fn new(field: &'static str, reason: impl Into<String>) -> Self {
        JwtConfigError {
            field,
            reason: reason.into(),
        }
    }
}

/// Verifies tokens for one `[server.auth.jwt]`.
pub struct JwtVerifier {
    algorithms: Vec<Algorithm>,
    /// For HS*; `None` when no HS* algorithm is allowed.
    secret: Option<DecodingKey>,
    /// For the one asymmetric family `algorithms` names (RSA, EC or Ed); its family is checked at load.
    public_key: Option<DecodingKey>,
    audience: Option<String>,
    issuer: Option<String>,
    sub_prefix: Option<String>,
}

/// The claims checked here rather than by `jsonwebtoken`.
#[derive(Deserialize)]
struct Claims {
    sub: Option<String>,
}

impl JwtVerifier {
    /// Parses the algorithms and keys; every error names the field to fix.
    pub fn new(config: &JwtConfig) -> Result<Self, JwtConfigError> {
        if config.algorithms.is_empty() {
            return Err(JwtConfigError::new(
                "server.auth.jwt.algorithms",
                "must name at least one algorithm",
            ));
        }
        let mut algorithms = Vec::with_capacity(config.algorithms.len());
        for name in &config.algorithms {
            let algorithm = Algorithm::from_str(name).map_err(|_| {
                JwtConfigError::new(
                    "server.auth.jwt.algorithms",
                    format!(
                        "\"{name}\" is not one of HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, \
                         ES256, ES384, EdDSA"
                    ),
                )
            })?;
            algorithms.push(algorithm);
        }
        let mut families: Vec<AlgorithmFamily> = Vec::new();
        for family in algorithms.iter().map(|a| a.family()) {
            if family != AlgorithmFamily::Hmac && !families.contains(&family) {
                families.push(family);
            }
        }
        let secret = if algorithms
            .iter()
            .any(|a| a.family() == AlgorithmFamily::Hmac)
        {
            match config.secret.as_deref() {
                Some(secret) if !secret.is_empty() => {
                    Some(DecodingKey::from_secret(secret.as_bytes()))
                }
                _ => {
                    return Err(JwtConfigError::new(
                        "server.auth.jwt.secret",
                        "is required for the HS* algorithms",
                    ));
                }
            }
        } else {
            None
        };
        let public_key = match families.len() {
            0 => None,
            1 => {
                let family = families[0];
                let pem = config.public_key.as_deref().ok_or_else(|| {
                    JwtConfigError::new(
                        "server.auth.jwt.public_key",
                        "is required for the RS*, PS*, ES* and EdDSA algorithms",
                    )
                })?;
                Some(parse_public_key(family, pem.as_bytes())?)
            }
            _ => {
                return Err(JwtConfigError::new(
                    "server.auth.jwt.algorithms",
                    "may name only one asymmetric family (RSA, EC or EdDSA): there is one public_key",
                ));
            }
        };
        Ok(JwtVerifier {
            algorithms,
            secret,
            public_key,
            audience: config.audience.clone(),
            issuer: config.issuer.clone(),
            sub_prefix: config.sub_prefix.clone(),
        })
    }

    /// Accepts `token` for `device_id` (normalized), or says why not.
    pub fn verify(&self, token: &str, device_id: &str) -> Result<(), String> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| format!("not a JWT ({})", describe(e.kind())))?;
        if !self.algorithms.contains(&header.alg) {
            return Err(format!("JWT algorithm {:?} is not allowed", header.alg));
        }
        let key = match header.alg.family() {
            AlgorithmFamily::Hmac => self.secret.as_ref(),
            _ => self.public_key.as_ref(),
        }
        .ok_or("no key for the JWT's algorithm")?;
        let mut validation = Validation::new(header.alg);
        validation.leeway = LEEWAY_S;
        validation.validate_nbf = true;
        // exp and nbf are checked when present; aud, iss and sub must be present when configured.
        let mut required: Vec<&str> = Vec::new();
        validation.validate_aud = self.audience.is_some();
        if let Some(audience) = &self.audience {
            validation.set_audience(&[audience]);
            required.push("aud");
        }
        if let Some(issuer) = &self.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        if self.sub_prefix.is_some() {
            required.push("sub");
        }
        validation.set_required_spec_claims(&required);
        let data = jsonwebtoken::decode::<Claims>(token, key, &validation)
            .map_err(|e| format!("JWT refused: {}", describe(e.kind())))?;
        if let Some(prefix) = &self.sub_prefix {
            let sub = data.claims.sub.unwrap_or_default();
            let named = sub
                .strip_prefix(prefix.as_str())
                .map(normalize_id)
                .is_some_and(|id| id == device_id);
            if !named {
                // Debug quoting: the token's text must not forge log lines.
                return Err(format!("JWT sub {sub:?} is not {prefix}{device_id}"));
            }
        }
        Ok(())
    }
}

fn parse_public_key(family: AlgorithmFamily, pem: &[u8]) -> Result<DecodingKey, JwtConfigError> {
    let parsed = match family {
        AlgorithmFamily::Rsa => DecodingKey::from_rsa_pem(pem),
        AlgorithmFamily::Ec => DecodingKey::from_ec_pem(pem),
        AlgorithmFamily::Ed => DecodingKey::from_ed_pem(pem),
        AlgorithmFamily::Hmac => unreachable!("HMAC uses the secret"),
    };
    parsed.map_err(|e| {
        JwtConfigError::new(
            "server.auth.jwt.public_key",
            format!(
                "is not a PEM {} public key ({})",
                match family {
                    AlgorithmFamily::Rsa => "RSA",
                    AlgorithmFamily::Ec => "EC",
                    _ => "Ed25519",
                },
                describe(e.kind())
            ),
        )
    })
}

/// Words for the refusals a device owner will read in the log.
fn describe(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::InvalidToken => "malformed token".into(),
        ErrorKind::InvalidSignature => "bad signature".into(),
        ErrorKind::ExpiredSignature => "expired (exp)".into(),
        ErrorKind::ImmatureSignature => "not valid yet (nbf)".into(),
        ErrorKind::InvalidAudience => "wrong audience (aud)".into(),
        ErrorKind::InvalidIssuer => "wrong issuer (iss)".into(),
        ErrorKind::MissingRequiredClaim(claim) => format!("missing claim {claim}"),
        ErrorKind::InvalidAlgorithm => "algorithm does not match the key".into(),
        other => format!("{other:?}"),
    }
}

/// The config a verifier was built from, and the verifier.
type Built = (JwtConfig, Arc<JwtVerifier>);

/// Verifiers for the most recent distinct configs, newest first. More than one, so validating a candidate config
/// (which may then be rejected) does not evict the one in effect.
static BUILT: LazyLock<Mutex<Vec<Built>>> = LazyLock::new(|| Mutex::new(Vec::new()));

/// How many configs' verifiers are kept.
const BUILT_CAPACITY: usize = 4;

/// The shared verifier for `config`: built once (config load does it first), then found by equality. Building
/// parses PEM text only, never reads a file.
pub fn verifier(config: &JwtConfig) -> Result<Arc<JwtVerifier>, JwtConfigError> {
    if let Some((_, verifier)) = BUILT.lock().iter().find(|(built, _)| built == config) {
        return Ok(Arc::clone(verifier));
    }
    let verifier = Arc::new(JwtVerifier::new(config)?);
    let mut built = BUILT.lock();
    built.insert(0, (config.clone(), Arc::clone(&verifier)));
    built.truncate(BUILT_CAPACITY);
    Ok(verifier)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    const SECRET: &str = "badge-fleet-secret";
    const DEVICE: &str = "94:a9:90:07:9d:88";

    fn config() -> JwtConfig {
        JwtConfig {
            secret: Some(SECRET.into()),
            ..JwtConfig::default()
        }
    }

    fn now() -> i64 {
        jsonwebtoken::get_current_timestamp() as i64
    }

    fn hs256(claims: serde_json::Value, secret: &str) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .expect("encode")
    }

    #[test]
    fn hs256_signature_exp_and_nbf() {
        let verifier = JwtVerifier::new(&config()).expect("config");
        let good = hs256(json!({"exp": now() + 600}), SECRET);
        assert_eq!(verifier.verify(&good, DEVICE), Ok(()));
        // No exp at all is a token that does not expire.
        assert_eq!(verifier.verify(&hs256(json!({}), SECRET), DEVICE), Ok(()));
        let forged = hs256(json!({"exp": now() + 600}), "another-secret");
        assert!(
            verifier
                .verify(&forged, DEVICE)
                .unwrap_err()
                .contains("bad signature")
        );
        let expired = hs256(json!({"exp": now() - 3600}), SECRET);
        assert!(
            verifier
                .verify(&expired, DEVICE)
                .unwrap_err()
                .contains("expired")
        );
        // Inside the leeway still passes.
        assert_eq!(
            verifier.verify(&hs256(json!({"exp": now() - 30}), SECRET), DEVICE),
            Ok(())
        );
        let early = hs256(json!({"nbf": now() + 3600}), SECRET);
        assert!(verifier.verify(&early, DEVICE).unwrap_err().contains("nbf"));
        assert!(
            verifier
                .verify("not.a.jwt", DEVICE)
                .unwrap_err()
                .contains("not a JWT")
        );
    }

    #[test]
    fn an_algorithm_outside_the_list_is_refused() {
        let verifier = JwtVerifier::new(&config()).expect("config");
        let hs512 = encode(
            &Header::new(Algorithm::HS512),
            &json!({}),
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .expect("encode");
        assert!(
            verifier
                .verify(&hs512, DEVICE)
                .unwrap_err()
                .contains("HS512")
        );
    }

    #[test]
    fn audience_issuer_and_subject_must_match_when_configured() {
        let verifier = JwtVerifier::new(&JwtConfig {
            audience: Some("huddle".into()),
            issuer: Some("fleet".into()),
            sub_prefix: Some("device:".into()),
            ..config()
        })
        .expect("config");
        let claims = |aud: &str, iss: &str, sub: &str| json!({"aud": aud, "iss": iss, "sub": sub});
        let ok = hs256(
            claims("huddle", "fleet", "device:94:A9:90:07:9D:88"),
            SECRET,
        );
        assert_eq!(verifier.verify(&ok, DEVICE), Ok(()));
        let cases = [
            (claims("other", "fleet", "device:94:a9:90:07:9d:88"), "aud"),
            (claims("huddle", "rogue", "device:94:a9:90:07:9d:88"), "iss"),
            (claims("huddle", "fleet", "device:aa:bb:cc:dd:ee:ff"), "sub"),
            (claims("huddle", "fleet", "94:a9:90:07:9d:88"), "sub"),
            (
                json!({"iss": "fleet", "sub": "device:94:a9:90:07:9d:88"}),
                "aud",
            ),
        ];
        for (claims, field) in cases {
            let refused = verifier
                .verify(&hs256(claims.clone(), SECRET), DEVICE)
                .unwrap_err();
            assert!(refused.contains(field), "{claims}: {refused}");
        }
    }

    #[test]
    fn config_errors_name_the_field() {
        let cases = [
            (
                JwtConfig {
                    secret: None,
                    ..config()
                },
                "server.auth.jwt.secret",
            ),
            (
                JwtConfig {
                    algorithms: vec!["HS257".into()],
                    ..config()
                },
                "server.auth.jwt.algorithms",
            ),
            (
                JwtConfig {
                    algorithms: vec![],
                    ..config()
                },
                "server.auth.jwt.algorithms",
            ),
            (
                JwtConfig {
                    algorithms: vec!["RS256".into()],
                    ..config()
                },
                "server.auth.jwt.public_key",
            ),
            (
                JwtConfig {
                    algorithms: vec!["RS256".into()],
                    public_key: Some("not a key".into()),
                    ..config()
                },
                "server.auth.jwt.public_key",
            ),
            (
                JwtConfig {
                    algorithms: vec!["RS256".into(), "ES256".into()],
                    public_key: Some("x".into()),
                    ..config()
                },
                "server.auth.jwt.algorithms",
            ),
        ];
        for (config, field) in cases {
            let error = JwtVerifier::new(&config).err().expect("refused");
            assert_eq!(error.field, field, "{config:?}: {}", error.reason);
        }
    }
}
