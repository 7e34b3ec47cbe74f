//! `dcr-gateway tokens`: operator commands on the configured token store.
//!
//! `list` shows entries without their tokens, and managed clients without
//! their secrets; `forget` removes one; `export` writes JSON (tokens and
//! managed clients' secrets only with `--reveal`); `import` reads that JSON
//! back;
//! `seal` seals the plaintext entries of a store that has just been given a
//! keyring (which the gateway refuses to read until then). The file backend is
//! locked by a running gateway: stop it first, or use Redis.

use std::io::Read;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::managed_records::{self, Checked, ManagedEntry, age};
use crate::config::{DEFAULT_STORE_PATH, RawConfig, RawStoreConfig, store_config};
use crate::store::{ImportEntry, Store, StoreConfig, StoreError, StoredToken, TokenKey, check_key};

/// Flags of `tokens`.
#[derive(Debug, Args)]
pub struct TokensArgs {
    /// TOML file whose `[token_store]` table configures the store.
    #[arg(long, global = true, env = "DCR_GATEWAY_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The store, as for `serve`.
    #[command(flatten)]
    pub store: RawStoreConfig,
    /// What to do.
    #[command(subcommand)]
    pub action: TokensAction,
}

/// The `tokens` subcommands.
#[derive(Debug, Subcommand)]
pub enum TokensAction {
    /// List entries (upstream, namespace, client id, age) and managed clients
    /// (name, client id, secret age and expiry). Never a token or a secret.
    List,
    /// Forget the stored token of a client (in every upstream and namespace
    /// unless narrowed).
    Forget {
        /// The client.
        client_id: String,
        /// Only in this namespace.
        #[arg(long)]
        namespace: Option<String>,
        /// Only for this upstream base URL.
        #[arg(long)]
        upstream: Option<String>,
    },
    /// Write every entry and managed client as JSON to standard output.
    Export {
        /// Include the tokens and the managed clients' whole records, secrets
        /// included. Treat the output as a secret.
        #[arg(long)]
        reveal: bool,
    },
    /// Read entries written by `export --reveal` (standard input, or --file).
    Import {
        /// Read from this file instead of standard input.
        #[arg(long)]
        file: Option<PathBuf>,
        /// Replace entries that already exist (default: keep them).
        #[arg(long)]
        overwrite: bool,
    },
    /// Seal every plaintext entry with the keyring's first key (the file store
    /// in one transaction, Redis entry by entry with compare-and-set).
    Seal,
}

/// One exported entry (no `Debug`: it may hold a token).
#[derive(Serialize, Deserialize)]
struct Entry {
    upstream: String,
    namespace: String,
    client_id: String,
    registration_client_uri: String,
    learned_at: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    registration_access_token: Option<String>,
}

/// Largest export `tokens import` reads: about 300 bytes an entry, so room
/// for hundreds of thousands; a mistaken path to a huge file is refused.
const MAX_IMPORT_BYTES: u64 = 256 << 20;

/// Why a `tokens` command failed; names files and entries, never a token.
#[derive(Debug, thiserror::Error)]
pub enum TokensError {
    /// The settings (flags, environment, `--config` file).
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The token store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No file store where the settings say (nothing was created).
    #[error(
        "no token store at {0}: nothing to show. A gateway on the memory store (the default with \
         --dev-upstream) keeps its tokens in its own memory, out of reach of this command; for a \
         file store give its --token-store-path (or --config), for Redis --token-store redis and \
         its URL"
    )]
    NoStore(String),
    /// The export could not be written as JSON.
    #[error("export: {0}")]
    Export(#[source] serde_json::Error),
    /// The import could not be read.
    #[error("import: {from}: {source}")]
    Read {
        /// The file, or standard input.
        from: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The import is larger than [`MAX_IMPORT_BYTES`].
    #[error("import: larger than {MAX_IMPORT_BYTES} bytes; nothing imported")]
    TooLarge,
    /// The import is not an export's JSON.
    #[error("import: not an export (JSON error at line {line}, column {column}); nothing imported")]
    NotAnExport {
        /// Where the JSON went wrong.
        line: usize,
        /// Where the JSON went wrong.
        column: usize,
    },
    /// An entry of the import is invalid.
    #[error("import: entry {entry} (of {total}): {reason}; nothing imported")]
    Refused {
        /// Which entry, from 1.
        entry: usize,
        /// How many there are.
        total: usize,
        /// What is wrong with it.
        reason: String,
    },
}

/// Runs a `tokens` command; returns what to print.
pub async fn run(args: TokensArgs) -> Result<String, TokensError> {
    let file = match &args.config {
        Some(path) => RawConfig::from_file(path)?.token_store,
        None => RawStoreConfig::default(),
    };
    let env = RawStoreConfig::secret_env()?;
    let raw = args.store.over(env).over(file);
    if !matches!(args.action, TokensAction::Import { .. }) {
        file_store_exists(&raw)?;
    }
    let config = store_config(raw, false)?;
    match args.action {
        TokensAction::List => {
            let (store, entries) = opened(&config).await?;
            let managed = managed_records::export(store.records.list_records().await?, false)?;
            let now = crate::store::unix_now();
            Ok(format!(
                "{}\n\n{}",
                list(&entries, now),
                managed_records::list(&managed, now)
            ))
        }
        TokensAction::Forget {
            client_id,
            namespace,
            upstream,
        } => {
            let (store, entries) = opened(&config).await?;
            let mut forgotten = 0;
            for (key, _) in &entries {
                let matches = key.client_id == client_id
                    && namespace.as_ref().is_none_or(|n| *n == key.namespace)
                    && upstream
                        .as_ref()
                        .is_none_or(|u| u.trim_end_matches('/') == key.upstream);
                if matches && store.tokens.delete(key).await? {
                    forgotten += 1;
                }
            }
            Ok(format!(
                "forgot {forgotten} token(s) for client {client_id:?}"
            ))
        }
        TokensAction::Export { reveal } => {
            let (store, entries) = opened(&config).await?;
            let out = Export {
                tokens: entries
                    .into_iter()
                    .map(|(k, v)| entry(k, v, reveal))
                    .collect(),
                managed_clients: managed_records::export(
                    store.records.list_records().await?,
                    reveal,
                )?,
            };
            serde_json::to_string_pretty(&out).map_err(TokensError::Export)
        }
        TokensAction::Import { file, overwrite } => {
            let (batch, tokenless, records, recordless) = read_import(file)?;
            let (store, _) = opened(&config).await?;
            let (stored, kept) = store.tokens.import(batch, overwrite).await?;
            let (managed, managed_kept) =
                managed_records::import(store.records.as_ref(), records, overwrite).await?;
            Ok(format!(
                "imported {stored} token(s) and {managed} managed client(s), kept {kept} and \
                 {managed_kept} existing, skipped {tokenless} and {recordless} without a secret \
                 (export with --reveal)"
            ))
        }
        TokensAction::Seal => seal(&config).await,
    }
}

/// Whether the file store the settings name exists (any other backend
/// passes): a command that reads a store says plainly that there is none,
/// instead of opening, and so creating, an empty one in the current folder.
/// Only `import` may create a store.
fn file_store_exists(raw: &RawStoreConfig) -> Result<(), TokensError> {
    if raw.backend.as_deref().unwrap_or("file") != "file" {
        return Ok(());
    }
    let path = raw.path.as_deref().unwrap_or(DEFAULT_STORE_PATH);
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(TokensError::NoStore(path.to_owned()))
        }
        // Anything else is for opening the store to report.
        _ => Ok(()),
    }
}

/// The store, opened with its startup check, and every entry, sorted.
async fn opened(config: &StoreConfig) -> Result<(Store, Entries), TokensError> {
    let store = crate::store::open(config).await?;
    let mut entries = store.tokens.list(None).await?;
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    Ok((store, entries))
}

/// Stored entries with their keys.
type Entries = Vec<(TokenKey, StoredToken)>;

/// `tokens seal`: opens the store without the startup read (which plaintext
/// entries fail under a keyring), seals them, then reads everything back.
async fn seal(config: &StoreConfig) -> Result<String, TokensError> {
    let Some(ring) = &config.keyring else {
        return Err(StoreError::NoKeyring.into());
    };
    let store = crate::store::connect(config).await?;
    // A store that keeps nothing at rest (memory) has nothing to seal.
    let sealed = match &store.sealing {
        Some(sealing) => sealing.seal_plaintext().await?,
        None => 0,
    };
    let total = store.tokens.list(None).await?.len();
    Ok(format!(
        "sealed {sealed} plaintext entr{} with key id {:?}; all {total} entries read back",
        if sealed == 1 { "y" } else { "ies" },
        ring.current_id()
    ))
}

fn entry(key: TokenKey, value: StoredToken, reveal: bool) -> Entry {
    Entry {
        upstream: key.upstream,
        namespace: key.namespace,
        client_id: key.client_id,
        registration_client_uri: value.registration_client_uri,
        learned_at: value.learned_at,
        registration_access_token: reveal.then(|| value.token.expose_secret().to_owned()),
    }
}

fn list(entries: &[(TokenKey, StoredToken)], now: u64) -> String {
    let mut out = format!(
        "{} token(s)\nUPSTREAM\tNAMESPACE\tCLIENT_ID\tAGE",
        entries.len()
    );
    for (key, value) in entries {
        let age = age(now.saturating_sub(value.learned_at));
        out.push_str(&format!(
            "\n{}\t{}\t{}\t{age}",
            key.upstream, key.namespace, key.client_id
        ));
    }
    out
}

/// Reads and checks an export: every entry's key parts (see [`check_key`])
/// and token, and every managed client's record, before anything is written.
/// Returns the entries with a token and how many had none, and the managed
/// clients with a record and how many had none.
fn read_import(file: Option<PathBuf>) -> Result<ImportBatch, TokensError> {
    let text = match &file {
        Some(path) => crate::files::read_limited(path, MAX_IMPORT_BYTES).map_err(|source| {
            TokensError::Read {
                from: path.display().to_string(),
                source,
            }
        })?,
        None => {
            let mut text = Vec::new();
            std::io::stdin()
                .take(MAX_IMPORT_BYTES + 1)
                .read_to_end(&mut text)
                .map_err(|source| TokensError::Read {
                    from: "standard input".into(),
                    source,
                })?;
            if text.len() as u64 > MAX_IMPORT_BYTES {
                return Err(TokensError::TooLarge);
            }
            text
        }
    };
    // serde_json's message can quote a value, which may be a token: only
    // the position is reported.
    let (entries, managed) = match serde_json::from_slice(&text) {
        Ok(Import::Current(export)) => (export.tokens, export.managed_clients),
        Ok(Import::Tokens(tokens)) => (tokens, Vec::new()),
        Err(e) => {
            return Err(TokensError::NotAnExport {
                line: e.line(),
                column: e.column(),
            });
        }
    };
    let managed_total = managed.len();
    let (records, recordless) =
        managed_records::check(managed).map_err(|(entry, reason)| TokensError::Refused {
            entry,
            total: managed_total,
            reason: format!("managed client: {reason}"),
        })?;
    let total = entries.len();
    let mut batch = Vec::with_capacity(total);
    for (i, e) in entries.into_iter().enumerate() {
        let refused = |reason: String| TokensError::Refused {
            entry: i + 1,
            total,
            reason,
        };
        let key = TokenKey {
            upstream: e.upstream,
            namespace: e.namespace,
            client_id: e.client_id,
        };
        check_key(&key).map_err(|err| refused(err.to_string()))?;
        let Some(token) = e.registration_access_token.map(SecretString::from) else {
            continue;
        };
        crate::dcr::limits::check_token("registration_access_token", &token)
            .map_err(|err| refused(err.to_string()))?;
        batch.push(ImportEntry {
            key,
            token,
            registration_client_uri: e.registration_client_uri,
        });
    }
    let tokenless = total - batch.len();
    Ok((batch, tokenless, records, recordless))
}

/// What an import holds, checked: the tokens and how many had none, the
/// managed clients and how many had no record.
type ImportBatch = (Vec<ImportEntry>, usize, Vec<Checked>, usize);

/// An export: the tokens and the managed clients.
#[derive(Serialize, Deserialize)]
struct Export {
    tokens: Vec<Entry>,
    #[serde(default)]
    managed_clients: Vec<ManagedEntry>,
}

/// What `import` reads: an export, or the token array older versions wrote.
#[derive(Deserialize)]
#[serde(untagged)]
enum Import {
    Current(Export),
    Tokens(Vec<Entry>),
}
