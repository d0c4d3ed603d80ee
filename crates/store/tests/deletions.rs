//! Deletions on SQLite and PostgreSQL: one eraser wins a race to begin, a deletion is finished
//! once, a second receipt for one artifact is refused by the database itself, and a stale
//! deletion is taken over by exactly one worker.

use pixseal_store::{
    Artifact, ArtifactState, Db, DbError, Deletion, DeletionReason, ProofManifest, ProofRecord,
    ProofStatus,
};

async fn active(db: &Db, tenant: &str, id: &str) -> Artifact {
    let a = Artifact {
        id: id.into(),
        tenant_id: tenant.into(),
        region: "us".into(),
        proof_id: format!("px_{id}"),
        state: ArtifactState::Pending,
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
        created_ms: 0,
        expires_at: String::new(),
        expires_ms: 1,
    };
    db.insert_artifact(&a).await.unwrap();
    let proof = ProofRecord {
        proof_id: a.proof_id.clone(),
        sha256: a.sha256.clone(),
        original_sha256: a.original_sha256.clone(),
        pdq: None,
        issued_at: String::new(),
        status: ProofStatus::Active,
        purged_at: None,
        receipt_id: None,
    };
    let manifest = ProofManifest {
        proof_id: a.proof_id.clone(),
        manifest_id: format!("urn:c2pa:{id}"),
        manifest: "AAAA".into(),
    };
    db.activate_artifact(id, &proof, &manifest, &[])
        .await
        .unwrap();
    a
}

fn deletion(n: usize, claimed_ms: i64) -> Deletion {
    Deletion {
        receipt_id: format!("rcpt_{n:032}"),
        reason: DeletionReason::DeletedByOwner,
        deleted_at: "2026-11-08T00:00:00Z".into(),
        salt: "5a".repeat(32),
        claimed_ms,
    }
}

async fn check(db: Db) {
    let t = db.create_tenant("t", "us", 30).await.unwrap();
    let a = active(&db, &t.id, "a1").await;

    // 16 erasers race to begin: exactly one wins; the row carries the winner's deletion.
    let tasks: Vec<_> = (0..16)
        .map(|n| {
            let db = db.clone();
            tokio::spawn(async move {
                let d = deletion(n, 1000);
                let won = db
                    .begin_deletion("a1", ArtifactState::Active, &d)
                    .await
                    .unwrap();
                won.then_some(d)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for t in tasks {
        winners.extend(t.await.unwrap());
    }
    assert_eq!(winners.len(), 1, "exactly one eraser begins");
    let d = winners.pop().unwrap();
    assert!(
        !db.begin_deletion("a1", ArtifactState::Deleting, &deletion(99, 1000))
            .await
            .unwrap(),
        "a decided deletion is never redecided"
    );
    assert!(
        matches!(db.artifact(&t.id, "a1").await, Err(DbError::NotFound)),
        "no longer served"
    );

    // Abandon only as its beginner: another receipt id or a taken-over claim cannot.
    assert!(
        !db.abandon_deletion("a1", ArtifactState::Active, &deletion(99, 1000))
            .await
            .unwrap()
    );
    assert!(
        !db.abandon_deletion(
            "a1",
            ArtifactState::Active,
            &Deletion {
                claimed_ms: 1,
                ..d.clone()
            }
        )
        .await
        .unwrap()
    );
    assert!(
        db.abandon_deletion("a1", ArtifactState::Active, &d)
            .await
            .unwrap()
    );
    assert_eq!(
        db.artifact(&t.id, "a1").await.unwrap().state,
        ArtifactState::Active
    );
    assert!(
        db.begin_deletion("a1", ArtifactState::Active, &d)
            .await
            .unwrap()
    );

    // Finished once, by many finishers at once; the proof record names that receipt.
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (db, a, d) = (db.clone(), a.clone(), d.clone());
            tokio::spawn(async move { db.record_deletion(&a, &d, "{}").await.unwrap() })
        })
        .collect();
    let mut recorded = 0;
    for t in tasks {
        recorded += t.await.unwrap() as usize;
    }
    assert_eq!(recorded, 1, "one finisher records");
    assert_eq!(db.receipt_count().await.unwrap(), 1);
    let stored = db.receipt_of_artifact("a1").await.unwrap().unwrap();
    assert_eq!(stored.receipt_id, d.receipt_id);
    assert_eq!(stored.salt.as_deref(), Some(&*d.salt));
    assert_eq!(stored.original_sha256.as_deref(), Some(&*"1".repeat(64)));
    assert_eq!(db.receipt(&d.receipt_id).await.unwrap(), stored);
    let p = db.proof("px_a1").await.unwrap();
    assert_eq!(
        (p.status, p.receipt_id.as_deref()),
        (ProofStatus::Purged, Some(&*d.receipt_id))
    );

    // The database itself refuses a second receipt for the artifact.
    let second = sqlx::query(
        "INSERT INTO receipts (receipt_id, artifact_id, proof_id, tenant_id, signed_json, deleted_at) VALUES ('rcpt_x', 'a1', 'px_a1', $1, '{}', 'x')",
    )
    .bind(&t.id)
    .execute(db.pool())
    .await;
    assert!(matches!(
        second.map_err(DbError::from),
        Err(DbError::Conflict(_))
    ));

    // A deletion whose eraser stopped: taken over only once stale, by one of two workers.
    active(&db, &t.id, "a2").await;
    let d2 = deletion(2, 10_000);
    assert!(
        db.begin_deletion("a2", ArtifactState::Active, &d2)
            .await
            .unwrap()
    );
    assert!(
        db.claim_stale_deletions(10_500, 1000, 10)
            .await
            .unwrap()
            .is_empty(),
        "fresh"
    );
    let (x, y) = tokio::join!(
        db.claim_stale_deletions(11_001, 1000, 10),
        db.claim_stale_deletions(11_001, 1000, 10)
    );
    let mut taken: Vec<_> = x.unwrap().into_iter().chain(y.unwrap()).collect();
    assert_eq!(taken.len(), 1, "taken over once");
    let (a2, found) = taken.pop().unwrap();
    assert_eq!(a2.id, "a2");
    assert_eq!(
        found,
        Some(Deletion {
            claimed_ms: 11_001,
            ..d2.clone()
        }),
        "under the new claim"
    );
    assert!(
        db.claim_stale_deletions(11_500, 1000, 10)
            .await
            .unwrap()
            .is_empty(),
        "the takeover re-claimed it"
    );
    assert!(
        !db.abandon_deletion("a2", ArtifactState::Active, &d2)
            .await
            .unwrap(),
        "its beginner lost it"
    );

    // A row an older version left `deleting` without a decided deletion: taken over as such,
    // then decided once.
    active(&db, &t.id, "a3").await;
    sqlx::query("UPDATE artifacts SET state = 'deleting', claimed_ms = NULL WHERE id = 'a3'")
        .execute(db.pool())
        .await
        .unwrap();
    let legacy = db.claim_stale_deletions(0, 1000, 10).await.unwrap();
    assert_eq!(legacy.len(), 1);
    assert_eq!((legacy[0].0.id.as_str(), &legacy[0].1), ("a3", &None));
    assert!(
        db.begin_deletion("a3", ArtifactState::Deleting, &deletion(3, 0))
            .await
            .unwrap()
    );
    assert!(
        !db.begin_deletion("a3", ArtifactState::Deleting, &deletion(4, 0))
            .await
            .unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletions_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    check(
        Db::connect(&format!("sqlite://{}", dir.path().join("d.db").display()))
            .await
            .unwrap(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletions_on_postgres() {
    check(
        Db::connect(&pixseal_testkit::fresh_postgres_db("deletions"))
            .await
            .unwrap(),
    )
    .await;
}
