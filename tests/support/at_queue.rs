//! The real `at` queue for tests: which jobs a test queued, when each runs (`atq`), their
//! scripts (`at -c`), and a guard that removes them (`atrm`) whatever happens.
//!
//! Queueing, listing and removing jobs needs `at` (package `at`) and root, not a running `atd`:
//! no job queued by a test is due before the test ends, and the guard removes it.
//!
//! Include it with `#[path = "support/at_queue.rs"] mod at_queue;`.
#![allow(dead_code)]

use std::process::{Command, Stdio};

/// `(job id, when it runs as a Unix time)` for every job in `atq`.
pub fn jobs() -> Vec<(String, i64)> {
    // atq prints local times: in UTC they need no time zone database.
    let out = Command::new("atq").env("TZ", "UTC0").output().expect("atq (package `at`)");
    assert!(out.status.success(), "atq: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            // "27\tFri Nov 27 11:54:00 2026 a root"
            let fields: Vec<&str> = line.split_whitespace().collect();
            let date = fields.get(1..6)?.join(" ");
            let at = chrono::NaiveDateTime::parse_from_str(&date, "%a %b %e %H:%M:%S %Y")
                .unwrap_or_else(|e| panic!("atq date {date:?}: {e}"));
            Some((fields[0].to_owned(), at.and_utc().timestamp()))
        })
        .collect()
}

/// The script of job `id` (`at -c`).
pub fn script(id: &str) -> String {
    let out = Command::new("at").args(["-c", id]).output().expect("at -c");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The jobs whose script mentions `needle`, with their times.
pub fn jobs_mentioning(needle: &str) -> Vec<(String, i64)> {
    jobs().into_iter().filter(|(id, _)| script(id).contains(needle)).collect()
}

/// Removes job `id`.
pub fn remove(id: &str) {
    let status = Command::new("atrm").arg(id).stderr(Stdio::null()).status().expect("atrm");
    assert!(status.success(), "atrm {id}");
}

/// Removes the jobs whose script mentions its string when dropped.
pub struct Cleanup(pub String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for (id, _) in jobs_mentioning(&self.0) {
            let _ = Command::new("atrm").arg(&id).status();
        }
    }
}
