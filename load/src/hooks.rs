//! Shell commands run as the measured window opens and closes, so that a
//! profiler attached to the server counts the window alone, not the
//! scenario's set-up or warm-up (bench/profile.sh zeroes callgrind's
//! counters at the start and dumps them at the end).

use std::process::Command;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;

/// The commands, each run with `sh -c`; either may be absent.
#[derive(Clone, Debug, Default)]
pub struct WindowHooks {
    pub at_start: Option<String>,
    pub at_end: Option<String>,
}

impl WindowHooks {
    pub fn is_empty(&self) -> bool {
        self.at_start.is_none() && self.at_end.is_none()
    }

    /// Runs each command at its time, counted from now, on a thread of its
    /// own (the clients' runtime goes on meanwhile). A command that fails
    /// fails the run: a profile of the wrong window would mislead.
    pub fn spawn(self, warmup: Duration, duration: Duration) -> JoinHandle<anyhow::Result<()>> {
        let start = Instant::now() + warmup;
        std::thread::spawn(move || {
            std::thread::sleep(start.saturating_duration_since(Instant::now()));
            if let Some(command) = &self.at_start {
                run(command)?;
            }
            std::thread::sleep((start + duration).saturating_duration_since(Instant::now()));
            if let Some(command) = &self.at_end {
                run(command)?;
            }
            Ok(())
        })
    }
}

fn run(command: &str) -> anyhow::Result<()> {
    let status = Command::new("sh")
        .args(["-c", command])
        .status()
        .with_context(|| format!("cannot run `{command}`"))?;
    anyhow::ensure!(status.success(), "`{command}` failed: {status}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_run_in_order_and_failures_are_reported() {
        let dir = std::env::temp_dir().join(format!("ontab-load-hooks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let log = dir.join("log");
        let hooks = WindowHooks {
            at_start: Some(format!("echo start >> {}", log.display())),
            at_end: Some(format!("echo end >> {}", log.display())),
        };
        hooks
            .spawn(Duration::ZERO, Duration::from_millis(10))
            .join()
            .expect("the hook thread")
            .expect("both commands succeed");
        let written = std::fs::read_to_string(&log).expect("the log");
        assert_eq!(written, "start\nend\n");

        let failing = WindowHooks {
            at_start: Some("exit 3".into()),
            at_end: None,
        };
        let error = failing
            .spawn(Duration::ZERO, Duration::ZERO)
            .join()
            .expect("the hook thread")
            .expect_err("a failing command fails the run");
        assert!(error.to_string().contains("exit 3"), "{error}");
        std::fs::remove_dir_all(&dir).expect("cleaned up");
    }
}
