//! Dashboard sessions and gallery pages on SQLite and PostgreSQL: a session is found by its
//! token only while it is live and its key is, and pages walk a tenant's active artifacts
//! newest first, each once, ties on the creation time broken by id.

use pixseal_store::{Artifact, ArtifactState, Db, DbError, PageAfter, Scope};

fn artifact(tenant: &str, id: &str, created_ms: i64, state: ArtifactState) -> Artifact {
    Artifact {
        id: id.into(),
        tenant_id: tenant.into(),
        region: "us".into(),
        proof_id: format!("px_{id}"),
        state,
        sha256: "0".repeat(64),
        original_sha256: "1".repeat(64),
        content_type: "image/webp".into(),
        width: 1,
        height: 1,
        bytes: 1,
        wrapped_key: String::new(),
        label_sealed: None,
        client_ip_sealed: None,
        created_at: String::new(),
        created_ms,
        expires_at: String::new(),
        expires_ms: created_ms + 1000,
    }
}

async fn check(db: Db) {
    let t = db.create_tenant("acme", "us", 30).await.unwrap();
    let other = db.create_tenant("other", "us", 30).await.unwrap();
    let (key, _) = db
        .create_api_key(&t, &[Scope::ArtifactsRead])
        .await
        .unwrap();
    let token = format!("pxs_{}", "ab".repeat(32));

    db.create_web_session(&token, &key.id, 1_000, 2_000)
        .await
        .unwrap();
    assert_eq!(db.web_session_key(&token, 1_500).await.unwrap().id, key.id);
    assert_eq!(
        db.web_session_key(&token, 1_500).await.unwrap().tenant.id,
        t.id
    );
    // Expired, unknown: not found.
    assert!(matches!(
        db.web_session_key(&token, 2_000).await,
        Err(DbError::NotFound)
    ));
    let unknown = format!("pxs_{}", "cd".repeat(32));
    assert!(matches!(
        db.web_session_key(&unknown, 1_500).await,
        Err(DbError::NotFound)
    ));
    // A revoked key ends its sessions, and the purge forgets them.
    db.create_web_session(&unknown, &key.id, 1_000, 9_000)
        .await
        .unwrap();
    db.revoke_api_key(&t, &key.id).await.unwrap();
    assert!(matches!(
        db.web_session_key(&unknown, 1_500).await,
        Err(DbError::NotFound)
    ));
    assert_eq!(db.purge_web_sessions(1_500).await.unwrap(), 2);
    assert!(!db.delete_web_session(&unknown).await.unwrap());

    // Seven active artifacts (two pairs created at the same millisecond), one pending, and
    // another tenant's.
    let mut want = Vec::new();
    for (i, ms) in [10, 20, 20, 30, 40, 40, 50].into_iter().enumerate() {
        let id = format!("a{i}");
        db.insert_artifact(&artifact(&t.id, &id, ms, ArtifactState::Active))
            .await
            .unwrap();
        want.push((ms, id));
    }
    db.insert_artifact(&artifact(&t.id, "pending", 60, ArtifactState::Pending))
        .await
        .unwrap();
    db.insert_artifact(&artifact(&other.id, "theirs", 70, ArtifactState::Active))
        .await
        .unwrap();
    want.sort_by(|a, b| b.cmp(a));
    let want: Vec<String> = want.into_iter().map(|(_, id)| id).collect();
    assert_eq!(db.count_artifacts(&t.id).await.unwrap(), 7);
    let mut seen = Vec::new();
    let mut after: Option<PageAfter> = None;
    loop {
        let page = db.artifacts_page(&t.id, after.as_ref(), 3).await.unwrap();
        if page.is_empty() {
            break;
        }
        let last = page.last().unwrap();
        after = Some(PageAfter {
            created_ms: last.created_ms,
            id: last.id.clone(),
        });
        seen.extend(page.into_iter().map(|a| a.id));
    }
    assert_eq!(seen, want);
}

#[tokio::test]
async fn sessions_and_pages_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    check(
        Db::connect(&format!("sqlite://{}", dir.path().join("s.db").display()))
            .await
            .unwrap(),
    )
    .await;
}

#[tokio::test]
async fn sessions_and_pages_on_postgres() {
    check(
        Db::connect(&pixseal_testkit::fresh_postgres_db("sessions"))
            .await
            .unwrap(),
    )
    .await;
}
