//! Reading the simulator's input: a 16 kHz, mono, 16-bit PCM WAV, the one
//! format the badge's microphone path produces. Anything else is refused with
//! a message naming the field, rather than resampled, so a test never streams
//! audio at the wrong speed without noticing.

use std::path::Path;

use crate::audio::opus::SAMPLE_RATE;

/// Reads every sample of a 16 kHz mono 16-bit integer WAV.
pub fn read_pcm16(path: &Path) -> Result<Vec<i16>, String> {
    let reader = hound::WavReader::open(path)
        .map_err(|e| format!("{}: not a readable WAV file: {e}", path.display()))?;
    let spec = reader.spec();
    check_spec(&spec).map_err(|e| format!("{}: {e}", path.display()))?;
    let samples = reader
        .into_samples::<i16>()
        .collect::<Result<Vec<i16>, _>>()
        .map_err(|e| format!("{}: bad sample data: {e}", path.display()))?;
    if samples.is_empty() {
        return Err(format!("{}: the file holds no audio", path.display()));
    }
    Ok(samples)
}

/// The format rule, separate so it is tested without files.
fn check_spec(spec: &hound::WavSpec) -> Result<(), String> {
    if spec.sample_rate != SAMPLE_RATE {
        return Err(format!(
            "sample rate is {} Hz; the device simulator needs {SAMPLE_RATE} Hz \
             (convert with: sox in.wav -r 16000 -c 1 -b 16 out.wav)",
            spec.sample_rate
        ));
    }
    if spec.channels != 1 {
        return Err(format!(
            "channels is {}; the device simulator needs mono (1 channel)",
            spec.channels
        ));
    }
    if spec.sample_format != hound::SampleFormat::Int || spec.bits_per_sample != 16 {
        let kind = match spec.sample_format {
            hound::SampleFormat::Int => "integer",
            hound::SampleFormat::Float => "float",
        };
        return Err(format!(
            "bits per sample is {} ({kind}); the device simulator needs 16-bit integer PCM",
            spec.bits_per_sample
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn temp_path(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!(
            "huddle-wav-{}-{}-{name}.wav",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ))
    }

    fn write_wav(spec: hound::WavSpec, samples: usize) -> PathBuf {
        let path = temp_path("t");
        let mut writer = hound::WavWriter::create(&path, spec).unwrap();
        for i in 0..samples {
            match (spec.sample_format, spec.bits_per_sample) {
                (hound::SampleFormat::Float, _) => writer.write_sample(i as f32 / 1e4).unwrap(),
                (_, 8) => writer.write_sample((i % 100) as i8).unwrap(),
                _ => writer.write_sample((i as i16).wrapping_mul(7)).unwrap(),
            }
        }
        writer.finalize().unwrap();
        path
    }

    fn spec(sample_rate: u32, channels: u16, bits: u16) -> hound::WavSpec {
        hound::WavSpec {
            channels,
            sample_rate,
            bits_per_sample: bits,
            sample_format: hound::SampleFormat::Int,
        }
    }

    #[test]
    fn reads_a_16k_mono_16_bit_file_exactly() {
        let path = write_wav(spec(16_000, 1, 16), 1234);
        let samples = read_pcm16(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert_eq!(samples.len(), 1234);
        assert_eq!(samples[3], 21);
    }

    #[test]
    fn refuses_other_formats_naming_the_field() {
        let cases = [
            (spec(8_000, 1, 16), "sample rate is 8000 Hz"),
            (spec(16_000, 2, 16), "channels is 2"),
            (spec(16_000, 1, 8), "bits per sample is 8"),
            (
                hound::WavSpec {
                    sample_format: hound::SampleFormat::Float,
                    ..spec(16_000, 1, 32)
                },
                "bits per sample is 32 (float)",
            ),
        ];
        for (spec, expected) in cases {
            let path = write_wav(spec, 100);
            let error = read_pcm16(&path).unwrap_err();
            let _ = std::fs::remove_file(&path);
            assert!(error.contains(expected), "{error:?} lacks {expected:?}");
        }
    }

    #[test]
    fn refuses_empty_missing_and_non_wav_files() {
        let empty = write_wav(spec(16_000, 1, 16), 0);
        assert!(read_pcm16(&empty).unwrap_err().contains("no audio"));
        let _ = std::fs::remove_file(&empty);

        let missing = temp_path("missing");
        assert!(
            read_pcm16(&missing)
                .unwrap_err()
                .contains("not a readable WAV")
        );

        let text = temp_path("text");
        std::fs::write(&text, b"RIFF? no, just text").unwrap();
        assert!(
            read_pcm16(&text)
                .unwrap_err()
                .contains("not a readable WAV")
        );
        let _ = std::fs::remove_file(&text);
    }
}
