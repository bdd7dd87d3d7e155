//! TLS and credentials to the real servers: a PostgreSQL that takes only
//! TLS with a password and a client certificate, and a nats-server that
//! takes only TLS with a client certificate and an nkey or a password, all
//! under a CA the test makes.

use std::path::PathBuf;

use warden_cluster::{Bus, BusConfig, Enqueued, NatsAuth, Published, Record, Security};
use warden_fakes::tls::TestCa;

use crate::support::{Nats, Postgres};

const PASSWORD: &str = "correct-horse-battery-staple";

struct Pki {
    _dir: tempfile::TempDir,
    ca: TestCa,
    ca_file: PathBuf,
    client: (PathBuf, PathBuf),
}

fn new_pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    let ca_file = ca.write_pem(dir.path());
    let client = ca.write_client_pem(dir.path(), "warden");
    Pki {
        _dir: dir,
        ca,
        ca_file,
        client,
    }
}

fn full(pki: &Pki) -> Security {
    Security::default()
        .with_tls(
            Some(&pki.ca_file),
            Some((pki.client.0.as_path(), pki.client.1.as_path())),
        )
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_over_tls_with_a_client_certificate_and_password_works_and_nothing_less_does() {
    let pki = new_pki();
    let Some(pg) = Postgres::start_tls(&pki.ca, PASSWORD) else {
        return;
    };
    let url = format!("{} password={PASSWORD}", pg.url());

    // The CA, the client certificate and the password: TLS is used (the
    // server has no other line for TCP) and the record works.
    let record = Record::connect_with(&url, &full(&pki)).await.unwrap();
    record.migrate().await.unwrap();
    let task = warden::Task::goal("t-tls", "check the web tier").in_env("staging");
    assert!(matches!(
        record.enqueue("tls:1", &task).await.unwrap(),
        Enqueued::New(_)
    ));
    // The change feed (approvals, incidents) opens a connection of its own
    // with the same settings: it listens only if that one is TLS too.
    let mut feed = record.feed(warden_cluster::APPROVALS_CHANNEL);
    let first = tokio::time::timeout(std::time::Duration::from_secs(20), feed.next())
        .await
        .expect("the feed did not connect over TLS within 20 s");
    assert_eq!(first, Some(warden_cluster::FeedEvent::Resync));
    drop(feed);

    // Without the test CA the server's certificate is not trusted.
    let no_ca = Security::default()
        .with_tls(None, Some((pki.client.0.as_path(), pki.client.1.as_path())))
        .unwrap();
    let err = Record::connect_with(&url, &no_ca).await.unwrap_err();
    let text = format!("{err}: {:?}", std::error::Error::source(&err));
    assert!(
        text.contains("certificate") || text.contains("UnknownIssuer"),
        "{text}"
    );

    // Without the client certificate the server refuses.
    let no_client = Security::default()
        .with_tls(Some(&pki.ca_file), None)
        .unwrap();
    assert!(Record::connect_with(&url, &no_client).await.is_err());

    // A certificate from another CA is refused too.
    let other = new_pki();
    let wrong_client = Security::default()
        .with_tls(
            Some(&pki.ca_file),
            Some((other.client.0.as_path(), other.client.1.as_path())),
        )
        .unwrap();
    assert!(Record::connect_with(&url, &wrong_client).await.is_err());

    // Plaintext asked for explicitly: the server has no line for it.
    let plain = format!("{url} sslmode=disable");
    let err = Record::connect_with(&plain, &Security::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("PostgreSQL: connect"), "{err}");

    // `sslmode=disable` with TLS configured is a contradiction, refused
    // before anything is sent.
    let err = Record::connect_with(&plain, &full(&pki)).await.unwrap_err();
    assert!(err.to_string().contains("sslmode=disable"), "{err}");

    // A wrong password over a good TLS link fails.
    let wrong = format!("{} password=not-the-password", pg.url());
    assert!(Record::connect_with(&wrong, &full(&pki)).await.is_err());
}

#[tokio::test]
async fn plaintext_to_a_remote_postgres_is_refused_before_any_packet() {
    // 192.0.2.0/24 is TEST-NET-1: nothing answers there, and the refusal
    // comes before a connection is tried.
    let err = Record::connect_with(
        "host=192.0.2.7 user=warden dbname=warden connect_timeout=1",
        &Security::default(),
    )
    .await
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("refusing plaintext to PostgreSQL at 192.0.2.7"),
        "{text}"
    );
}

fn nats_tls_config(pki: &Pki, dir: &std::path::Path, users: &str) -> String {
    let (cert, key) = pki.ca.write_server_pem(dir, &["127.0.0.1", "localhost"]);
    format!(
        "tls {{ cert_file: {:?}, key_file: {:?}, ca_file: {:?}, verify: true, timeout: 5 }}\nauthorization {{ users = [ {users} ] }}\n",
        cert.display().to_string(),
        key.display().to_string(),
        pki.ca_file.display().to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_over_mutual_tls_with_an_nkey_or_a_password_carries_intake_and_nothing_less_connects()
{
    let pki = new_pki();
    let dir = tempfile::tempdir().unwrap();
    let user = nkeys::KeyPair::new_user();
    let seed = user.seed().unwrap();
    let users = format!(
        "{{ nkey: {:?} }}, {{ user: \"w2\", password: {PASSWORD:?} }}",
        user.public_key()
    );
    let Some(nats) = Nats::start_with(&nats_tls_config(&pki, dir.path(), &users)) else {
        return;
    };
    let config = |security: Security| {
        BusConfig::default()
            .with_connect_timeout(std::time::Duration::from_secs(3))
            .with_security(security)
    };

    // Mutual TLS and the nkey: the intake stream works.
    let bus = Bus::connect_with(
        &nats.url(),
        config(full(&pki).with_nats_auth(NatsAuth::Nkey { seed })),
    )
    .await
    .unwrap();
    let task = warden::Task::goal("t-nats-tls", "check the web tier").in_env("staging");
    assert!(matches!(
        bus.publish_alert("nats-tls:1", &task).await.unwrap(),
        Published::Stored(_)
    ));

    // Mutual TLS and the password work as well.
    let auth = NatsAuth::UserPassword {
        user: "w2".into(),
        password: PASSWORD.into(),
    };
    Bus::connect_with(&nats.url(), config(full(&pki).with_nats_auth(auth)))
        .await
        .unwrap();

    // An nkey the server does not know is refused.
    let stranger = nkeys::KeyPair::new_user().seed().unwrap();
    let err = Bus::connect_with(
        &nats.url(),
        config(full(&pki).with_nats_auth(NatsAuth::Nkey { seed: stranger })),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("cannot connect"), "{err}");

    // No client certificate: the handshake fails.
    let seed = user.seed().unwrap();
    let no_client = Security::default()
        .with_tls(Some(&pki.ca_file), None)
        .unwrap()
        .with_nats_auth(NatsAuth::Nkey { seed: seed.clone() });
    assert!(
        Bus::connect_with(&nats.url(), config(no_client))
            .await
            .is_err()
    );

    // The server's certificate without the test CA: not trusted.
    let no_ca = Security::default()
        .with_tls(None, Some((pki.client.0.as_path(), pki.client.1.as_path())))
        .unwrap()
        .with_nats_auth(NatsAuth::Nkey { seed: seed.clone() });
    assert!(Bus::connect_with(&nats.url(), config(no_ca)).await.is_err());

    // Plaintext (no TLS configured) is refused by the server.
    let plain = Security::default().with_nats_auth(NatsAuth::Nkey { seed });
    assert!(Bus::connect_with(&nats.url(), config(plain)).await.is_err());
}
