//! Private keys on disk: PEM blocks and cosign's encrypted key format (scrypt-derived key,
//! `NaCl` secretbox around the PKCS#8 key, as go-securesystemslib's `encrypted` package writes it).

use base64::Engine as _;
use crypto_secretbox::aead::{Aead as _, KeyInit as _};
use gantry_secret::Secret;
use serde_json::Value;

use crate::SigstoreError;

fn invalid(what: &str, reason: impl Into<String>) -> SigstoreError {
    SigstoreError::Invalid {
        what: what.to_owned(),
        expected: "private key",
        reason: reason.into(),
    }
}

/// The first PEM block of `pem`: its label and its decoded body.
pub(crate) fn pem_block(what: &str, text: &str) -> Result<(String, Vec<u8>), SigstoreError> {
    let block = pem::parse(text).map_err(|e| match e {
        pem::PemError::MalformedFraming | pem::PemError::MissingBeginTag => {
            invalid(what, "no PEM block in it")
        }
        other => invalid(what, format!("its PEM block is broken: {other}")),
    })?;
    Ok((block.tag().to_owned(), block.into_contents()))
}

/// Decrypts cosign's encrypted private key (the JSON inside the PEM block) to PKCS#8 DER.
pub(crate) fn decrypt_cosign(
    what: &str,
    json: &[u8],
    password: &Secret,
) -> Result<Vec<u8>, SigstoreError> {
    let doc: Value = serde_json::from_slice(json)
        .map_err(|e| invalid(what, format!("the encrypted key is not JSON: {e}")))?;
    let text = |pointer: &str| {
        doc.pointer(pointer)
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(what, format!("the encrypted key has no {pointer}")))
    };
    let bytes = |pointer: &str| -> Result<Vec<u8>, SigstoreError> {
        base64::engine::general_purpose::STANDARD
            .decode(text(pointer)?)
            .map_err(|e| invalid(what, format!("{pointer} is not base64: {e}")))
    };
    let number = |pointer: &str| {
        doc.pointer(pointer).and_then(Value::as_u64).ok_or_else(|| {
            invalid(
                what,
                format!("the encrypted key has no number at {pointer}"),
            )
        })
    };
    if text("/kdf/name")? != "scrypt" || text("/cipher/name")? != "nacl/secretbox" {
        return Err(invalid(
            what,
            format!(
                "it uses {} with {}; gantry reads scrypt with nacl/secretbox",
                text("/kdf/name")?,
                text("/cipher/name")?
            ),
        ));
    }
    let n = number("/kdf/params/N")?;
    if !n.is_power_of_two() || n < 2 {
        return Err(invalid(
            what,
            format!("scrypt N = {n} is not a power of two"),
        ));
    }
    let log_n = u8::try_from(n.trailing_zeros()).unwrap_or(u8::MAX);
    let r =
        u32::try_from(number("/kdf/params/r")?).map_err(|_| invalid(what, "scrypt r too large"))?;
    let p =
        u32::try_from(number("/kdf/params/p")?).map_err(|_| invalid(what, "scrypt p too large"))?;
    let params = scrypt::Params::new(log_n, r, p, 32)
        .map_err(|e| invalid(what, format!("scrypt parameters: {e}")))?;
    let mut key = [0u8; 32];
    scrypt::scrypt(
        password.expose().as_bytes(),
        &bytes("/kdf/salt")?,
        &params,
        &mut key,
    )
    .map_err(|e| invalid(what, format!("scrypt: {e}")))?;
    let nonce = bytes("/cipher/nonce")?;
    if nonce.len() != 24 {
        return Err(invalid(
            what,
            format!("the nonce is {} bytes, not 24", nonce.len()),
        ));
    }
    let cipher = crypto_secretbox::XSalsa20Poly1305::new(&key.into());
    cipher
        .decrypt(crypto_secretbox::Nonce::from_slice(&nonce), bytes("/ciphertext")?.as_slice())
        .map_err(|_| invalid(what, "it does not decrypt with the password given (wrong password, or the file was altered)"))
}
