//! `https://` storage with a private CA, on the real API server and S3 server: a TLS proxy on
//! 127.0.0.1, with a certificate from a CA made for the test, sits in front of the local S3
//! server. With the CA in `caBundle` runs complete (the backup over one proxy, its restore with
//! the CA from a Secret); without it they fail with a message about the certificate;
//! `insecureSkipTLSVerify` works and sends a warning Event.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use cluster_backup::api::{BackupPhase, RestorePhase};
use common::Scene;
use common::scene::assert_phase;
use common::stored::{keys, ns_key};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{self, pki_types::PrivateKeyDer};

/// A TLS-terminating proxy to the local S3 server, with a certificate for `127.0.0.1` from a
/// CA of its own. Stops when dropped.
struct TlsProxy {
    endpoint: String,
    ca_pem: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn tls_proxy(s3_endpoint: &str) -> TlsProxy {
    let upstream = s3_endpoint
        .strip_prefix("http://")
        .expect("the test ground's S3 server speaks plain HTTP")
        .trim_end_matches('/')
        .to_string();
    common::assert_loopback(s3_endpoint);

    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "cluster-backup test CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let server_cert =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap()
            .signed_by(&server_key, &issuer)
            .unwrap();

    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![server_cert.der().clone()],
            PrivateKeyDer::try_from(server_key.serialize_der()).unwrap(),
        )
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let upstream = upstream.clone();
            tokio::spawn(async move {
                // A client that refuses the certificate ends the handshake: nothing to do.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut s3) = TcpStream::connect(&upstream).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut s3).await;
            });
        }
    });
    TlsProxy {
        endpoint: format!("https://127.0.0.1:{port}"),
        ca_pem: ca_cert.pem(),
        task,
    }
}

/// The scene's storage location, reached through `proxy`.
fn through(scene: &Scene, proxy: &TlsProxy) -> Value {
    let mut location = scene.location();
    location["endpoint"] = json!(proxy.endpoint);
    location
}

async fn put_ca_config_map(scene: &Scene, name: &str, pem: &str) {
    scene
        .create(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": { "name": name, "namespace": scene.namespace() },
            "data": { "ca.crt": pem },
        }))
        .await;
}

/// A CA bundle from a ConfigMap of the Backup's namespace is trusted; a restore through
/// `https://` reads the CA from a Secret under another key.
#[tokio::test]
async fn a_private_ca_in_the_namespace_is_trusted() {
    let scene = Scene::restores("tls-ca").await;
    let proxy = tls_proxy(&scene.env.s3_endpoint).await;
    put_ca_config_map(&scene, "storage-ca", &proxy.ca_pem).await;
    let source = scene.namespace_with_configmap("s", "over-tls").await;

    let mut doc = scene.one_shot("tls", &source.name);
    let mut location = through(&scene, &proxy);
    location["caBundle"] = json!({ "configMap": "storage-ca" });
    doc["spec"]["storageLocation"] = location.clone();
    scene.create_backup(&doc).await;
    let backup = scene.wait_finished("tls").await;
    assert_phase(&backup, BackupPhase::Completed);
    // What went through the proxy is in the bucket, read directly.
    let run = scene.verify_run(&backup).await;
    assert_eq!(
        run.keys(),
        keys([ns_key(&source.name, "configmaps", "over-tls")])
    );
    // A loopback endpoint with a checked certificate: no transport warning.
    let reasons: Vec<_> = scene
        .events("Backup", "tls")
        .await
        .into_iter()
        .filter_map(|e| e.reason)
        .collect();
    assert!(
        !reasons.iter().any(|r| r == "InsecureTransport"),
        "{reasons:?}"
    );

    scene
        .create(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": { "name": "storage-ca-secret", "namespace": scene.namespace() },
            "stringData": { "bundle.pem": proxy.ca_pem },
        }))
        .await;
    let mut restore_location = through(&scene, &proxy);
    restore_location["caBundle"] = json!({ "secret": "storage-ca-secret", "key": "bundle.pem" });
    let copy = common::short_unique_name("tls-copy");
    let status = scene
        .restore(
            "tls-restore",
            json!({
                "source": {
                    "storageLocation": restore_location,
                    "backupPath": run.path,
                },
                "target": { "namespaceMapping": { source.name.clone(): copy } },
                "options": { "createNamespaces": true },
            }),
        )
        .await;
    let _copy_guard = scene.adopt_namespace(&copy);
    assert_eq!(status.phase, Some(RestorePhase::Completed), "{status:?}");
    let restored: Api<ConfigMap> = Api::namespaced(scene.client.clone(), &copy);
    assert!(restored.get_opt("over-tls").await.unwrap().is_some());
}

/// Without the CA the run fails, saying the certificate is not trusted and what to set; with
/// `insecureSkipTLSVerify` it completes, with a warning Event.
#[tokio::test]
async fn an_untrusted_certificate_fails_unless_verification_is_skipped() {
    let scene = Scene::backups("tls-untrusted").await;
    let proxy = tls_proxy(&scene.env.s3_endpoint).await;
    let source = scene.namespace_with_configmap("s", "cfg").await;

    let mut doc = scene.one_shot("no-ca", &source.name);
    doc["spec"]["storageLocation"] = through(&scene, &proxy);
    scene
        .expect_failed_run(&doc, &["certificate", "set caBundle"])
        .await;

    let mut doc = scene.one_shot("skip-verify", &source.name);
    let mut location = through(&scene, &proxy);
    location["insecureSkipTLSVerify"] = json!(true);
    doc["spec"]["storageLocation"] = location;
    scene.create_backup(&doc).await;
    let backup = scene.wait_finished("skip-verify").await;
    assert_phase(&backup, BackupPhase::Completed);
    let note = scene
        .warning_event("Backup", "skip-verify", "InsecureTransport")
        .await;
    assert!(note.contains("not verified"), "{note}");
    assert!(note.contains(&proxy.endpoint), "{note}");

    // A CA bundle that does not hold a certificate is a clear failure, not a TLS mystery.
    put_ca_config_map(&scene, "not-a-ca", "hello").await;
    let mut doc = scene.one_shot("bad-ca", &source.name);
    let mut location = through(&scene, &proxy);
    location["caBundle"] = json!({ "configMap": "not-a-ca" });
    doc["spec"]["storageLocation"] = location;
    scene.expect_failed_run(&doc, &["no PEM certificate"]).await;
}
