//! Synthesized PCM to downlink Opus packets in the protocol's one format (PROTOCOL.md §2.4): 16 kHz, mono,
//! one packet per 60 ms.
//!
//! One encoder per spoken turn: Opus packets depend on the encoder's state, so a turn's sentences go through the
//! same instance in order, and a new turn starts from a fresh (or [`SpeechEncoder::reset`]) one.

use opus::{Application, Channels};

use super::engine::{SAMPLE_RATE, TtsError};

/// Samples in one 60 ms packet.
pub const FRAME_SAMPLES: usize = crate::audio::opus::FRAME_SAMPLES;

/// Scratch space for one packet: a 60 ms Opus packet is at most 3 × 1275 bytes plus its framing.
const MAX_PACKET_BYTES: usize = 4000;

/// Encodes speech for the badge's speaker.
pub struct SpeechEncoder {
    inner: opus::Encoder,
    /// Reused for every packet; only the bytes of each packet are copied out.
    out: Vec<u8>,
    /// The frame being encoded, so a short last frame is padded without allocating.
    frame: [i16; FRAME_SAMPLES],
}

impl SpeechEncoder {
    pub fn new() -> Result<Self, TtsError> {
        // VOIP favours intelligibility of speech, which is all this encoder ever carries.
        let inner = opus::Encoder::new(SAMPLE_RATE, Channels::Mono, Application::Voip)
            .map_err(|e| TtsError::Failed(format!("creating the Opus encoder: {e}")))?;
        Ok(SpeechEncoder {
            inner,
            out: vec![0; MAX_PACKET_BYTES],
            frame: [0; FRAME_SAMPLES],
        })
    }

    /// One packet per 960 samples of `pcm` (16 kHz mono); the last frame is padded with silence.
    pub fn encode(&mut self, pcm: &[i16]) -> Result<Vec<Vec<u8>>, TtsError> {
        let mut packets = Vec::with_capacity(pcm.len().div_ceil(FRAME_SAMPLES));
        for chunk in pcm.chunks(FRAME_SAMPLES) {
            self.frame[..chunk.len()].copy_from_slice(chunk);
            self.frame[chunk.len()..].fill(0);
            let n = self
                .inner
                .encode(&self.frame, &mut self.out)
                .map_err(|e| TtsError::Failed(format!("Opus encoding: {e}")))?;
            packets.push(self.out[..n].to_vec());
        }
        Ok(packets)
    }

    /// Forgets the previous audio, for a new turn on the same encoder.
    pub fn reset(&mut self) -> Result<(), TtsError> {
        self.inner
            .reset_state()
            .map_err(|e| TtsError::Failed(format!("resetting the Opus encoder: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(samples: usize) -> Vec<i16> {
        (0..samples)
            .map(|i| ((i as f32 * 330.0 * std::f32::consts::TAU / 16_000.0).sin() * 9000.0) as i16)
            .collect()
    }

    fn energy(pcm: &[i16]) -> f64 {
        pcm.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / pcm.len().max(1) as f64
    }

    #[test]
    fn packets_decode_to_960_samples_with_similar_energy() {
        let mut encoder = SpeechEncoder::new().unwrap();
        let input = tone(FRAME_SAMPLES * 10 + 100);
        let packets = encoder.encode(&input).unwrap();
        assert_eq!(packets.len(), 11);
        let mut decoder = opus::Decoder::new(SAMPLE_RATE, Channels::Mono).unwrap();
        let mut decoded = Vec::new();
        let mut pcm = [0i16; 1920];
        for packet in &packets {
            assert!(!packet.is_empty() && packet.len() <= MAX_PACKET_BYTES);
            let n = decoder.decode(packet, &mut pcm, false).unwrap();
            assert_eq!(n, FRAME_SAMPLES);
            decoded.extend_from_slice(&pcm[..n]);
        }
        // Skip the codec's start-up and compare the steady part.
        let ratio = energy(&decoded[1920..9600]) / energy(&input[1920..9600]);
        assert!((0.5..2.0).contains(&ratio), "energy ratio {ratio}");
    }

    #[test]
    fn empty_input_gives_no_packets_and_reset_works() {
        let mut encoder = SpeechEncoder::new().unwrap();
        assert!(encoder.encode(&[]).unwrap().is_empty());
        assert_eq!(encoder.encode(&[1; 10]).unwrap().len(), 1);
        encoder.reset().unwrap();
        assert_eq!(encoder.encode(&tone(FRAME_SAMPLES * 2)).unwrap().len(), 2);
    }
}
