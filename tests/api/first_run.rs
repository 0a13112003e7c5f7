//! The README's first command on a fresh machine: `ontab serve` with no
//! DATABASE_URL and no --data-dir. As root, in a checkout inside a 0700
//! directory (root's home) that the `postgres` user running the private
//! PostgreSQL cannot enter, it starts anyway, says in one line where the data
//! went, and finds it there again on the next run. As any other user it
//! keeps the data in `./.ontab`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use ontab::embedded_pg::data_dir::relocation_candidates;
use ontab::embedded_pg::{find_bindir, service_user_can_reach};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

/// A first run's startup includes initdb and every migration.
const STARTUP: Duration = Duration::from_secs(120);

fn running_as_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| output.stdout.trim_ascii() == b"0")
}

/// A fake home with a checkout in it; on drop (a failed assertion too) it
/// stops any private PostgreSQL the runs left behind and removes every
/// directory they may have made.
struct Scratch {
    home: PathBuf,
    checkout: PathBuf,
}

impl Scratch {
    fn new(home_mode: u32) -> Self {
        let home =
            std::env::temp_dir().join(format!("ontab-first-run-{}", uuid::Uuid::new_v4().simple()));
        let checkout = home.join("ontab");
        std::fs::create_dir_all(&checkout).expect("temp dir is writable");
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(home_mode)).expect("chmod");
        let checkout = checkout.canonicalize().expect("canonical checkout");
        Self { home, checkout }
    }

    /// Every place a run may have kept its data.
    fn data_dirs(&self) -> Vec<PathBuf> {
        let mut dirs = relocation_candidates(&self.checkout);
        dirs.push(self.checkout.join(".ontab"));
        dirs
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for dir in self.data_dirs() {
            stop_cluster(&dir.join("data"));
            if dir.starts_with(&self.home) {
                continue;
            }
            let _ = std::fs::remove_dir_all(&dir);
            // /var/lib/ontab itself, only if no other checkout uses it.
            if let Some(parent) = dir.parent() {
                let _ = std::fs::remove_dir(parent);
            }
        }
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

fn stop_cluster(data: &Path) {
    if !data.join("postmaster.pid").exists() {
        return;
    }
    let Ok(bindir) = find_bindir() else { return };
    let mut command = if running_as_root() {
        let mut command = std::process::Command::new("runuser");
        command
            .args(["-u", "postgres", "--"])
            .arg(bindir.join("pg_ctl"));
        command
    } else {
        std::process::Command::new(bindir.join("pg_ctl"))
    };
    let _ = command
        .args(["stop", "-m", "immediate", "-w", "-D"])
        .arg(data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// A running `ontab serve`, started the README's way.
struct Serve {
    child: Child,
    base: String,
    admin_token: String,
    stderr: tokio::task::JoinHandle<String>,
}

impl Serve {
    async fn start(checkout: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ontab"))
            .arg("serve")
            .current_dir(checkout)
            .env_remove("DATABASE_URL")
            .env_remove("ONTAB_DATA_DIR")
            .env_remove("ONTAB_ADMIN_TOKEN")
            .env_remove("ONTAB_LOG_FORMAT")
            .env("ONTAB_LISTEN", "127.0.0.1:0")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("ontab serve starts");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let stderr = tokio::spawn(async move {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text).await;
            text
        });
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let welcome = tokio::time::timeout(STARTUP, async {
            let (mut base, mut token) = (None, None);
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(address) = line.strip_prefix("ontab listening on ") {
                    base = Some(address.to_owned());
                }
                if let Some(rest) = line.split("this run's admin token is ").nth(1) {
                    token = Some(rest.trim().to_owned());
                }
                if base.is_some() && token.is_some() {
                    break;
                }
            }
            base.zip(token)
        })
        .await;
        let Ok(Some((base, admin_token))) = welcome else {
            let _ = child.start_kill();
            let _ = child.wait().await;
            let stderr = stderr.await.unwrap_or_default();
            panic!("ontab serve printed no address and admin token; stderr:\n{stderr}");
        };
        // Nothing else is expected on stdout; drain it so the server never
        // blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self {
            child,
            base,
            admin_token,
            stderr,
        }
    }

    /// SIGTERM, as a service manager stops it; answers its stderr.
    async fn stop(mut self) -> String {
        let pid = self.child.id().expect("still running").to_string();
        let signalled = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .expect("kill runs");
        assert!(signalled.success());
        let exit = tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .expect("ontab stops after SIGTERM")
            .expect("exit status");
        let stderr = self.stderr.await.unwrap_or_default();
        assert!(exit.success(), "exit {exit:?}; stderr:\n{stderr}");
        stderr
    }
}

/// The one line a relocated run prints (prefixed `ontab: `), and the
/// directory it names.
fn notice(stderr: &str) -> Option<(String, PathBuf)> {
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|line| line.starts_with("ontab: "))
        .collect();
    let [line] = lines.as_slice() else {
        assert!(lines.is_empty(), "more than one notice:\n{stderr}");
        return None;
    };
    let dir = line
        .split("keeps its data in ")
        .nth(1)
        .and_then(|rest| rest.split(" (").next())
        .unwrap_or_else(|| panic!("the notice names no directory: {line}"));
    Some((line.to_string(), PathBuf::from(dir)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_run_starts_where_the_service_user_can_reach_and_a_second_run_finds_the_data_again()
{
    let as_root = running_as_root();
    // As root, a home like /root: closed to the postgres user.
    let scratch = Scratch::new(if as_root { 0o700 } else { 0o755 });
    if as_root {
        assert!(
            !service_user_can_reach(&scratch.checkout),
            "the scratch home should be closed to postgres"
        );
    }
    let http = reqwest::Client::new();

    let first = Serve::start(&scratch.checkout).await;
    let created = http
        .post(format!("{}/v1/businesses", first.base))
        .bearer_auth(&first.admin_token)
        .json(&json!({ "name": "First run" }))
        .send()
        .await
        .expect("create business");
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.expect("json");
    let key = created["api_key"]["key"]
        .as_str()
        .expect("api key")
        .to_owned();
    let customer = http
        .post(format!("{}/v1/customers", first.base))
        .bearer_auth(&key)
        .json(&json!({ "name": "Ann", "credit_limit": 100 }))
        .send()
        .await
        .expect("create customer");
    assert_eq!(customer.status(), 201);
    let customer: Value = customer.json().await.expect("json");
    let first_stderr = first.stop().await;

    let second = Serve::start(&scratch.checkout).await;
    let found = http
        .get(format!(
            "{}/v1/customers/{}",
            second.base,
            customer["id"].as_str().expect("id")
        ))
        .bearer_auth(&key)
        .send()
        .await
        .expect("get customer");
    assert_eq!(found.status(), 200, "the first run's data is gone");
    let found: Value = found.json().await.expect("json");
    assert_eq!(found["name"], "Ann");
    let second_stderr = second.stop().await;

    let first_notice = notice(&first_stderr);
    assert_eq!(
        first_notice,
        notice(&second_stderr),
        "both runs use, and name, the same directory"
    );
    if as_root {
        let (line, dir) = first_notice
            .unwrap_or_else(|| panic!("no notice of where the data went:\n{first_stderr}"));
        assert!(line.contains("cannot reach"), "{line}");
        assert!(
            relocation_candidates(&scratch.checkout).contains(&dir),
            "{} is not this checkout's directory",
            dir.display()
        );
        assert!(dir.join("data").join("PG_VERSION").is_file(), "{line}");
        assert!(service_user_can_reach(&dir), "{}", dir.display());
        assert!(!scratch.checkout.join(".ontab").exists());
    } else {
        assert_eq!(first_notice, None, "the default needs no notice");
        assert!(scratch.checkout.join(".ontab/data/PG_VERSION").is_file());
    }
}
