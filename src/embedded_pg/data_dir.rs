//! Where the private PostgreSQL keeps its data when no `--data-dir` is given.
//!
//! The default is `./.ontab`. As root the server runs as `postgres`, and that
//! user cannot enter a checkout inside root's home (mode 0700), which is
//! where a first run in a container or a fresh VM happens. Such a checkout
//! gets a directory of its own instead, named after its canonical path
//! (`/var/lib/ontab/<name>-<12 hex of sha256(path)>`, or under the temp
//! directory when `/var/lib` cannot take it): the same checkout finds the
//! same data on every run, two checkouts never share a cluster.
//!
//! A `--data-dir` given explicitly is taken as given; if the service user
//! cannot reach it, starting fails with a message that says so.

use std::fs::{self, DirBuilder};
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{EmbeddedPgError, SERVICE_USER, ServiceUser, io};

/// The data directory when none is given, relative to the working directory.
pub const DEFAULT: &str = ".ontab";
/// Where relocated data directories live: the FHS place for a service's state.
const SYSTEM_PARENT: &str = "/var/lib/ontab";
/// Under the temp directory, for machines whose /var/lib is read-only.
const TEMP_PARENT: &str = "ontab-data";
/// Keeps `<parent>/<name>-<hash>/.s.PGSQL.5432` well inside sun_path.
const MAX_NAME: usize = 32;

/// The resolved data directory, and why it is where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir {
    path: PathBuf,
    /// The default that the service user could not reach, when relocated.
    unreachable_default: Option<PathBuf>,
}

impl DataDir {
    /// Resolves the data directory for the current working directory: the
    /// explicit one if given, else `./.ontab`, else (as root, when the
    /// service user cannot reach it) this checkout's own directory, created
    /// if needed. Runs `id` and `runuser`: meant for startup.
    pub fn resolve(explicit: Option<&Path>) -> Result<Self, EmbeddedPgError> {
        let working_dir =
            std::env::current_dir().map_err(io("reading the current working directory"))?;
        Self::resolve_in(&working_dir, explicit)
    }

    /// [`DataDir::resolve`] for a given working directory.
    pub fn resolve_in(
        working_dir: &Path,
        explicit: Option<&Path>,
    ) -> Result<Self, EmbeddedPgError> {
        if let Some(path) = explicit {
            return Ok(Self::at(path.to_path_buf()));
        }
        let default = working_dir.join(DEFAULT);
        let Some(user) = super::service_user()? else {
            return Ok(Self::at(default));
        };
        // Search permission on the working directory as the service user
        // means every ancestor is traversable too; `.ontab` itself is handed
        // to that user by `EmbeddedPostgres::start`.
        if super::reachable_by_service_user(working_dir) {
            return Ok(Self::at(default));
        }
        let checkout = working_dir
            .canonicalize()
            .map_err(io(format!("resolving {}", working_dir.display())))?;
        let name = checkout_dir_name(&checkout);
        let mut refusals = Vec::new();
        for parent in parents() {
            match claim(&parent, &name, &user, super::reachable_by_service_user) {
                Ok(path) => {
                    return Ok(Self {
                        path,
                        unreachable_default: Some(default),
                    });
                }
                Err(reason) => refusals.push(format!("{}: {reason}", parent.display())),
            }
        }
        Err(EmbeddedPgError::NoReachableDir {
            default,
            tried: refusals.join("; "),
        })
    }

    fn at(path: PathBuf) -> Self {
        Self {
            path,
            unreachable_default: None,
        }
    }

    /// The directory to pass to `EmbeddedPostgres::start`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// One line for the user when the data is not where they would look
    /// (`./.ontab`); `None` when it is.
    pub fn notice(&self) -> Option<String> {
        let default = self.unreachable_default.as_ref()?;
        let mut line = format!(
            "the `{SERVICE_USER}` user that runs the private PostgreSQL cannot reach {}, so this checkout keeps its data in {} (the same directory on every run from here; --data-dir or ONTAB_DATA_DIR chooses another)",
            default.display(),
            self.path.display()
        );
        if default.join("data").join("PG_VERSION").exists() {
            line.push_str(&format!(
                "; the cluster in {} is left untouched",
                default.display()
            ));
        }
        if self.path.starts_with(std::env::temp_dir()) {
            line.push_str("; it is under the temp directory and may not survive a reboot");
        }
        Some(line)
    }
}

/// Where this checkout's data may be relocated to, most durable first
/// (each may or may not exist). Pure: also lets tests clean up after a run.
pub fn relocation_candidates(checkout: &Path) -> Vec<PathBuf> {
    let name = checkout_dir_name(checkout);
    parents()
        .into_iter()
        .map(|parent| parent.join(&name))
        .collect()
}

fn parents() -> [PathBuf; 2] {
    [
        PathBuf::from(SYSTEM_PARENT),
        std::env::temp_dir().join(TEMP_PARENT),
    ]
}

/// `<last path component>-<12 hex of sha256(path)>`: readable in a listing,
/// and distinct for distinct checkouts that share a name.
fn checkout_dir_name(checkout: &Path) -> String {
    let digest = hex::encode(Sha256::digest(checkout.as_os_str().as_encoded_bytes()));
    let readable: String = checkout
        .file_name()
        .map(|name| name.to_string_lossy())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .skip_while(|&c| c == '.')
        .take(MAX_NAME)
        .collect();
    let readable = if readable.is_empty() {
        "ontab".to_owned()
    } else {
        readable
    };
    format!("{readable}-{}", &digest[..12])
}

/// Makes `parent/name` ready for the service user, or says why `parent`
/// cannot hold it. `parent` is created 0755 if missing and must then be a
/// real directory of ours that nobody else can write to (in the temp
/// directory anyone could have made it first, to plant a symlink); the data
/// directory is created 0700 and must be ours or the service user's.
fn claim(
    parent: &Path,
    name: &str,
    user: &ServiceUser,
    can_enter: impl Fn(&Path) -> bool,
) -> Result<PathBuf, String> {
    let ours = super::id(&["-u"]).map_err(|error| error.to_string())?;
    create_private_dir(parent, 0o755)?;
    check_dir(parent, &[ours])?;
    if !can_enter(parent) {
        return Err(format!("the `{SERVICE_USER}` user cannot enter it"));
    }
    let path = parent.join(name);
    create_private_dir(&path, 0o700)?;
    check_dir(&path, &[ours, user.uid])?;
    Ok(path)
}

/// Creates `dir` with exactly `mode` (not narrowed by the umask), or
/// accepts it as it is when it already exists.
fn create_private_dir(dir: &Path, mode: u32) -> Result<(), String> {
    match DirBuilder::new().mode(mode).create(dir) {
        Ok(()) => fs::set_permissions(dir, fs::Permissions::from_mode(mode))
            .map_err(|error| format!("cannot set its mode: {error}")),
        Err(error) if error.kind() == ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(format!("cannot create {}: {error}", dir.display())),
    }
}

/// A real directory (not a symlink), owned by one of `owners`, writable by
/// its owner alone.
fn check_dir(dir: &Path, owners: &[u32]) -> Result<(), String> {
    let meta = fs::symlink_metadata(dir).map_err(|error| format!("{}: {error}", dir.display()))?;
    if !meta.file_type().is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    if !owners.contains(&meta.uid()) {
        return Err(format!("{} is owned by uid {}", dir.display(), meta.uid()));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!(
            "{} is writable by others (mode {:o})",
            dir.display(),
            meta.mode() & 0o7777
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(label: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "ontab-data-dir-test-{label}-{}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("temp dir is writable");
        dir
    }

    fn nobody() -> ServiceUser {
        ServiceUser {
            uid: 65534,
            gid: 65534,
        }
    }

    #[test]
    fn an_explicit_data_dir_is_taken_as_given() {
        let chosen = Path::new("/nowhere/in/particular");
        let dir = DataDir::resolve_in(Path::new("/also/nowhere"), Some(chosen))
            .expect("no lookups for an explicit dir");
        assert_eq!(dir.path(), chosen);
        assert_eq!(dir.notice(), None);
    }

    #[test]
    fn a_reachable_working_directory_keeps_the_default() {
        // The temp directory is open to every user, root's service user too.
        let working_dir = scratch("reachable");
        let dir = DataDir::resolve_in(&working_dir, None).expect("resolves");
        assert_eq!(dir.path(), working_dir.join(".ontab"));
        assert_eq!(dir.notice(), None, "nothing to say about the default");
        let _ = fs::remove_dir_all(&working_dir);
    }

    #[test]
    fn checkout_dir_names_are_stable_distinct_and_short() {
        let a = checkout_dir_name(Path::new("/root/ontab"));
        assert_eq!(a, checkout_dir_name(Path::new("/root/ontab")));
        assert!(
            a.starts_with("ontab-") && a.len() == "ontab-".len() + 12,
            "{a}"
        );
        assert_ne!(a, checkout_dir_name(Path::new("/home/ann/ontab")));
        let odd = checkout_dir_name(Path::new(&format!("/root/..my checkout{}", "x".repeat(80))));
        assert!(odd.starts_with("my_checkout"), "{odd}");
        assert!(odd.len() <= MAX_NAME + 13, "{odd}");
        assert!(checkout_dir_name(Path::new("/")).starts_with("ontab-"));
        let socket = Path::new(SYSTEM_PARENT).join(&odd).join(".s.PGSQL.5432");
        assert!(socket.as_os_str().len() <= super::super::MAX_SOCKET_PATH);
    }

    #[test]
    fn relocation_candidates_prefer_var_lib_then_the_temp_directory() {
        let candidates = relocation_candidates(Path::new("/root/ontab"));
        let name = checkout_dir_name(Path::new("/root/ontab"));
        assert_eq!(
            candidates,
            [
                Path::new("/var/lib/ontab").join(&name),
                std::env::temp_dir().join("ontab-data").join(&name)
            ]
        );
    }

    #[test]
    fn claiming_creates_a_private_directory_and_finds_it_again() {
        let parent = scratch("claim").join("parent");
        let first = claim(&parent, "co-123", &nobody(), |_| true).expect("claimed");
        assert_eq!(first, parent.join("co-123"));
        let mode = |dir: &Path| fs::metadata(dir).expect("exists").mode() & 0o777;
        assert_eq!(mode(&parent), 0o755, "the service user can pass through");
        assert_eq!(mode(&first), 0o700, "nobody else can look in");
        assert_eq!(
            claim(&parent, "co-123", &nobody(), |_| true),
            Ok(first),
            "the same checkout, the same directory"
        );
        let _ = fs::remove_dir_all(parent.parent().expect("scratch"));
    }

    #[test]
    fn claiming_refuses_a_parent_others_can_write_or_a_symlink() {
        let scratch = scratch("refuse");
        let open = scratch.join("open");
        fs::create_dir(&open).expect("mkdir");
        fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).expect("chmod");
        let refused = claim(&open, "co", &nobody(), |_| true).expect_err("refused");
        assert!(refused.contains("writable by others"), "{refused}");

        let target = scratch.join("target");
        fs::create_dir(&target).expect("mkdir");
        let link = scratch.join("link");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        let refused = claim(&link, "co", &nobody(), |_| true).expect_err("refused");
        assert!(refused.contains("not a directory"), "{refused}");
        assert!(!target.join("co").exists(), "nothing made through the link");

        let shut = scratch.join("shut");
        let refused = claim(&shut, "co", &nobody(), |_| false).expect_err("refused");
        assert!(refused.contains("cannot enter"), "{refused}");
        let _ = fs::remove_dir_all(&scratch);
    }

    #[test]
    fn the_notice_names_both_places_in_one_line() {
        let dir = DataDir {
            path: PathBuf::from("/var/lib/ontab/ontab-0123456789ab"),
            unreachable_default: Some(PathBuf::from("/root/ontab/.ontab")),
        };
        let notice = dir.notice().expect("relocated");
        assert!(!notice.contains('\n'), "{notice}");
        assert!(
            notice.contains("cannot reach /root/ontab/.ontab"),
            "{notice}"
        );
        assert!(
            notice.contains("keeps its data in /var/lib/ontab/ontab-0123456789ab"),
            "{notice}"
        );
        assert!(notice.contains("--data-dir"), "{notice}");
    }
}
