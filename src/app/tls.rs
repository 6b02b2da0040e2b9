//! TLS on both listeners (rustls, with the aws-lc-rs provider the rest of the binary uses): the
//! certificate chain and key, and with `client_ca_file` the CAs a client certificate must chain
//! to, checked during the handshake. The files are read at start and again at every reload: a
//! connection keeps the configuration it shook hands with, new connections get the new one.

use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::settings::TlsSettings;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("`server.tls` is not set: cert_file and key_file are needed")]
    NotConfigured,
    #[error("`{key}` ({path}): {message}")]
    File { key: &'static str, path: String, message: String },
    #[error("`server.tls.key_file` does not belong to the certificate of `server.tls.cert_file`: {0}")]
    Mismatch(String),
    #[error("`server.tls.client_ca_file` ({path}): {message}")]
    ClientCa { path: String, message: String },
    #[error("TLS configuration refused: {0}")]
    Config(#[from] rustls::Error),
}

/// ALPN of the HTTP listener (HTTP/2 preferred, HTTP/1.1 for the rest) and of gRPC.
const HTTP_ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];
const GRPC_ALPN: [&[u8]; 1] = [b"h2"];

/// Both listeners' TLS configurations, swapped whole by a reload.
pub struct TlsListeners {
    settings: TlsSettings,
    http: ArcSwap<ServerConfig>,
    grpc: ArcSwap<ServerConfig>,
}

/// The files read and checked, ready to be put in place.
pub struct Prepared {
    http: ServerConfig,
    grpc: ServerConfig,
}

impl TlsListeners {
    /// `None` when TLS is off.
    pub fn load(settings: &TlsSettings) -> Result<Option<Arc<Self>>, TlsError> {
        if !settings.enabled() {
            return Ok(None);
        }
        let Prepared { http, grpc } = prepare(settings)?;
        Ok(Some(Arc::new(Self {
            settings: settings.clone(),
            http: ArcSwap::from_pointee(http),
            grpc: ArcSwap::from_pointee(grpc),
        })))
    }

    /// Reads the files again, at the paths the listeners started with.
    pub fn prepare(&self) -> Result<Prepared, TlsError> {
        prepare(&self.settings)
    }

    pub fn install(&self, prepared: Prepared) {
        self.http.store(Arc::new(prepared.http));
        self.grpc.store(Arc::new(prepared.grpc));
    }

    pub fn http(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.http.load_full())
    }

    pub fn grpc(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.grpc.load_full())
    }
}

/// Reads and checks the files of `settings` (also what `check-config` reports).
pub fn prepare(settings: &TlsSettings) -> Result<Prepared, TlsError> {
    let (Some(cert_file), Some(key_file)) = (&settings.cert_file, &settings.key_file) else {
        return Err(TlsError::NotConfigured);
    };
    let certs = read_certificates(cert_file, "server.tls.cert_file")?;
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| file_error("server.tls.key_file", key_file, &e))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions()?;
    let builder = match &settings.client_ca_file {
        None => builder.with_no_client_auth(),
        Some(ca_file) => {
            let mut roots = rustls::RootCertStore::empty();
            for ca in read_certificates(ca_file, "server.tls.client_ca_file")? {
                roots.add(ca).map_err(|e| TlsError::ClientCa {
                    path: ca_file.display().to_string(),
                    message: e.to_string(),
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| TlsError::ClientCa {
                    path: ca_file.display().to_string(),
                    message: e.to_string(),
                })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder.with_single_cert(certs, key).map_err(|e| match e {
        rustls::Error::InconsistentKeys(k) => TlsError::Mismatch(format!("{k:?}")),
        other => TlsError::Config(other),
    })?;
    let with_alpn = |alpn: &[&[u8]]| {
        let mut c = config.clone();
        c.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        c
    };
    Ok(Prepared {
        http: with_alpn(&HTTP_ALPN),
        grpc: with_alpn(&GRPC_ALPN),
    })
}

fn read_certificates(path: &Path, key: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| file_error(key, path, &e))?;
    if certs.is_empty() {
        return Err(TlsError::File {
            key,
            path: path.display().to_string(),
            message: "no PEM certificate in it".into(),
        });
    }
    Ok(certs)
}

fn file_error(key: &'static str, path: &Path, e: &rustls_pki_types::pem::Error) -> TlsError {
    use rustls_pki_types::pem::Error;
    let message = match e {
        Error::Io(io) => format!("cannot read: {io}"),
        Error::NoItemsFound => "no PEM item of the expected kind in it".into(),
        other => format!("not valid PEM: {other:?}"),
    };
    TlsError::File {
        key,
        path: path.display().to_string(),
        message,
    }
}
