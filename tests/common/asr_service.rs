//! The local OpenAI-compatible transcription service (tools/asr-service:
//! faster-whisper over the tiny.en weights, offline), run as a real process.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct AsrService {
    pub port: u16,
    child: Child,
}

fn python() -> PathBuf {
    let venv =
        std::env::var("HUDDLE_ASR_VENV").unwrap_or_else(|_| "/opt/huddle-asr-venv".to_string());
    let python = PathBuf::from(venv).join("bin/python");
    assert!(
        python.exists(),
        "{} missing: run .ci/setup (tools/asr-service/setup.sh) first",
        python.display()
    );
    python
}

impl AsrService {
    /// Starts the service on `port` (0 = any) and waits until it answers (the model is loaded first).
    // The child is owned by the returned value, whose Drop kills and waits for it.
    #[allow(clippy::zombie_processes)]
    pub fn start(port: u16) -> AsrService {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let port_file = super::temp::temp_path("huddle-asr").with_extension("port");
        let child = Command::new(python())
            .arg(root.join("tools/asr-service/serve.py"))
            .args(["--port", &port.to_string(), "--port-file"])
            .arg(&port_file)
            .arg("--quiet")
            .env("HF_HUB_OFFLINE", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the ASR service");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(port) = std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|p| p.trim().parse::<u16>().ok())
            {
                let _ = std::fs::remove_file(&port_file);
                return AsrService { port, child };
            }
            assert!(
                Instant::now() < deadline,
                "ASR service did not come up in 60 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    pub fn kill(mut self) -> u16 {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.port
    }
}

impl Drop for AsrService {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Word error rate of `hypothesis` against `reference`, after lowercasing and
/// dropping punctuation: (substitutions + deletions + insertions) / reference words.
pub fn word_error_rate(reference: &str, hypothesis: &str) -> f64 {
    let words = |s: &str| -> Vec<String> {
        s.to_lowercase()
            .split(|c: char| c.is_whitespace())
            .map(|w| {
                w.chars()
                    .filter(|c| c.is_alphanumeric() || *c == '\'')
                    .collect::<String>()
            })
            .filter(|w| !w.is_empty())
            .collect()
    };
    let (r, h) = (words(reference), words(hypothesis));
    let mut row: Vec<usize> = (0..=h.len()).collect();
    for (i, rw) in r.iter().enumerate() {
        let mut previous_diagonal = row[0];
        row[0] = i + 1;
        for (j, hw) in h.iter().enumerate() {
            let substitution = previous_diagonal + usize::from(rw != hw);
            previous_diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[h.len()] as f64 / r.len().max(1) as f64
}

/// The embedded engine's model, fetched by .ci/setup.
pub fn whisper_model() -> PathBuf {
    let model = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/ggml-tiny.en-q8_0.bin");
    assert!(
        model.exists(),
        "{} missing: run .ci/setup (tools/fetch_models.sh)",
        model.display()
    );
    model
}

/// An `[asr.whisper]` table for the embedded engine on [`whisper_model`]:
/// English, two threads.
pub fn whisper_config() -> String {
    format!(
        "[asr.whisper]\ntype = \"whisper\"\nmodel = \"{}\"\nlanguage = \"en\"\nthreads = 2\n",
        whisper_model().display()
    )
}

#[cfg(test)]
mod tests {
    use super::word_error_rate;

    #[test]
    fn wer_counts_edits_per_reference_word() {
        assert_eq!(
            word_error_rate("The quick brown fox.", "the quick brown fox"),
            0.0
        );
        assert_eq!(word_error_rate("a b c d", "a x c d"), 0.25);
        assert_eq!(word_error_rate("a b c d", "a c d"), 0.25);
        assert_eq!(word_error_rate("a b c d", "a b c d e"), 0.25);
        assert_eq!(word_error_rate("a b", ""), 1.0);
    }
}
