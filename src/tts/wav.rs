//! Reading the WAV an engine answers with into mono s16 PCM at its own rate (resampling is [`super::resample`]'s).
//!
//! Engines that stream their WAV cannot go back to fill in sizes: espeak-ng writing to a pipe puts 0x7ffff000 in
//! the data chunk's length, OpenAI-compatible services 0xffffffff. hound trusts those lengths (and refuses one that
//! is not a whole number of frames), so the data chunk's length is clamped to the bytes actually present before
//! hound parses the file. Integer PCM of 8–32 bits and 32-bit float are accepted; channels are averaged.

use std::io::Cursor;

use hound::{SampleFormat, WavReader};

use super::engine::TtsError;

/// Decoded audio: mono samples and their rate.
#[derive(Clone, Debug, PartialEq)]
pub struct Decoded {
    pub sample_rate: u32,
    pub samples: Vec<i16>,
}

/// Parses `bytes` as a RIFF/WAVE file; errors say what was wrong with it.
pub fn decode(bytes: &[u8]) -> Result<Decoded, TtsError> {
    let fixed = clamp_data_length(bytes)?;
    let reader = WavReader::new(Cursor::new(fixed))
        .map_err(|e| TtsError::BadAudio(format!("not a WAV file: {e}")))?;
    let spec = reader.spec();
    if spec.channels == 0 || spec.sample_rate == 0 {
        return Err(TtsError::BadAudio(format!(
            "WAV header says {} channels at {} Hz",
            spec.channels, spec.sample_rate
        )));
    }
    let interleaved: Vec<f32> = match (spec.sample_format, spec.bits_per_sample) {
        (SampleFormat::Float, 32) => collect(reader.into_samples::<f32>())?,
        (SampleFormat::Int, bits @ 1..=32) => {
            let scale = 1.0 / (1u64 << (bits - 1)) as f32;
            reader
                .into_samples::<i32>()
                .map(|s| s.map(|v| v as f32 * scale))
                .collect::<Result<_, _>>()
                .map_err(|e| TtsError::BadAudio(format!("bad sample data: {e}")))?
        }
        (format, bits) => {
            return Err(TtsError::BadAudio(format!(
                "unsupported WAV sample format {format:?} with {bits} bits"
            )));
        }
    };
    let channels = usize::from(spec.channels);
    let samples = interleaved
        .chunks_exact(channels)
        .map(|frame| {
            let mean = frame.iter().sum::<f32>() / channels as f32;
            (mean * 32768.0).round().clamp(-32768.0, 32767.0) as i16
        })
        .collect();
    Ok(Decoded {
        sample_rate: spec.sample_rate,
        samples,
    })
}

fn collect(samples: hound::WavIntoSamples<Cursor<Vec<u8>>, f32>) -> Result<Vec<f32>, TtsError> {
    samples
        .map(|s| s.map(|v| if v.is_finite() { v } else { 0.0 }))
        .collect::<Result<_, _>>()
        .map_err(|e| TtsError::BadAudio(format!("bad sample data: {e}")))
}

fn le_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn le_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// A copy of `bytes` whose data chunk claims no more than the whole frames present.
fn clamp_data_length(bytes: &[u8]) -> Result<Vec<u8>, TtsError> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(TtsError::BadAudio(format!(
            "not a RIFF/WAVE file ({} bytes{})",
            bytes.len(),
            if bytes.is_empty() {
                ""
            } else {
                ", wrong magic"
            }
        )));
    }
    let mut out = bytes.to_vec();
    let mut at = 12;
    let mut block_align = 1usize;
    while let (Some(len), Some(id)) = (le_u32(bytes, at + 4), bytes.get(at..at + 4)) {
        let body = at + 8;
        if id == b"fmt " {
            block_align = usize::from(le_u16(bytes, body + 12).unwrap_or(1).max(1));
        } else if id == b"data" {
            let present = bytes.len() - body;
            let claimed = len as usize;
            if claimed > present {
                let whole = (present / block_align * block_align) as u32;
                out[at + 4..at + 8].copy_from_slice(&whole.to_le_bytes());
            }
            return Ok(out);
        }
        // Chunks are padded to an even length.
        at = body
            .saturating_add(len as usize)
            .saturating_add(len as usize & 1);
    }
    Err(TtsError::BadAudio("WAV file has no data chunk".to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav(
        spec: hound::WavSpec,
        write: impl FnOnce(&mut hound::WavWriter<Cursor<&mut Vec<u8>>>),
    ) -> Vec<u8> {
        let mut bytes = Vec::new();
        {
            let mut w = hound::WavWriter::new(Cursor::new(&mut bytes), spec).unwrap();
            write(&mut w);
            w.finalize().unwrap();
        }
        bytes
    }

    fn spec(channels: u16, rate: u32, bits: u16, format: SampleFormat) -> hound::WavSpec {
        hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: bits,
            sample_format: format,
        }
    }

    #[test]
    fn s16_mono_is_read_exactly() {
        let pcm: Vec<i16> = (0..500).map(|i| (i * 37 - 9000) as i16).collect();
        let bytes = wav(spec(1, 22_050, 16, SampleFormat::Int), |w| {
            pcm.iter().for_each(|&s| w.write_sample(s).unwrap())
        });
        let d = decode(&bytes).unwrap();
        assert_eq!(d.sample_rate, 22_050);
        assert_eq!(d.samples, pcm);
    }

    #[test]
    fn stereo_is_averaged_and_float_is_scaled() {
        let bytes = wav(spec(2, 24_000, 16, SampleFormat::Int), |w| {
            for _ in 0..10 {
                w.write_sample(1000i16).unwrap();
                w.write_sample(3000i16).unwrap();
            }
        });
        assert_eq!(decode(&bytes).unwrap().samples, vec![2000; 10]);
        let bytes = wav(spec(1, 48_000, 32, SampleFormat::Float), |w| {
            w.write_sample(0.5f32).unwrap();
            w.write_sample(-1.0f32).unwrap();
            w.write_sample(2.0f32).unwrap();
        });
        assert_eq!(
            decode(&bytes).unwrap().samples,
            vec![16_384, -32_768, 32_767]
        );
        let bytes = wav(spec(1, 8_000, 24, SampleFormat::Int), |w| {
            w.write_sample(1 << 22).unwrap();
        });
        assert_eq!(decode(&bytes).unwrap().samples, vec![16_384]);
    }

    #[test]
    fn streamed_headers_with_placeholder_lengths_are_read_to_the_end() {
        let pcm: Vec<i16> = (0..301).map(|i| i as i16).collect();
        let mut bytes = wav(spec(1, 22_050, 16, SampleFormat::Int), |w| {
            pcm.iter().for_each(|&s| w.write_sample(s).unwrap())
        });
        for placeholder in [0x7fff_f000u32, 0xffff_ffff] {
            bytes[4..8].copy_from_slice(&placeholder.to_le_bytes());
            bytes[40..44].copy_from_slice(&placeholder.to_le_bytes());
            assert_eq!(decode(&bytes).unwrap().samples, pcm);
        }
        // A torn last sample is dropped, not an error.
        bytes.push(0x12);
        assert_eq!(decode(&bytes).unwrap().samples, pcm);
    }

    #[test]
    fn garbage_is_bad_audio() {
        for bad in [
            &b""[..],
            b"RIFF",
            b"{\"error\":\"nope\"}",
            b"RIFF\x04\0\0\0WAVE",
            b"RIFF\x10\0\0\0WAVEfmt \x02\0\0\0ab",
        ] {
            assert!(matches!(decode(bad), Err(TtsError::BadAudio(_))), "{bad:?}");
        }
    }
}
