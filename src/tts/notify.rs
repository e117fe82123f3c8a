//! The "your turn" sound played before `tts stop` when `chat.enable_stop_tts_notify` is on (PROTOCOL.md §3.1).
//!
//! The file at `chat.stop_tts_notify_voice` (MP3, as the upstream server ships it, or WAV) is decoded, mixed to
//! mono, resampled to 16 kHz and encoded to the downlink's 60 ms Opus packets once per version of the file (its
//! modification time and length), then shared by every turn. At the default path, a missing file falls back to a
//! chime built into the binary (`assets/tts_notify.mp3`, made by `tools/make_notify_sound.py`), so a box that has
//! only the binary still plays one. A file that cannot be read or decoded is logged once per version and the turn
//! ends without a sound: a bad asset never costs an answer.
//!
//! Reading and decoding run on the assistant workers that finish the turn, never on a connection thread.

use std::collections::HashMap;
use std::io::{Cursor, ErrorKind, Read};
use std::path::Path;
use std::sync::{Arc, LazyLock};
use std::time::SystemTime;

use parking_lot::Mutex;
use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{CODEC_TYPE_NULL, DecoderOptions};
use symphonia::core::errors::Error as DecodeError;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use super::encode::SpeechEncoder;
use super::resample::to_16k;

/// `chat.stop_tts_notify_voice`'s default, where the built-in chime stands in for a missing file.
pub const DEFAULT_PATH: &str = "config/assets/tts_notify.mp3";

/// The built-in chime (280 ms, 22.05 kHz MP3).
const BUILT_IN: &[u8] = include_bytes!("../../assets/tts_notify.mp3");

/// A notify sound is a chime: files above this are refused before they are read.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// Sample rates accepted from a file's header (telephone to studio).
const MIN_RATE: u32 = 8_000;
const MAX_RATE: u32 = 192_000;

/// And sounds longer than this are refused: the badge would play them after every answer.
pub const MAX_SECONDS: u32 = 5;

/// Samples at or below this level (−60 dBFS) before the sound starts are dropped.
const SILENCE_LEVEL: u16 = 32;

/// The encoded sound: 60 ms Opus packets, 16 kHz mono, without binary framing.
pub type NotifyPackets = Arc<Vec<Vec<u8>>>;

/// Which version of a path's sound an entry holds.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Version {
    File {
        modified: Option<SystemTime>,
        len: u64,
    },
    BuiltIn,
    /// The path could not be read at all (missing, or not a file).
    Unreadable,
}

struct Entry {
    version: Version,
    /// `None` when this version failed; kept so the failure is logged once, not every turn.
    sound: Option<NotifyPackets>,
}

/// Every path asked for so far: a reload may point at another file, and the old one costs a few KiB.
static SOUNDS: LazyLock<Mutex<HashMap<String, Entry>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// The packets for the sound at `path`, or `None` when it cannot be played.
pub fn sound(path: &str) -> Option<NotifyPackets> {
    let version = version_of(path);
    if let Some(entry) = SOUNDS.lock().get(path)
        && entry.version == version
    {
        return entry.sound.clone();
    }
    // Two workers may decode the same new version at once; both get the same sound and one entry wins.
    let loaded = load(path, version);
    let sound = match loaded {
        Ok(packets) => {
            ::log::info!(
                "stop-TTS notify sound {path}{}: {} ms",
                if version == Version::BuiltIn {
                    " (built in)"
                } else {
                    ""
                },
                packets.len() * 60
            );
            Some(Arc::new(packets))
        }
        Err(e) => {
            ::log::warn!("stop-TTS notify sound {path}: {e}; turns end without it");
            None
        }
    };
    SOUNDS.lock().insert(
        path.to_string(),
        Entry {
            version,
            sound: sound.clone(),
        },
    );
    sound
}

fn version_of(path: &str) -> Version {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => Version::File {
            modified: meta.modified().ok(),
            len: meta.len(),
        },
        Ok(_) => Version::Unreadable,
        Err(e) if e.kind() == ErrorKind::NotFound && path == DEFAULT_PATH => Version::BuiltIn,
        Err(_) => Version::Unreadable,
    }
}

fn load(path: &str, version: Version) -> Result<Vec<Vec<u8>>, String> {
    let bytes = match version {
        Version::BuiltIn => BUILT_IN.to_vec(),
        Version::Unreadable => return Err("no such file".into()),
        Version::File { len, .. } if len > MAX_FILE_BYTES => {
            return Err(format!(
                "{len} bytes is over the {MAX_FILE_BYTES}-byte limit"
            ));
        }
        Version::File { .. } => read_at_most(path, MAX_FILE_BYTES)?,
    };
    let extension = Path::new(path).extension().and_then(|e| e.to_str());
    // The decoder is a large parser of untrusted files: a panic in it must cost this sound, not the worker.
    let pcm = std::panic::catch_unwind(|| decode_to_16k(bytes, extension))
        .map_err(|_| "the decoder failed on it (panic)".to_string())??;
    let mut encoder = SpeechEncoder::new().map_err(|e| e.to_string())?;
    encoder.encode(&pcm).map_err(|e| e.to_string())
}

/// The file's bytes, refused when it grew past `limit` since it was measured.
fn read_at_most(path: &str, limit: u64) -> Result<Vec<u8>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("opening it: {e}"))?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("reading it: {e}"))?;
    if bytes.len() as u64 > limit {
        return Err(format!("it is over the {limit}-byte limit"));
    }
    Ok(bytes)
}

/// An MP3 or WAV file's audio as 16 kHz mono PCM. `extension` is a hint; the content decides.
pub fn decode_to_16k(bytes: Vec<u8>, extension: Option<&str>) -> Result<Vec<i16>, String> {
    let source = MediaSourceStream::new(Box::new(Cursor::new(bytes)), Default::default());
    let mut hint = Hint::new();
    if let Some(extension) = extension {
        hint.with_extension(extension);
    }
    let probed = symphonia::default::get_probe()
        .format(
            &hint,
            source,
            // Not gapless: symphonia 0.5's gapless trimming can panic on a bad header; the onset trim below
            // removes the encoder's delay instead.
            &FormatOptions::default(),
            &MetadataOptions::default(),
        )
        .map_err(|e| format!("not an MP3 or WAV file ({e})"))?;
    let mut format = probed.format;
    let track = format
        .default_track()
        .filter(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or("it has no audio track")?;
    let track_id = track.id;
    let rate = track
        .codec_params
        .sample_rate
        .ok_or("its sample rate is unknown")?;
    // A header can claim any rate; the resampler's output length follows it.
    if !(MIN_RATE..=MAX_RATE).contains(&rate) {
        return Err(format!(
            "its sample rate {rate} Hz is outside {MIN_RATE}–{MAX_RATE} Hz"
        ));
    }
    let mut decoder = symphonia::default::get_codecs()
        .make(&track.codec_params, &DecoderOptions::default())
        .map_err(|e| format!("its codec is not supported ({e})"))?;
    let limit = rate as usize * MAX_SECONDS as usize;
    let mut mono: Vec<i16> = Vec::new();
    loop {
        let packet = match format.next_packet() {
            Ok(packet) => packet,
            // The end of the stream is reported as an EOF error.
            Err(DecodeError::IoError(e)) if e.kind() == ErrorKind::UnexpectedEof => break,
            Err(DecodeError::ResetRequired) => break,
            Err(e) => return Err(format!("reading its packets: {e}")),
        };
        if packet.track_id() != track_id {
            continue;
        }
        let decoded = match decoder.decode(&packet) {
            Ok(decoded) => decoded,
            // A damaged frame is skipped, as players do.
            Err(DecodeError::DecodeError(_)) => continue,
            Err(e) => return Err(format!("decoding it: {e}")),
        };
        let spec = *decoded.spec();
        let channels = spec.channels.count().max(1);
        let mut interleaved = SampleBuffer::<i16>::new(decoded.capacity() as u64, spec);
        interleaved.copy_interleaved_ref(decoded);
        mono.extend(interleaved.samples().chunks(channels).map(|frame| {
            let sum: i32 = frame.iter().map(|&s| i32::from(s)).sum();
            (sum / channels as i32) as i16
        }));
        if mono.len() > limit {
            return Err(format!("it is longer than {MAX_SECONDS} s"));
        }
    }
    // MP3 encoders put ~50 ms of delay before the sound: a notify sound should start at once.
    let onset = mono
        .iter()
        .position(|s| s.unsigned_abs() > SILENCE_LEVEL)
        .ok_or("it holds no audio")?;
    Ok(to_16k(&mono[onset..], rate))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pitch of `pcm` (16 kHz) between `from_s` and `to_s`, by zero crossings.
    fn pitch_hz(pcm: &[i16], from_s: f64, to_s: f64) -> f64 {
        let window = &pcm[(from_s * 16_000.0) as usize..(to_s * 16_000.0) as usize];
        let crossings = window
            .windows(2)
            .filter(|w| (w[0] < 0) != (w[1] < 0))
            .count();
        crossings as f64 / 2.0 / (to_s - from_s)
    }

    /// A 16-bit WAV file of `frames` (one sample per channel each).
    fn wav(channels: u16, sample_rate: u32, frames: &[&[i16]]) -> Vec<u8> {
        let mut bytes = Vec::new();
        let spec = hound::WavSpec {
            channels,
            sample_rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut writer = hound::WavWriter::new(Cursor::new(&mut bytes), spec).expect("wav");
        for frame in frames {
            for &sample in *frame {
                writer.write_sample(sample).expect("sample");
            }
        }
        writer.finalize().expect("finalize");
        bytes
    }

    /// The built-in chime: 280 ms of two notes at 660 and 990 Hz.
    #[test]
    fn the_built_in_chime_decodes_to_its_length_and_pitches_at_16k() {
        let pcm = decode_to_16k(BUILT_IN.to_vec(), Some("mp3")).expect("decodes");
        // The encoder's delay is trimmed; its padding (under one 1152-sample frame) is not.
        let ms = pcm.len() * 1000 / 16_000;
        assert!((270..=340).contains(&ms), "{ms} ms");
        let peak = pcm.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
        assert!(peak > 8_000, "peak {peak}");
        // Each note over its loud part, ± 5 %.
        let first = pitch_hz(&pcm, 0.02, 0.07);
        assert!((627.0..=693.0).contains(&first), "{first} Hz");
        let second = pitch_hz(&pcm, 0.12, 0.17);
        assert!((940.0..=1040.0).contains(&second), "{second} Hz");
    }

    #[test]
    fn a_wav_file_is_read_too_and_downmixed() {
        let bytes = wav(2, 8_000, &[&[1000i16, 3000][..]; 800]);
        let pcm = decode_to_16k(bytes, Some("wav")).expect("decodes");
        assert_eq!(pcm.len(), 1600, "100 ms at 16 kHz");
        // Left and right averaged; the middle is away from the resampler's edges.
        assert!((1900..=2100).contains(&pcm[800]), "{}", pcm[800]);
    }

    #[test]
    fn garbage_odd_rates_silence_and_over_long_sounds_are_refused_with_a_reason() {
        let err = decode_to_16k(b"definitely not audio".to_vec(), Some("mp3")).unwrap_err();
        assert!(err.contains("not an MP3 or WAV"), "{err}");
        let odd_rate = wav(1, 4_000, &[&[100i16][..]; 400]);
        let err = decode_to_16k(odd_rate, None).unwrap_err();
        assert!(err.contains("4000 Hz is outside"), "{err}");
        let silence = wav(1, 8_000, &[&[0i16][..]; 800]);
        let err = decode_to_16k(silence, None).unwrap_err();
        assert!(err.contains("no audio"), "{err}");
        let frames = vec![&[100i16][..]; 8_000 * (MAX_SECONDS as usize + 1)];
        let err = decode_to_16k(wav(1, 8_000, &frames), None).unwrap_err();
        assert!(err.contains("longer than 5 s"), "{err}");
    }

    #[test]
    fn a_missing_default_file_falls_back_to_the_built_in_chime() {
        // Tests run in the crate root, where config/assets/ does not exist.
        assert!(!Path::new(DEFAULT_PATH).exists());
        let packets = sound(DEFAULT_PATH).expect("built-in chime");
        assert!(
            (4..=6).contains(&packets.len()),
            "{} packets",
            packets.len()
        );
        assert!(sound("/nonexistent/notify.mp3").is_none());
    }
}
