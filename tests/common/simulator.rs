//! The device simulator (`huddle device`) run as a real process to
//! completion, and what it printed: one `[<ms> ms] {json}` line per received
//! message, then a `sent … received …` summary line.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::Server;

pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub wall: Duration,
}

/// Runs `huddle device` with `args` and waits for it to exit.
pub fn run(args: &[&str]) -> Run {
    run_while(args, |_| {})
}

/// Like [`run`], calling `during` with the simulator's pid while it runs.
pub fn run_while(args: &[&str], during: impl FnOnce(u32)) -> Run {
    let started = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_huddle"))
        .arg("device")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run huddle device");
    during(child.id());
    let output = child.wait_with_output().expect("wait for huddle device");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        wall: started.elapsed(),
    }
}

/// Streams `wav` to `server`'s device endpoint (`--url`, `--wav`), with more
/// `args` after those.
pub fn stream(server: &Server, wav: &Path, args: &[&str]) -> Run {
    let url = server.ws_url("/xiaozhi/v1/");
    let wav = wav.to_str().expect("utf-8 path");
    let mut all = vec!["--url", url.as_str(), "--wav", wav];
    all.extend_from_slice(args);
    run(&all)
}

impl Run {
    pub fn explain(&self) -> String {
        format!(
            "exit {:?}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }

    /// Asserts a zero exit, showing everything the simulator printed if not.
    pub fn assert_success(&self) {
        assert_eq!(self.code, Some(0), "simulator failed: {}", self.explain());
    }

    /// The summary line: (packets sent, messages received, elapsed ms).
    pub fn summary(&self) -> (usize, usize, u64) {
        let line = self
            .stdout
            .lines()
            .rfind(|l| l.starts_with("sent "))
            .unwrap_or_else(|| panic!("no summary line\n{}", self.explain()));
        let numbers: Vec<u64> = line
            .split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty())
            .filter_map(|s| s.parse().ok())
            .collect();
        match numbers[..] {
            [sent, received, ms, ..] => (sent as usize, received as usize, ms),
            _ => panic!("bad summary line {line:?}"),
        }
    }

    /// The JSON messages the device printed, prefix stripped.
    pub fn messages(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .filter_map(|l| l.strip_prefix('['))
            .filter_map(|l| l.split_once(" ms] "))
            .map(|(_, json)| serde_json::from_str(json).expect("printed message is JSON"))
            .collect()
    }

    /// The texts of the `stt` messages, in order.
    pub fn stt_texts(&self) -> Vec<String> {
        self.messages()
            .iter()
            .filter(|v| v["type"] == "stt")
            .map(|v| v["text"].as_str().unwrap_or_default().to_string())
            .collect()
    }
}
