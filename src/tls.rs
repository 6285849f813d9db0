//! TLS client settings, for engines and registries alike: which roots are
//! trusted, which client certificate is shown, and — only where Docker
//! itself does so — no verification at all. Always the ring provider.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use crate::error::{Error, Result};

/// What a connection trusts.
pub enum Trust {
    /// Only these CA files (the docker CLI's `ca.pem` for an engine).
    Only(Vec<PathBuf>),
    /// The system's roots and these CA files (a registry's `certs.d/*.crt`).
    SystemAnd(Vec<PathBuf>),
    /// Nothing is verified: Docker's way with insecure registries and
    /// `DOCKER_TLS` without `DOCKER_TLS_VERIFY`.
    Anything,
}

/// A rustls client configuration; `identity` is a certificate chain and key.
pub fn client_config(
    trust: &Trust,
    identity: Option<(&Path, &Path)>,
) -> Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::internal(format!("TLS setup: {e}")))?;
    let builder = match trust {
        Trust::Anything => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification)),
        Trust::Only(cas) | Trust::SystemAnd(cas) => {
            let mut roots = rustls::RootCertStore::empty();
            if matches!(trust, Trust::SystemAnd(_)) {
                for c in rustls_native_certs::load_native_certs().certs {
                    let _ = roots.add(c);
                }
            }
            for ca in cas {
                for c in read_certs(ca)? {
                    roots.add(c).map_err(|e| {
                        Error::file(ca, format!("not a usable CA certificate: {e}"))
                    })?;
                }
            }
            builder.with_root_certificates(roots)
        }
    };
    match identity {
        None => Ok(builder.with_no_client_auth()),
        Some((cert, key)) => {
            let chain = read_certs(cert)?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| Error::file(key, format!("not a PEM private key: {e}")))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| Error::file(cert, format!("unusable client certificate: {e}")))
        }
    }
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<std::result::Result<_, _>>())
        .map_err(|e| match e {
            rustls::pki_types::pem::Error::Io(io) => Error::io(path, io),
            e => Error::file(path, format!("not a PEM certificate: {e}")),
        })?;
    if certs.is_empty() {
        return Err(Error::file(path, "holds no PEM certificate"));
    }
    Ok(certs)
}

#[derive(Debug)]
struct NoVerification;

impl rustls::client::danger::ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}
