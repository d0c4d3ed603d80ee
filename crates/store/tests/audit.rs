//! The audit chain on SQLite and PostgreSQL: appends link up, concurrent appends stay one
//! chain, and editing or deleting any entry is detected at the right place.

use pixseal_store::Db;

async fn check(db: Db) {
    for i in 0..5 {
        db.audit("key:k1", "artifact.create", &format!("obj{i}"), "ok", "")
            .await
            .unwrap();
    }
    // 20 concurrent appends: still one unbroken chain.
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let db = db.clone();
            tokio::spawn(async move {
                db.audit("key:k2", "artifact.read", &format!("c{i}"), "ok", "")
                    .await
                    .unwrap()
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(db.audit_verify().await.unwrap(), (25, None));

    // Edit entry 7's outcome: detected at 7.
    sqlx::query("UPDATE audit_log SET outcome = 'denied' WHERE seq = 7")
        .execute(db.pool())
        .await
        .unwrap();
    let (_, broken) = db.audit_verify().await.unwrap();
    assert_eq!(broken.unwrap().seq, 7);
    sqlx::query("UPDATE audit_log SET outcome = 'ok' WHERE seq = 7")
        .execute(db.pool())
        .await
        .unwrap();
    assert_eq!(db.audit_verify().await.unwrap().1, None, "restored");

    // Delete entry 12: detected at 12. Delete the last one: detected by the head.
    sqlx::query("DELETE FROM audit_log WHERE seq = 25")
        .execute(db.pool())
        .await
        .unwrap();
    assert_eq!(db.audit_verify().await.unwrap().1.unwrap().seq, 25);
    sqlx::query("DELETE FROM audit_log WHERE seq = 12")
        .execute(db.pool())
        .await
        .unwrap();
    assert_eq!(db.audit_verify().await.unwrap().1.unwrap().seq, 12);
}

#[tokio::test]
async fn audit_chain_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    check(
        Db::connect(&format!("sqlite://{}", dir.path().join("a.db").display()))
            .await
            .unwrap(),
    )
    .await;
}

#[tokio::test]
async fn audit_chain_on_postgres() {
    check(
        Db::connect(&pixseal_testkit::fresh_postgres_db("audit"))
            .await
            .unwrap(),
    )
    .await;
}
