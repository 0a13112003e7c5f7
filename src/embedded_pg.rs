//! The private PostgreSQL that `ontab serve` starts when `DATABASE_URL` is
//! unset, so a first run needs nothing but the installed server packages.
//!
//! The cluster lives under one directory (`./.ontab` by default):
//! `data/` (the cluster, kept between runs), `postgres.log`, and `lock`, a
//! file lock that keeps two ontab processes from running `initdb` or
//! `pg_ctl start` on the same directory at once. The server listens on a Unix
//! socket only (`listen_addresses = ''`), so it never collides with another
//! PostgreSQL on the machine and is unreachable from the network.
//!
//! `initdb` and `postgres` refuse to run as root; when ontab runs as root
//! (containers, CI) the server processes run as the `postgres` user through
//! `runuser`, and the directory is handed to that user first. Where the
//! directory is when none is given is [`data_dir`]'s business.

pub mod data_dir;

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::{Digest, Sha256};
use tokio_postgres::NoTls;

/// The socket's "port": only its file name (`.s.PGSQL.5432`) depends on it.
const PORT: u16 = 5432;
/// Unix socket paths are limited to 107 bytes (sun_path) on Linux.
const MAX_SOCKET_PATH: usize = 107;
/// How long `pg_ctl` may wait for the server to come up or go down.
const PG_CTL_WAIT_SECS: &str = "60";
/// The unprivileged user that runs the server when ontab runs as root.
const SERVICE_USER: &str = "postgres";

#[derive(Debug, thiserror::Error)]
pub enum EmbeddedPgError {
    #[error(
        "PostgreSQL server binaries not found: install PostgreSQL (e.g. `apt-get install postgresql`) or set DATABASE_URL"
    )]
    NotInstalled,
    #[error(
        "running as root, but there is no `{SERVICE_USER}` user to run PostgreSQL as: create one or set DATABASE_URL"
    )]
    NoServiceUser,
    #[error(
        "the `{SERVICE_USER}` user that runs the private PostgreSQL cannot reach {} (a parent directory is not traversable): choose another --data-dir (ONTAB_DATA_DIR) or set DATABASE_URL",
        .0.display()
    )]
    Unreachable(PathBuf),
    #[error(
        "the `{SERVICE_USER}` user that runs the private PostgreSQL cannot reach {}, and no directory it can reach could be made for this checkout ({tried}): choose a --data-dir (ONTAB_DATA_DIR) or set DATABASE_URL",
        .default.display()
    )]
    NoReachableDir { default: PathBuf, tried: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} failed ({status}): {detail}")]
    Command {
        what: &'static str,
        status: String,
        detail: String,
    },
    #[error("cannot connect to the private PostgreSQL: {0}")]
    Connect(String),
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> EmbeddedPgError {
    let context = context.into();
    move |source| EmbeddedPgError::Io { context, source }
}

/// A running private PostgreSQL.
#[derive(Debug)]
pub struct EmbeddedPostgres {
    bindir: PathBuf,
    data: PathBuf,
    socket_dir: PathBuf,
    dbname: String,
    run_as: Option<ServiceUser>,
    /// Whether this process started the server (and so should stop it); a
    /// server that was already running belongs to whoever started it.
    started_here: bool,
}

#[derive(Debug, Clone)]
struct ServiceUser {
    uid: u32,
    gid: u32,
}

impl EmbeddedPostgres {
    /// Creates the cluster under `root` if needed, starts it unless it is
    /// already running, and creates database `dbname` if it is missing.
    pub async fn start(root: &Path, dbname: &str) -> Result<Self, EmbeddedPgError> {
        let root = root.to_path_buf();
        let name = dbname.to_owned();
        let cluster = tokio::task::spawn_blocking(move || Self::start_blocking(&root, name))
            .await
            .map_err(|error| EmbeddedPgError::Io {
                context: "starting the private PostgreSQL".into(),
                source: std::io::Error::other(error.to_string()),
            })??;
        cluster.ensure_database().await?;
        Ok(cluster)
    }

    fn start_blocking(root: &Path, dbname: String) -> Result<Self, EmbeddedPgError> {
        let bindir = find_bindir()?;
        let run_as = service_user()?;
        fs::create_dir_all(root).map_err(io(format!("creating {}", root.display())))?;
        let root = root
            .canonicalize()
            .map_err(io(format!("resolving {}", root.display())))?;
        let lock_path = root.join("lock");
        let lock =
            File::create(&lock_path).map_err(io(format!("creating {}", lock_path.display())))?;
        // Held until this function returns: initdb and start are one step.
        lock.lock()
            .map_err(io(format!("locking {}", lock_path.display())))?;

        let data = root.join("data");
        let socket_dir = socket_dir_for(&root)?;
        if let Some(user) = &run_as {
            for dir in [&root, &socket_dir] {
                std::os::unix::fs::chown(dir, Some(user.uid), Some(user.gid)).map_err(io(
                    format!("handing {} to the {SERVICE_USER} user", dir.display()),
                ))?;
            }
            // The log is appended to by the server, so it must be the server's.
            let log = root.join("postgres.log");
            if log.exists() {
                std::os::unix::fs::chown(&log, Some(user.uid), Some(user.gid)).map_err(io(
                    format!("handing {} to the {SERVICE_USER} user", log.display()),
                ))?;
            }
            // Owning the directory is not enough when a parent (a 0700 home
            // or temp directory) shuts the service user out: say so plainly
            // rather than let initdb fail with "permission denied".
            if !service_user_can_reach(&root) {
                return Err(EmbeddedPgError::Unreachable(root));
            }
        }
        let mut cluster = Self {
            bindir,
            data,
            socket_dir,
            dbname,
            run_as,
            started_here: false,
        };
        if !cluster.data.join("PG_VERSION").exists() {
            cluster.initdb()?;
        }
        if !cluster.is_running()? {
            cluster.pg_ctl_start(&root.join("postgres.log"))?;
            cluster.started_here = true;
        }
        drop(lock);
        Ok(cluster)
    }

    /// A libpq-style connection string for the cluster's database.
    pub fn connection_string(&self) -> String {
        self.connection_string_for(&self.dbname)
    }

    /// A libpq-style connection string for database `dbname` of the cluster.
    pub fn connection_string_for(&self, dbname: &str) -> String {
        format!(
            "host={} port={PORT} user=postgres dbname={dbname}",
            quote_value(&self.socket_dir.to_string_lossy())
        )
    }

    /// Stops the server if this process started it.
    pub async fn stop(mut self) -> Result<(), EmbeddedPgError> {
        if !self.started_here {
            return Ok(());
        }
        // Stopped here, so Drop (at the end of the closure) has nothing to do.
        self.started_here = false;
        tokio::task::spawn_blocking(move || self.pg_ctl_stop())
            .await
            .map_err(|error| EmbeddedPgError::Io {
                context: "stopping the private PostgreSQL".into(),
                source: std::io::Error::other(error.to_string()),
            })?
    }

    fn initdb(&self) -> Result<(), EmbeddedPgError> {
        let output = self.run(
            "initdb",
            &[
                "-D".as_ref(),
                self.data.as_os_str(),
                "-U".as_ref(),
                "postgres".as_ref(),
                "--auth=trust".as_ref(),
                "--encoding=UTF8".as_ref(),
                "--locale=C".as_ref(),
                "--no-instructions".as_ref(),
            ],
        )?;
        expect_success("initdb", output)?;
        // The socket is the only way in; the settings live in the cluster so a
        // plain `pg_ctl start` by an operator behaves the same.
        let settings = format!(
            "\n# ontab: private server, reachable only through its Unix socket\nlisten_addresses = ''\nport = {PORT}\ntimezone = 'UTC'\n"
        );
        let conf = self.data.join("postgresql.conf");
        let mut text =
            fs::read_to_string(&conf).map_err(io(format!("reading {}", conf.display())))?;
        text.push_str(&settings);
        fs::write(&conf, text).map_err(io(format!("writing {}", conf.display())))
    }

    fn is_running(&self) -> Result<bool, EmbeddedPgError> {
        // pg_ctl status: 0 running, 3 not running, 4 no data directory.
        let output = self.run(
            "pg_ctl",
            &["status".as_ref(), "-D".as_ref(), self.data.as_os_str()],
        )?;
        Ok(output.status.success())
    }

    fn pg_ctl_start(&self, log: &Path) -> Result<(), EmbeddedPgError> {
        // The socket directory is passed at each start (not written into the
        // cluster) because it follows where the directory is now.
        let options = format!("-k {}", shell_quote(&self.socket_dir.to_string_lossy()));
        let output = self.run(
            "pg_ctl",
            &[
                "start".as_ref(),
                "-D".as_ref(),
                self.data.as_os_str(),
                "-l".as_ref(),
                log.as_os_str(),
                "-w".as_ref(),
                "-t".as_ref(),
                PG_CTL_WAIT_SECS.as_ref(),
                "-o".as_ref(),
                options.as_ref(),
            ],
        )?;
        expect_success("pg_ctl start", output).map_err(|error| match error {
            EmbeddedPgError::Command {
                what,
                status,
                detail,
            } => EmbeddedPgError::Command {
                what,
                status,
                detail: format!("{detail}; server log ({}): {}", log.display(), tail(log)),
            },
            other => other,
        })
    }

    fn pg_ctl_stop(&self) -> Result<(), EmbeddedPgError> {
        let output = self.run(
            "pg_ctl",
            &[
                "stop".as_ref(),
                "-D".as_ref(),
                self.data.as_os_str(),
                "-m".as_ref(),
                "fast".as_ref(),
                "-w".as_ref(),
                "-t".as_ref(),
                PG_CTL_WAIT_SECS.as_ref(),
            ],
        )?;
        expect_success("pg_ctl stop", output)
    }

    async fn ensure_database(&self) -> Result<(), EmbeddedPgError> {
        let config: tokio_postgres::Config = self
            .connection_string_for("postgres")
            .parse()
            .map_err(|error: tokio_postgres::Error| EmbeddedPgError::Connect(error.to_string()))?;
        let (client, connection) = config
            .connect(NoTls)
            .await
            .map_err(|error| EmbeddedPgError::Connect(error.to_string()))?;
        let connection = tokio::spawn(connection);
        let exists = client
            .query_opt(
                "SELECT 1 FROM pg_database WHERE datname = $1",
                &[&self.dbname],
            )
            .await
            .map_err(|error| EmbeddedPgError::Connect(crate::db::describe_pg(&error)))?
            .is_some();
        if !exists {
            let create = format!("CREATE DATABASE {}", quote_ident(&self.dbname));
            if let Err(error) = client.batch_execute(&create).await {
                // Another process may have created it a moment ago.
                if error.code() != Some(&tokio_postgres::error::SqlState::DUPLICATE_DATABASE) {
                    return Err(EmbeddedPgError::Connect(crate::db::describe_pg(&error)));
                }
            }
        }
        drop(client);
        let _ = connection.await;
        Ok(())
    }

    /// Runs one of the server binaries, as the service user when we are root.
    fn run(
        &self,
        program: &'static str,
        args: &[&std::ffi::OsStr],
    ) -> Result<Output, EmbeddedPgError> {
        let binary = self.bindir.join(program);
        let mut command = if self.run_as.is_some() {
            let mut command = Command::new("runuser");
            command.args(["-u", SERVICE_USER, "--"]).arg(&binary);
            command
        } else {
            Command::new(&binary)
        };
        command.args(args).env("LC_ALL", "C").env_remove("PGDATA");
        command
            .output()
            .map_err(io(format!("running {}", binary.display())))
    }
}

impl Drop for EmbeddedPostgres {
    /// A cluster dropped without `stop()` (a panic, an early return) is
    /// stopped here so it does not outlive the process that started it.
    fn drop(&mut self) {
        if self.started_here
            && let Err(error) = self.pg_ctl_stop()
        {
            tracing::warn!(%error, "could not stop the private PostgreSQL");
        }
    }
}

/// Finds the directory holding `initdb`, `pg_ctl` and `postgres`.
pub fn find_bindir() -> Result<PathBuf, EmbeddedPgError> {
    let has_server = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Ok(output) = Command::new("pg_config").arg("--bindir").output()
        && output.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        if has_server(&dir) {
            return Ok(dir);
        }
    }
    if let Some(path) = std::env::var_os("PATH")
        && let Some(dir) = std::env::split_paths(&path).find(|dir| has_server(dir))
    {
        return Ok(dir);
    }
    // Debian and Ubuntu keep the server out of PATH; take the newest version.
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let dir = entry.path().join("bin");
            has_server(&dir).then_some((version, dir))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, dir)| dir)
        .ok_or(EmbeddedPgError::NotInstalled)
}

/// The user to run the server as: none unless we are root.
fn service_user() -> Result<Option<ServiceUser>, EmbeddedPgError> {
    if id(&["-u"])? != 0 {
        return Ok(None);
    }
    let uid = id(&["-u", SERVICE_USER]).map_err(|_| EmbeddedPgError::NoServiceUser)?;
    let gid = id(&["-g", SERVICE_USER]).map_err(|_| EmbeddedPgError::NoServiceUser)?;
    Ok(Some(ServiceUser { uid, gid }))
}

/// Whether the user that runs the private PostgreSQL can enter `dir`
/// (always, unless ontab runs as root and the server as `postgres`).
pub fn service_user_can_reach(dir: &Path) -> bool {
    match id(&["-u"]) {
        Ok(0) => reachable_by_service_user(dir),
        _ => true,
    }
}

/// Whether the service user can search `dir` (and so every directory above).
fn reachable_by_service_user(dir: &Path) -> bool {
    Command::new("runuser")
        .args(["-u", SERVICE_USER, "--", "test", "-x"])
        .arg(dir)
        .status()
        .is_ok_and(|status| status.success())
}

/// `id` rather than libc: the crate forbids unsafe code.
fn id(args: &[&str]) -> Result<u32, EmbeddedPgError> {
    let output = Command::new("id")
        .args(args)
        .output()
        .map_err(io("running id"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    match (output.status.success(), text.trim().parse()) {
        (true, Ok(number)) => Ok(number),
        _ => Err(EmbeddedPgError::Command {
            what: "id",
            status: output.status.to_string(),
            detail: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        }),
    }
}

/// The root itself when the socket path fits in sun_path, else a directory
/// under /tmp named after the root (stable, so restarts find it again).
fn socket_dir_for(root: &Path) -> Result<PathBuf, EmbeddedPgError> {
    let socket_name = format!(".s.PGSQL.{PORT}");
    if root.join(&socket_name).as_os_str().len() <= MAX_SOCKET_PATH {
        return Ok(root.to_path_buf());
    }
    let digest = Sha256::digest(root.as_os_str().as_encoded_bytes());
    let dir = std::env::temp_dir().join(format!("ontab-pg-{}", &hex::encode(digest)[..16]));
    fs::create_dir_all(&dir).map_err(io(format!("creating {}", dir.display())))?;
    Ok(dir)
}

fn expect_success(what: &'static str, output: Output) -> Result<(), EmbeddedPgError> {
    if output.status.success() {
        return Ok(());
    }
    let mut detail = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    if detail.is_empty() {
        detail = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    }
    Err(EmbeddedPgError::Command {
        what,
        status: output.status.to_string(),
        detail: detail.replace('\n', " | "),
    })
}

/// The last lines of the server log, for an error message.
fn tail(log: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut file) = File::open(log) {
        let length = file.metadata().map(|meta| meta.len()).unwrap_or(0);
        let _ = file.seek(SeekFrom::Start(length.saturating_sub(2000)));
        let _ = file.read_to_string(&mut text);
    }
    let lines: Vec<&str> = text.lines().rev().take(5).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
}

/// Quotes a value for a libpq key=value connection string.
fn quote_value(value: &str) -> String {
    if !value.is_empty() && !value.contains([' ', '\'', '\\']) {
        return value.to_owned();
    }
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// Quotes a word for the shell that `pg_ctl` hands `-o` to.
fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "'\\''"))
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_roots_get_a_short_socket_dir() {
        let short = Path::new("/srv/ontab");
        assert_eq!(socket_dir_for(short).ok(), Some(short.to_path_buf()));
        let long = PathBuf::from(format!("/{}", "x".repeat(120)));
        let dir = socket_dir_for(&long).expect("temp dir is writable");
        assert!(dir.join(".s.PGSQL.5432").as_os_str().len() <= MAX_SOCKET_PATH);
        assert_eq!(socket_dir_for(&long).ok(), Some(dir), "stable across calls");
    }

    #[test]
    fn connection_values_are_quoted() {
        assert_eq!(quote_value("/tmp/x"), "/tmp/x");
        assert_eq!(quote_value("/tmp/a b"), "'/tmp/a b'");
        assert_eq!(quote_value("/it's"), "'/it\\'s'");
        let config: Result<tokio_postgres::Config, _> =
            format!("host={} port=5432 user=postgres", quote_value("/tmp/a b")).parse();
        assert!(config.is_ok());
        assert_eq!(shell_quote("/a'b"), "'/a'\\''b'");
    }
}
