//! Opus at the one format the protocol allows (PROTOCOL.md §2.4): 16 kHz,
//! mono, 60 ms packets. libopus comes from the `opus` crate, which builds its
//! bundled libopus with cmake and links it statically.
//!
//! The decoder never panics on bad input: libopus rejects a malformed packet
//! with an error, and the caller resets the stream's state (a packet that is
//! damaged but well-formed decodes to noise, which the VAD then judges).

use opus::{Application, Bitrate, Channels};

pub const SAMPLE_RATE: u32 = 16_000;
/// Samples in one 60 ms packet.
pub const FRAME_SAMPLES: usize = 960;
pub const FRAME_MS: u64 = 60;
/// Largest PCM output of one packet: 120 ms, the most one Opus packet may carry.
pub const MAX_PACKET_SAMPLES: usize = 1920;

/// Why a packet could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

/// One device's decoder, with the statistics its log lines report.
pub struct OpusDecoder {
    inner: opus::Decoder,
    /// Packets handed to `decode`, good or bad: the packet number in logs.
    pub packets: u64,
    /// Packets libopus refused; each one reset the decoder.
    pub errors: u64,
    /// Decoded samples since the stream began: the stream's audio clock.
    pub samples: u64,
}

impl OpusDecoder {
    pub fn new() -> Result<Self, DecodeError> {
        let inner = opus::Decoder::new(SAMPLE_RATE, Channels::Mono)
            .map_err(|e| DecodeError(e.to_string()))?;
        Ok(OpusDecoder {
            inner,
            packets: 0,
            errors: 0,
            samples: 0,
        })
    }

    /// Decodes one packet into `pcm` (at least [`MAX_PACKET_SAMPLES`] long)
    /// and returns the sample count. On error the decoder is reset, so the
    /// next packet starts clean.
    pub fn decode(&mut self, packet: &[u8], pcm: &mut [i16]) -> Result<usize, DecodeError> {
        self.packets += 1;
        match self.inner.decode(packet, pcm, false) {
            Ok(n) => {
                self.samples += n as u64;
                Ok(n)
            }
            Err(e) => {
                self.errors += 1;
                // A reset cannot fail on a valid decoder; if it ever did, the
                // next packet's own error would surface it.
                let _ = self.inner.reset_state();
                Err(DecodeError(e.to_string()))
            }
        }
    }
}

/// The encoder the device simulator, the load generator and the benches use:
/// VOIP application, 60 ms packets, 24 kb/s like the firmware.
pub struct OpusEncoder {
    inner: opus::Encoder,
    out: Vec<u8>,
}

impl OpusEncoder {
    pub fn new() -> Result<Self, String> {
        let mut inner = opus::Encoder::new(SAMPLE_RATE, Channels::Mono, Application::Voip)
            .map_err(|e| e.to_string())?;
        inner
            .set_bitrate(Bitrate::Bits(24_000))
            .map_err(|e| e.to_string())?;
        Ok(OpusEncoder {
            inner,
            out: vec![0u8; 4000],
        })
    }

    /// Encodes exactly one 60 ms frame ([`FRAME_SAMPLES`] samples).
    pub fn encode(&mut self, pcm: &[i16]) -> Result<Vec<u8>, String> {
        if pcm.len() != FRAME_SAMPLES {
            return Err(format!(
                "a frame is {FRAME_SAMPLES} samples, got {}",
                pcm.len()
            ));
        }
        let n = self
            .inner
            .encode(pcm, &mut self.out)
            .map_err(|e| e.to_string())?;
        Ok(self.out[..n].to_vec())
    }

    /// Encodes a whole signal as consecutive 60 ms packets; the last frame is
    /// padded with silence.
    pub fn encode_all(&mut self, pcm: &[i16]) -> Result<Vec<Vec<u8>>, String> {
        let mut packets = Vec::with_capacity(pcm.len() / FRAME_SAMPLES + 1);
        let mut frame = [0i16; FRAME_SAMPLES];
        for chunk in pcm.chunks(FRAME_SAMPLES) {
            frame[..chunk.len()].copy_from_slice(chunk);
            frame[chunk.len()..].fill(0);
            packets.push(self.encode(&frame)?);
        }
        Ok(packets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(samples: usize) -> Vec<i16> {
        (0..samples)
            .map(|i| ((i as f32 * 440.0 * std::f32::consts::TAU / 16_000.0).sin() * 8000.0) as i16)
            .collect()
    }

    #[test]
    fn round_trip_keeps_length_and_energy() {
        let mut encoder = OpusEncoder::new().unwrap();
        let mut decoder = OpusDecoder::new().unwrap();
        let packets = encoder.encode_all(&tone(FRAME_SAMPLES * 10)).unwrap();
        assert_eq!(packets.len(), 10);
        let mut pcm = [0i16; MAX_PACKET_SAMPLES];
        let mut energy = 0f64;
        for packet in &packets {
            let n = decoder.decode(packet, &mut pcm).unwrap();
            assert_eq!(n, FRAME_SAMPLES);
            energy += pcm[..n].iter().map(|s| f64::from(*s).powi(2)).sum::<f64>();
        }
        assert_eq!(decoder.samples, 9600);
        assert!(energy / 9600.0 > 1e6, "decoded signal is near silent");
    }

    #[test]
    fn malformed_packets_error_and_reset_without_panicking() {
        let mut decoder = OpusDecoder::new().unwrap();
        let mut pcm = [0i16; MAX_PACKET_SAMPLES];
        assert!(decoder.decode(&[0x03, 0x00], &mut pcm).is_err());
        assert_eq!((decoder.packets, decoder.errors), (1, 1));
        let mut encoder = OpusEncoder::new().unwrap();
        let good = encoder.encode(&tone(FRAME_SAMPLES)).unwrap();
        assert_eq!(decoder.decode(&good, &mut pcm), Ok(FRAME_SAMPLES));
        // Random bytes: any outcome but a panic is fine.
        let mut seed = 0x2545_f491_u32;
        for _ in 0..2000 {
            let len = (seed % 300) as usize + 1;
            let packet: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    seed as u8
                })
                .collect();
            let _ = decoder.decode(&packet, &mut pcm);
        }
    }

    #[test]
    fn encoder_refuses_wrong_frame_sizes() {
        let mut encoder = OpusEncoder::new().unwrap();
        assert!(encoder.encode(&[0i16; 100]).unwrap_err().contains("960"));
    }
}
