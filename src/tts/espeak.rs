//! Local speech from the `espeak-ng` program (`[tts.<name>] type = "espeak"`): one child process per sentence,
//! WAV read from its stdout, killed when the deadline passes.
//!
//! The text goes to espeak-ng as a single argument after `--`, never through a shell, so nothing in an LLM answer
//! can be read as an option or a command. Its output (22050 Hz) is resampled to the protocol's 16 kHz.

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::engine::{Tts, TtsError, excerpt};
use super::{resample, wav};
use crate::config::EspeakTts;

/// The program looked up on `PATH`.
pub const PROGRAM: &str = "espeak-ng";

/// How often the child is checked while it runs: short against a sentence's ~100 ms of synthesis.
const POLL: Duration = Duration::from_millis(5);

/// Largest WAV read from the child (~20 min at 22050 Hz); a sentence is seconds. Past it the pipe is closed and
/// espeak-ng fails on its next write.
const MAX_AUDIO_BYTES: u64 = 64 << 20;

/// Characters of espeak-ng's stderr kept in an error.
const EXCERPT_CHARS: usize = 200;

/// The first executable file called `program` in the directories of `PATH`.
pub fn find_on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
}

/// One configured espeak-ng voice. Holds no call state: concurrent sentences run separate children.
pub struct EspeakEngine {
    alias: String,
    settings: EspeakTts,
    program: PathBuf,
}

impl EspeakEngine {
    /// An engine running `program` (an `espeak-ng` binary).
    pub fn new(alias: impl Into<String>, settings: EspeakTts, program: PathBuf) -> Self {
        EspeakEngine {
            alias: alias.into(),
            settings,
            program,
        }
    }

    /// An engine running the `espeak-ng` found on `PATH`, or `None` when there is none.
    pub fn from_path(alias: impl Into<String>, settings: EspeakTts) -> Option<Self> {
        find_on_path(PROGRAM).map(|program| Self::new(alias, settings, program))
    }

    pub fn settings(&self) -> &EspeakTts {
        &self.settings
    }

    /// The arguments for speaking `text`; control characters (a NUL would make the spawn fail) become spaces.
    pub fn args(&self, text: &str) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec!["-v".into(), self.settings.voice.clone().into()];
        if let Some(rate) = self.settings.rate {
            args.push("-s".into());
            args.push(rate.to_string().into());
        }
        let text: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        args.extend(["--stdout".into(), "--".into(), text.into()]);
        args
    }

    fn spawn(&self, text: &str) -> Result<Child, TtsError> {
        Command::new(&self.program)
            .args(self.args(text))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => {
                    TtsError::Unavailable
                }
                _ => TtsError::Failed(format!("starting {}: {e}", self.program.display())),
            })
    }
}

/// Reads a pipe to its end on a helper thread, so the child never blocks on a full pipe while we poll it.
fn drain(pipe: Option<impl Read + Send + 'static>, limit: u64) -> JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(pipe) = pipe {
            // A read error ends the output early; the exit status or the WAV parse reports it.
            let _ = pipe.take(limit).read_to_end(&mut bytes);
        }
        bytes
    })
}

/// Kills and reaps the child; both can only fail when it already exited, which is what we want anyway.
fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

impl Tts for EspeakEngine {
    fn name(&self) -> &str {
        &self.alias
    }

    fn synthesize(&self, text: &str, deadline: Instant) -> Result<Vec<i16>, TtsError> {
        if text.trim().is_empty() {
            return Ok(Vec::new());
        }
        if Instant::now() >= deadline {
            return Err(TtsError::Timeout);
        }
        let mut child = self.spawn(text)?;
        let stdout = drain(child.stdout.take(), MAX_AUDIO_BYTES);
        let stderr = drain(child.stderr.take(), 64 << 10);
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) => {
                    let now = Instant::now();
                    if now >= deadline {
                        stop(&mut child);
                        return Err(TtsError::Timeout);
                    }
                    thread::sleep(POLL.min(deadline - now));
                }
                Err(e) => {
                    stop(&mut child);
                    return Err(TtsError::Failed(format!("waiting for {PROGRAM}: {e}")));
                }
            }
        };
        // The child has exited, so both pipes are at their end and the joins return at once.
        let audio = stdout
            .join()
            .map_err(|_| TtsError::Failed(format!("reading {PROGRAM}'s output panicked")))?;
        let errors = stderr.join().unwrap_or_default();
        if !status.success() {
            let said = String::from_utf8_lossy(&errors);
            return Err(TtsError::Failed(format!(
                "{PROGRAM} exited with {status}: {}",
                excerpt(said.trim(), EXCERPT_CHARS)
            )));
        }
        let decoded = wav::decode(&audio)?;
        Ok(resample::to_16k(&decoded.samples, decoded.sample_rate))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(rate: Option<u32>) -> EspeakTts {
        EspeakTts {
            voice: "en-us".to_string(),
            rate,
        }
    }

    #[test]
    fn text_is_one_argument_after_the_options() {
        let engine = EspeakEngine::new("e", settings(Some(180)), PathBuf::from("/x/espeak-ng"));
        let args = engine.args("--help; rm -rf /\n`x`\0");
        let args: Vec<&str> = args.iter().map(|a| a.to_str().unwrap()).collect();
        assert_eq!(
            args,
            [
                "-v",
                "en-us",
                "-s",
                "180",
                "--stdout",
                "--",
                "--help; rm -rf / `x` "
            ]
        );
        let engine = EspeakEngine::new("e", settings(None), PathBuf::from("/x/espeak-ng"));
        assert_eq!(engine.args("hi").len(), 5);
    }

    #[test]
    fn a_missing_program_is_unavailable() {
        let engine =
            EspeakEngine::new("e", settings(None), PathBuf::from("/nonexistent/espeak-ng"));
        let deadline = Instant::now() + Duration::from_secs(5);
        assert_eq!(
            engine.synthesize("hello", deadline),
            Err(TtsError::Unavailable)
        );
        // Nothing to say needs no program.
        assert_eq!(engine.synthesize("  ", deadline), Ok(Vec::new()));
    }

    #[test]
    fn path_lookup_finds_only_executables() {
        assert!(find_on_path("sh").is_some());
        assert!(find_on_path("no-such-program-huddle").is_none());
    }
}
