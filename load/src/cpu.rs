//! CPU time of the processes under test over the measured window, from
//! Linux's `/proc` (utime + stime, in clock ticks), so a benchmark can say
//! what one accepted request costs the server and the database, not only
//! how many there were.
//!
//! A "tree" is a PostgreSQL postmaster: its own time, the time of its
//! children that are alive (backends, WAL writer, checkpointer, ...) and the
//! time of those that exited and were reaped (its cutime + cstime), so a
//! backend that ends inside the window is still counted.

use std::collections::BTreeMap;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What to measure, named for the report.
#[derive(Debug, Clone)]
pub enum Probe {
    Process { name: String, pid: u32 },
    Tree { name: String, pid: u32 },
}

impl Probe {
    /// `name=pid`, as given on the command line.
    pub fn parse(text: &str, tree: bool) -> Result<Probe, String> {
        let (name, pid) = text
            .split_once('=')
            .ok_or_else(|| format!("`{text}`: expected NAME=PID"))?;
        let pid: u32 = pid
            .parse()
            .map_err(|_| format!("`{text}`: `{pid}` is not a process id"))?;
        let name = name.to_owned();
        Ok(if tree {
            Probe::Tree { name, pid }
        } else {
            Probe::Process { name, pid }
        })
    }

    fn name(&self) -> &str {
        match self {
            Probe::Process { name, .. } | Probe::Tree { name, .. } => name,
        }
    }
}

/// utime, stime, cutime, cstime and the parent of one process, in ticks.
struct Stat {
    ppid: u32,
    own: u64,
    /// Of `own`, the time in the kernel (stime): system calls, socket and
    /// futex work that an instruction profile of the process does not see.
    kernel: u64,
    reaped: u64,
}

fn stat(path: &str) -> Option<Stat> {
    let text = std::fs::read_to_string(path).ok()?;
    // The command name (field 2) may hold spaces and parentheses: the
    // fields that follow start after its last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    Some(Stat {
        ppid: u32::try_from(num(1)?).ok()?,
        own: num(11)? + num(12)?,
        kernel: num(12)?,
        reaped: num(13)? + num(14)?,
    })
}

/// Ticks so far of every probe, plus this process's own as `client`.
fn snapshot(probes: &[Probe]) -> BTreeMap<String, u64> {
    let mut ticks = BTreeMap::new();
    let mut children: Option<Vec<Stat>> = None;
    for probe in probes {
        let total = match probe {
            Probe::Process { pid, .. } => {
                let stat = stat(&format!("/proc/{pid}/stat"));
                // `<name>.kernel`: the part of `<name>` spent in the kernel.
                ticks.insert(
                    format!("{}.kernel", probe.name()),
                    stat.as_ref().map_or(0, |s| s.kernel),
                );
                stat.map_or(0, |s| s.own)
            }
            Probe::Tree { pid, .. } => {
                let all = children.get_or_insert_with(every_process);
                let root = stat(&format!("/proc/{pid}/stat")).map_or(0, |s| s.own + s.reaped);
                root + all
                    .iter()
                    .filter(|s| s.ppid == *pid)
                    .map(|s| s.own)
                    .sum::<u64>()
            }
        };
        ticks.insert(probe.name().to_owned(), total);
    }
    ticks.insert(
        "client".to_owned(),
        stat("/proc/self/stat").map_or(0, |s| s.own),
    );
    ticks
}

fn every_process() -> Vec<Stat> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| stat(&format!("{}/stat", e.path().display())))
        .collect()
}

/// Milliseconds of CPU per probe (and `client`) between `warmup` and
/// `warmup + duration` from now, measured on a thread of its own so the
/// load's runtime does not delay the samples.
pub fn measure(
    probes: Vec<Probe>,
    warmup: Duration,
    duration: Duration,
    ticks_per_second: u64,
) -> JoinHandle<BTreeMap<String, f64>> {
    let start = Instant::now() + warmup;
    std::thread::spawn(move || {
        std::thread::sleep(start.saturating_duration_since(Instant::now()));
        let before = snapshot(&probes);
        std::thread::sleep((start + duration).saturating_duration_since(Instant::now()));
        let after = snapshot(&probes);
        after
            .into_iter()
            .map(|(name, ticks)| {
                let spent = ticks.saturating_sub(before.get(&name).copied().unwrap_or(0));
                let ms = spent as f64 * 1000.0 / ticks_per_second.max(1) as f64;
                (name, ms)
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_readable() {
        let me = stat("/proc/self/stat").expect("this test runs on Linux");
        assert!(me.ppid > 0);
    }

    #[test]
    fn probes_parse() {
        assert!(matches!(
            Probe::parse("server=42", false),
            Ok(Probe::Process { pid: 42, .. })
        ));
        assert!(matches!(
            Probe::parse("postgres=7", true),
            Ok(Probe::Tree { pid: 7, .. })
        ));
        assert!(Probe::parse("server", false).is_err());
        assert!(Probe::parse("server=x", false).is_err());
    }
}
