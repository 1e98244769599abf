//! Bulk export and import through the API: a round trip between SQLite and PostgreSQL, refusals
//! at a line, idempotence, dry runs, and who may do what.

use std::fmt::Write as _;

use warden_client::{AuditQuery, Client, ClientError};
use warden_core::api::{CreateBinding, CreateGroup, CreateRole, CreateServiceAccount, CreateTenant, CreateUser, ImportSummary};
use warden_core::credential::Secret;
use warden_server::services::transfer::BATCH_LINES;

use crate::api::{PgDatabase, TestServer, user};

async fn export(client: &Client, credentials: bool) -> Result<String, ClientError> {
    let mut out = Vec::new();
    client
        .export(credentials, |chunk| {
            out.extend_from_slice(chunk);
            Ok(())
        })
        .await?;
    Ok(String::from_utf8(out).unwrap())
}

/// Sends `text` in small pieces, so that lines are split across chunks as over a network.
async fn import(client: &Client, text: &str, dry_run: bool) -> Result<ImportSummary, ClientError> {
    let pieces: Vec<std::io::Result<Vec<u8>>> = text.as_bytes().chunks(7).map(|c| Ok(c.to_vec())).collect();
    client.import(futures_util::stream::iter(pieces), dry_run).await
}

fn problem(e: &ClientError) -> (&str, Option<u64>) {
    match e {
        ClientError::Api(p) => (p.code.as_str(), p.line),
        other => panic!("not a problem: {other}"),
    }
}

async fn audit_count(client: &Client) -> usize {
    client.audit(&AuditQuery { limit: Some(1000), ..AuditQuery::default() }).await.unwrap().items.len()
}

/// A directory with one of everything, made through the API.
async fn seed(server: &TestServer) -> Client {
    let root = server.superuser().await;
    root.create_tenant(&CreateTenant { name: "acme".into(), description: Some("Acme".into()) }).await.unwrap();
    root.create_role(&CreateRole {
        id: Some("deployer".into()),
        name: "Deployer".into(),
        tenant: Some("acme".into()),
        permissions: vec!["deploy:run".into()],
        ..CreateRole::default()
    })
    .await
    .unwrap();
    root.create_user(&CreateUser {
        display_name: Some("Alice Liddell".into()),
        emails: vec!["alice@example.org".into(), "a@example.net".into()],
        password: Some(Secret::new("correct horse battery")),
        ..user("alice")
    })
    .await
    .unwrap();
    root.create_user(&CreateUser { password: None, ..user("bob") }).await.unwrap();
    root.disable_user("bob").await.unwrap();
    for group in ["eng", "staff"] {
        root.create_group(&CreateGroup { name: group.into(), description: None }).await.unwrap();
    }
    root.create_service_account(&CreateServiceAccount {
        name: "ci-bot".into(),
        description: Some("CI".into()),
        managed_by: Some("group:staff".into()),
    })
    .await
    .unwrap();
    root.add_members("staff", &["group:eng".into(), "user:alice".into(), "sa:ci-bot".into()]).await.unwrap();
    root.add_members("eng", &["user:bob".into()]).await.unwrap();
    root.create_binding(&CreateBinding {
        role: "deployer".into(),
        subject: "group:staff".into(),
        tenant: Some("acme".into()),
        namespaces: vec!["prod".into()],
    })
    .await
    .unwrap();
    root
}

#[tokio::test]
async fn a_directory_moves_from_sqlite_to_postgresql_and_exports_identically() {
    let source = TestServer::start().await;
    let root = seed(&source).await;
    let file = export(&root, true).await.unwrap();
    let lines: Vec<&str> = file.lines().collect();
    assert_eq!(lines[0], r#"{"kind":"header","format":1}"#);
    assert_eq!(lines.last().copied(), Some(format!(r#"{{"kind":"end","records":{}}}"#, lines.len() - 2).as_str()));
    assert!(file.contains(r#""password_hash":"$argon2"#), "alice's hash travels");
    assert!(!export(&root, false).await.unwrap().contains("password_hash"), "only when asked for");

    let db = PgDatabase::create("transfer");
    let url = db.url();
    let target = TestServer::start_with(|c| c.database.url = url).await;
    let target_root = target.superuser().await;
    // The target's own superuser "root" is in both; exported from the source, it is imported
    // as an update of the same user.
    let summary = import(&target_root, &file, false).await.unwrap();
    assert_eq!((summary.lines, summary.batches, summary.dry_run), (lines.len() as u64, 1, false));
    assert!(summary.created > 0 && summary.revision.is_some());
    assert_eq!(export(&target_root, true).await.unwrap(), file, "exports identically");

    // alice signs in on the target with the password she had on the source.
    target.anonymous().login("alice", "correct horse battery").await.unwrap();
    let bot = target_root.get_service_account("ci-bot").await.unwrap();
    assert_eq!(bot.managed_by.map(|m| m.name.to_string()), Some("staff".to_owned()));
    let check = target_root
        .check(&warden_core::api::CheckRequest {
            subject: "user:bob".into(),
            permission: Some("deploy:run".into()),
            tenant: Some("acme".into()),
            namespace: Some("prod".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(check.results[0].allowed, "the snapshot knows the import at once: bob ∈ eng ⊂ staff, bound in acme");

    // Again: nothing changes, and no event is written.
    let events = audit_count(&target_root).await;
    let again = import(&target_root, &file, false).await.unwrap();
    assert_eq!((again.created, again.updated, again.revision), (0, 0, None));
    assert_eq!(again.unchanged, lines.len() as u64 - 2);
    assert_eq!(audit_count(&target_root).await, events);
}

#[tokio::test]
async fn a_bad_line_stops_the_import_keeping_the_batches_before_it() {
    let server = TestServer::start().await;
    let root = server.superuser().await;
    // One full batch and part of a second, then a bad line.
    let batch = BATCH_LINES as u64;
    let users = batch + 1000;
    let mut file = String::from("{\"kind\":\"header\",\"format\":1}\n");
    for i in 0..users {
        writeln!(file, "{{\"kind\":\"user\",\"name\":\"u{i:06}\",\"profile\":{{\"display_name\":\"User {i}\"}}}}").unwrap();
    }
    let bad_line = users + 2;
    let good = file.clone() + &format!("{{\"kind\":\"end\",\"records\":{users}}}\n");
    file.push_str("{\"kind\":\"member\",\"group\":\"nowhere\",\"member\":\"user:u000001\"}\n");

    // A dry run checks every reference and writes nothing.
    let events = audit_count(&root).await;
    let e = import(&root, &file, true).await.unwrap_err();
    assert_eq!(problem(&e), ("import.invalid", Some(bad_line)));
    assert_eq!(e.status(), Some(400));
    let dry = import(&root, &good, true).await.unwrap();
    assert_eq!((dry.dry_run, dry.created, dry.batches, dry.revision), (true, users, 2, None));
    assert_eq!(audit_count(&root).await, events);
    assert_eq!(root.get_user("u000001").await.unwrap_err().code(), "not_found");

    // For real: the first batch (lines 2..=BATCH_LINES+1) is committed, the second rolled back.
    let e = import(&root, &file, false).await.unwrap_err();
    assert_eq!(problem(&e), ("import.invalid", Some(bad_line)));
    assert!(e.to_string().contains("group nowhere"), "{e}");
    root.get_user(&format!("u{:06}", batch - 1)).await.unwrap();
    assert_eq!(root.get_user(&format!("u{batch:06}")).await.unwrap_err().code(), "not_found");
    let events = &root.audit(&AuditQuery { action: Some("import.batch".into()), ..AuditQuery::default() }).await.unwrap().items;
    assert_eq!(events.len(), 1, "one event per batch");
    assert_eq!(events[0].details["first_line"], 2);
    assert_eq!(events[0].details["accounts"].as_array().unwrap().len() as u64, batch);

    // The rest comes with the whole file; the first batch's users are unchanged.
    let summary = import(&root, &good, false).await.unwrap();
    assert_eq!((summary.created, summary.unchanged), (1000, batch));

    // Broken files: said where.
    for (text, line) in [
        ("{\"kind\":\"user\",\"name\":\"x\"}\n", 1),
        ("{\"kind\":\"header\",\"format\":1}\nnot json\n", 2),
        ("{\"kind\":\"header\",\"format\":1}\n{\"kind\":\"end\",\"records\":3}\n", 2),
        ("{\"kind\":\"header\",\"format\":1}\n{\"kind\":\"user\",\"name\":\"idm_admin\"}\n", 2),
        ("{\"kind\":\"header\",\"format\":1}\n{\"kind\":\"user\",\"name\":\"x\",\"profile\":{\"birthday\":\"2999-01-01\"}}\n", 2),
        ("", 1),
    ] {
        let e = import(&root, text, false).await.unwrap_err();
        assert_eq!(problem(&e), ("import.invalid", Some(line)), "{text:?}");
    }
}

#[tokio::test]
async fn export_and_import_need_their_rights() {
    // root signs in again with the password alone for a fresh read-only session; the rights
    // to export and import do not depend on the MFA policy.
    let server = TestServer::start_with(|c| c.auth.mfa_required_for_admin_roles = false).await;
    let root = server.superuser().await;
    let idm = server.idm().await;
    assert_eq!(problem(&export(&idm, false).await.unwrap_err()).0, "forbidden", "idm_admin cannot read roles and bindings");
    assert_eq!(problem(&export(&server.sysadmin().await, true).await.unwrap_err()).0, "account.high_privilege");
    // Password hashes leave only through a session that has just re-authenticated (or a
    // read-write token), even a superuser's.
    let reading = server.anonymous().login("root", "correct horse battery").await.unwrap().token;
    let reading = server.anonymous().with_bearer(reading.expose());
    assert_eq!(problem(&export(&reading, true).await.unwrap_err()).0, "session.not_elevated");
    export(&reading, false).await.expect("a read-only session may export without credentials");
    let header = "{\"kind\":\"header\",\"format\":1}\n";
    assert_eq!(problem(&import(&idm, header, false).await.unwrap_err()).0, "forbidden");

    // An importer: a role carrying warden:import:write, which only a superuser may create.
    root.create_role(&crate::api::role("importer", "Importer", &["warden:import:write"])).await.unwrap();
    root.create_user(&user("carol")).await.unwrap();
    root.create_binding(&CreateBinding { role: "importer".into(), subject: "user:carol".into(), ..Default::default() }).await.unwrap();
    let token = server.anonymous().login("carol", "correct horse battery").await.unwrap().token;
    let carol = server.anonymous().with_bearer(token.expose());
    let file = format!("{header}{{\"kind\":\"user\",\"name\":\"dave\"}}\n");
    assert_eq!(problem(&import(&carol, &file, false).await.unwrap_err()).0, "session.not_elevated");
    carol.reauth("correct horse battery").await.unwrap();
    assert_eq!(import(&carol, &file, false).await.unwrap().created, 1);

    // What only a superuser may do through the API stays so.
    let hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";
    for (line, code) in [
        (format!("{{\"kind\":\"user\",\"name\":\"erin\",\"password_hash\":\"{hash}\"}}"), "account.high_privilege"),
        ("{\"kind\":\"member\",\"group\":\"idm_superusers\",\"member\":\"user:dave\"}".to_owned(), "account.high_privilege"),
        ("{\"kind\":\"user\",\"name\":\"root\",\"disabled\":true}".to_owned(), "account.high_privilege"),
        (
            "{\"kind\":\"role\",\"id\":\"boss\",\"tenant\":\"default\",\"name\":\"Boss\",\"permissions\":[\"warden:users\"]}".to_owned(),
            "account.high_privilege",
        ),
        (
            "{\"kind\":\"binding\",\"role\":\"idm_admin\",\"tenant\":\"default\",\"subject\":\"user:dave\"}".to_owned(),
            "account.high_privilege",
        ),
        ("{\"kind\":\"binding\",\"role\":\"nope\",\"tenant\":\"default\",\"subject\":\"user:dave\"}".to_owned(), "import.invalid"),
    ] {
        let e = import(&carol, &format!("{header}{{\"kind\":\"user\",\"name\":\"dave\"}}\n{line}\n"), false).await.unwrap_err();
        assert_eq!(problem(&e), (code, Some(3)), "{line}");
    }
    assert!(!root.get_user("root").await.unwrap().disabled);
    // The superuser may.
    let file = format!("{header}{{\"kind\":\"user\",\"name\":\"erin\",\"password_hash\":\"{hash}\"}}\n");
    assert_eq!(import(&root, &file, false).await.unwrap().created, 1);
    assert!(root.get_user("erin").await.unwrap().has_password);
}
