//! The file store's write groups, through the store: concurrent writes
//! share commits and all are durable; a failed write leaves nothing and
//! fails no other.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use redb::TableDefinition;
use secrecy::{ExposeSecret, SecretString};

use super::file::FileStore;
use super::file_group::backend;
use super::{Cas, StoreError, TokenKey, Tokens};

const SCRATCH: TableDefinition<&str, &[u8]> = TableDefinition::new("scratch");

fn key(id: usize) -> TokenKey {
    TokenKey {
        upstream: "http://127.0.0.1:9".into(),
        namespace: "default".into(),
        client_id: format!("c{id}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_share_commits_and_every_one_is_durable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.redb");
    let store = FileStore::open(&path, None).unwrap();
    let writers = 64;
    let start = Arc::new(tokio::sync::Barrier::new(writers));
    let writes: Vec<_> = (0..writers)
        .map(|i| {
            let (store, start) = (store.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                let token = SecretString::from(format!("rat-{i}"));
                store.compare_and_set(&key(i), None, &token, "").await
            })
        })
        .collect();
    for write in writes {
        assert!(matches!(write.await.unwrap(), Ok(Cas::Stored(1))));
    }
    let commits = store.groups.commits.load(Ordering::Relaxed);
    assert!(
        commits < writers as u64,
        "{commits} commits for {writers} writes"
    );
    drop(store);
    let reopened = FileStore::open(&path, None).unwrap();
    for i in 0..writers {
        let stored = reopened.get(&key(i)).await.unwrap().unwrap();
        assert_eq!(stored.token.expose_secret(), format!("rat-{i}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_write_leaves_nothing_and_fails_no_other() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(&dir.path().join("t.redb"), None).unwrap();
    let start = Arc::new(tokio::sync::Barrier::new(8));
    let writers: Vec<_> = (0..8)
        .map(|i| {
            let (store, start) = (store.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                store
                    .groups
                    .write(move |txn, _| {
                        let name = format!("k{i}");
                        let mut table = txn.open_table(SCRATCH).map_err(backend)?;
                        table
                            .insert(name.as_str(), [1u8].as_slice())
                            .map_err(backend)?;
                        match i % 2 {
                            0 => Err(StoreError::Backend("planted failure".into())),
                            _ => Ok(i),
                        }
                    })
                    .await
            })
        })
        .collect();
    for (i, writer) in writers.into_iter().enumerate() {
        let out = writer.await.unwrap();
        assert_eq!(out.is_ok(), i % 2 == 1, "writer {i}: {:?}", out.err());
    }
    let txn = redb::ReadableDatabase::begin_read(&*store.db).unwrap();
    let table = txn.open_table(SCRATCH).unwrap();
    for i in 0..8 {
        let held = table.get(format!("k{i}").as_str()).unwrap().is_some();
        assert_eq!(
            held,
            i % 2 == 1,
            "k{i}: a failed write's half stayed, or a good one went"
        );
    }
}
