//! The audio worker pool: a fixed set of threads, each owning the consumer
//! end of its devices' rings and, per device, the Opus decoder, the VAD and
//! the segmenter. Connections are spread over the workers round-robin.
//!
//! # Contract
//! - A worker sleeps (`thread::park`) when all its rings are empty and is
//!   woken by every push ([`super::ring::AudioProducer`] unparks it): no spin.
//! - Per packet: decode, rechunk into 16 ms VAD frames, VAD, segment, record
//!   the latency from socket read to VAD decision. No allocation per packet;
//!   one per utterance.
//! - Detected voice reaches the connection as an event (at most one per
//!   second of audio), finished utterances go to the [`UtteranceSink`].

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{JoinHandle, Thread};

use crossbeam_channel::{Receiver, Sender, TrySendError};

use super::opus::{MAX_PACKET_SAMPLES, OpusDecoder};
use super::ring::{self, AudioConsumer, AudioProducer, Boundary, MAX_PAYLOAD, Record};
use super::segmenter::{Cut, FRAME_MS, Segmenter, SegmenterSettings};
use super::stats::{AUDIO_STATS, mono_ns};
use super::utterance::{Utterance, UtteranceSink};
use super::vad::{EARSHOT_FRAME, EarshotVad, Vad};
use crate::config::Config;
use crate::net::handle::{ConnEvent, ConnHandle};
use crate::protocol::inbound::ListenMode;
use crate::timer::unix_ms;

/// Records taken from one ring before the worker moves to the next, so one
/// busy device cannot delay the others by more than a few packets.
const BUDGET_PER_STREAM: usize = 8;
/// Pending registrations per worker; beyond it a device gets no uplink (its audio is dropped and counted).
const REGISTRATION_QUEUE: usize = 1024;
/// Voice activity events are sent at most this often (audio time).
const ACTIVITY_EVERY_MS: u64 = 1_000;
const STATS_EVERY_PACKETS: u64 = 100;

/// How one device's audio is cut, fixed when its stream opens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StreamSettings {
    pub segmenter: SegmenterSettings,
    pub listen_mode: ListenMode,
}

impl StreamSettings {
    pub fn from_config(config: &Config, listen_mode: ListenMode) -> Self {
        let vad = &config.vad.earshot;
        StreamSettings {
            segmenter: SegmenterSettings {
                threshold: vad.threshold as f32,
                min_silence_ms: vad.min_silence_duration_ms,
                min_speech_ms: vad.min_speech_ms,
                manual_fallback_ms: config.meeting.manual_listen_fallback_ms,
                ..SegmenterSettings::default()
            },
            listen_mode,
        }
    }
}

struct Registration {
    consumer: AudioConsumer,
    conn: ConnHandle,
    settings: StreamSettings,
}

/// One worker as the pool's users see it: where to register, whom to wake.
struct WorkerSlot {
    thread: Thread,
    registrations: Sender<Registration>,
}

struct PoolShared {
    workers: Vec<WorkerSlot>,
    /// Round-robin cursor for new streams.
    next: AtomicUsize,
    ring_bytes: usize,
    stop: Arc<AtomicBool>,
}

/// The pool's owner: starts the threads and stops them.
pub struct AudioWorkers {
    shared: Arc<PoolShared>,
    joins: Vec<JoinHandle<()>>,
}

/// A cheap handle that opens streams; kept in the server context.
#[derive(Clone)]
pub struct AudioPool {
    shared: Arc<PoolShared>,
}

impl AudioWorkers {
    /// Starts `count` workers (0 = one per core).
    pub fn start(
        count: usize,
        ring_bytes: usize,
        sink: Arc<dyn UtteranceSink>,
    ) -> io::Result<Self> {
        let count = if count == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            count
        };
        let stop = Arc::new(AtomicBool::new(false));
        let mut workers = Vec::with_capacity(count);
        let mut joins = Vec::with_capacity(count);
        for index in 0..count {
            let (registrations, incoming) = crossbeam_channel::bounded(REGISTRATION_QUEUE);
            let sink = Arc::clone(&sink);
            let stop = Arc::clone(&stop);
            let join = std::thread::Builder::new()
                .name(format!("audio-{index}"))
                .spawn(move || Worker::new(incoming, sink, stop).run())?;
            workers.push(WorkerSlot {
                thread: join.thread().clone(),
                registrations,
            });
            joins.push(join);
        }
        let shared = Arc::new(PoolShared {
            workers,
            next: AtomicUsize::new(0),
            ring_bytes,
            stop,
        });
        Ok(AudioWorkers { shared, joins })
    }

    pub fn handle(&self) -> AudioPool {
        AudioPool {
            shared: Arc::clone(&self.shared),
        }
    }

    pub fn worker_count(&self) -> usize {
        self.shared.workers.len()
    }

    /// Stops and joins every worker; open streams are dropped unfinished.
    pub fn stop(self) {
        self.shared.stop.store(true, Ordering::Release);
        for worker in &self.shared.workers {
            worker.thread.unpark();
        }
        for join in self.joins {
            let _ = join.join();
        }
    }
}

impl AudioPool {
    /// Opens a device's uplink on the next worker. `None` when that worker's
    /// registration queue is full or it has stopped.
    pub fn open_stream(&self, conn: ConnHandle, settings: StreamSettings) -> Option<AudioProducer> {
        let shared = &self.shared;
        let index = shared.next.fetch_add(1, Ordering::Relaxed) % shared.workers.len();
        let worker = &shared.workers[index];
        let (producer, consumer) = ring::new(shared.ring_bytes, worker.thread.clone());
        let registration = Registration {
            consumer,
            conn,
            settings,
        };
        match worker.registrations.try_send(registration) {
            Ok(()) => {
                worker.thread.unpark();
                Some(producer)
            }
            Err(TrySendError::Full(r) | TrySendError::Disconnected(r)) => {
                ::log::warn!(
                    "audio worker {index} cannot take device {}",
                    r.conn.device_id
                );
                None
            }
        }
    }
}

struct Worker {
    incoming: Receiver<Registration>,
    sink: Arc<dyn UtteranceSink>,
    stop: Arc<AtomicBool>,
    streams: Vec<Stream>,
    /// Reused for every packet's payload and PCM: no allocation per packet.
    payload: Box<[u8; MAX_PAYLOAD]>,
    pcm: Box<[i16; MAX_PACKET_SAMPLES]>,
}

impl Worker {
    fn new(
        incoming: Receiver<Registration>,
        sink: Arc<dyn UtteranceSink>,
        stop: Arc<AtomicBool>,
    ) -> Self {
        Worker {
            incoming,
            sink,
            stop,
            streams: Vec::new(),
            payload: Box::new([0; MAX_PAYLOAD]),
            pcm: Box::new([0; MAX_PACKET_SAMPLES]),
        }
    }

    fn run(mut self) {
        loop {
            if self.stop.load(Ordering::Acquire) {
                return;
            }
            while let Ok(registration) = self.incoming.try_recv() {
                match Stream::open(registration) {
                    Ok(stream) => self.streams.push(stream),
                    Err(e) => ::log::error!("cannot open an audio stream: {e}"),
                }
            }
            let mut worked = false;
            let mut index = 0;
            while index < self.streams.len() {
                let stream = &mut self.streams[index];
                let mut taken = 0;
                while taken < BUDGET_PER_STREAM {
                    let Some(record) = stream.consumer.pop(&mut self.payload[..]) else {
                        break;
                    };
                    taken += 1;
                    stream.handle(
                        record,
                        &self.payload[..],
                        &mut self.pcm[..],
                        self.sink.as_ref(),
                    );
                }
                worked |= taken > 0;
                // Check emptiness after abandonment: a record pushed just before
                // the producer went must still be processed.
                if taken == 0 && stream.consumer.is_abandoned() && stream.consumer.is_empty() {
                    let stream = self.streams.swap_remove(index);
                    stream.close(self.sink.as_ref());
                    continue;
                }
                index += 1;
            }
            if !worked {
                // Every push and registration unparks us; a push that raced
                // with the scan above leaves the unpark token set, so this
                // returns at once instead of missing it.
                std::thread::park();
            }
        }
    }
}

/// One device's audio state on its worker.
struct Stream {
    consumer: AudioConsumer,
    conn: ConnHandle,
    decoder: OpusDecoder,
    vad: Box<dyn Vad>,
    segmenter: Segmenter,
    /// Samples waiting for a full 16 ms VAD frame.
    carry: [i16; EARSHOT_FRAME],
    carry_len: usize,
    /// Audio clock: ms of audio run through the VAD.
    stream_ms: u64,
    opened_at_unix_ms: u64,
    /// Audio time of the last voice activity event sent to the connection.
    last_activity_ms: Option<u64>,
}

impl Stream {
    fn open(registration: Registration) -> Result<Self, String> {
        let decoder = OpusDecoder::new().map_err(|e| e.0)?;
        AUDIO_STATS.streams_active.fetch_add(1, Ordering::Relaxed);
        Ok(Stream {
            consumer: registration.consumer,
            conn: registration.conn,
            decoder,
            vad: Box::new(EarshotVad::new()),
            segmenter: Segmenter::new(
                registration.settings.segmenter,
                registration.settings.listen_mode,
            ),
            carry: [0; EARSHOT_FRAME],
            carry_len: 0,
            stream_ms: 0,
            opened_at_unix_ms: unix_ms(),
            last_activity_ms: None,
        })
    }

    fn handle(
        &mut self,
        record: Record,
        payload: &[u8],
        pcm: &mut [i16],
        sink: &dyn UtteranceSink,
    ) {
        match record {
            Record::Opus { len, received_ns } => {
                self.decode(&payload[..len], pcm, sink);
                AUDIO_STATS.frames_processed.fetch_add(1, Ordering::Relaxed);
                AUDIO_STATS.observe_latency_ns(mono_ns().saturating_sub(received_ns));
            }
            Record::Boundary { boundary, .. } => {
                // The boundary sits between packets: its exact time counts the
                // samples still waiting for a full VAD frame.
                let now_ms = self.stream_ms + (self.carry_len as u64) / 16;
                let pending = &self.carry[..self.carry_len];
                if let Some(cut) = self.segmenter.on_boundary(boundary, now_ms, pending) {
                    self.deliver(cut, sink);
                }
                if let Boundary::Start(_) = boundary {
                    self.last_activity_ms = None;
                }
            }
        }
    }

    fn decode(&mut self, packet: &[u8], pcm: &mut [i16], sink: &dyn UtteranceSink) {
        let samples = match self.decoder.decode(packet, pcm) {
            Ok(n) => n,
            Err(e) => {
                AUDIO_STATS.decode_errors.fetch_add(1, Ordering::Relaxed);
                ::log::warn!(
                    "device {}: opus packet #{} ({} bytes) not decodable ({}); decoder reset",
                    self.conn.device_id,
                    self.decoder.packets,
                    packet.len(),
                    e.0
                );
                return;
            }
        };
        if self.decoder.packets.is_multiple_of(STATS_EVERY_PACKETS) {
            ::log::debug!(
                "device {}: {} opus packets, {} errors, {:.1} s of audio",
                self.conn.device_id,
                self.decoder.packets,
                self.decoder.errors,
                self.decoder.samples as f64 / 16_000.0
            );
        }
        let mut taken = 0;
        while taken < samples {
            let n = (EARSHOT_FRAME - self.carry_len).min(samples - taken);
            self.carry[self.carry_len..self.carry_len + n].copy_from_slice(&pcm[taken..taken + n]);
            self.carry_len += n;
            taken += n;
            if self.carry_len == EARSHOT_FRAME {
                self.carry_len = 0;
                self.vad_frame(sink);
            }
        }
    }

    fn vad_frame(&mut self, sink: &dyn UtteranceSink) {
        let probability = self.vad.speech_probability(&self.carry);
        let outcome = self
            .segmenter
            .on_frame(&self.carry, probability, self.stream_ms);
        self.stream_ms += FRAME_MS;
        if outcome.voiced {
            AUDIO_STATS.voice_ms.fetch_add(FRAME_MS, Ordering::Relaxed);
            let due = self
                .last_activity_ms
                .is_none_or(|last| self.stream_ms.saturating_sub(last) >= ACTIVITY_EVERY_MS);
            if due {
                self.last_activity_ms = Some(self.stream_ms);
                self.conn.send(ConnEvent::VoiceActivity);
            }
        }
        if let Some(cut) = outcome.cut {
            self.deliver(cut, sink);
        }
    }

    fn deliver(&self, cut: Cut, sink: &dyn UtteranceSink) {
        AUDIO_STATS.utterances.fetch_add(1, Ordering::Relaxed);
        sink.deliver(Utterance {
            conn_id: self.conn.conn_id,
            device_id: Arc::clone(&self.conn.device_id),
            start_ms: cut.start_ms,
            end_ms: cut.end_ms,
            started_at_unix_ms: self.opened_at_unix_ms + cut.start_ms,
            listen_mode: cut.listen_mode,
            decided_by: cut.decided_by,
            reason: cut.reason,
            voiced_ms: cut.voiced_ms,
            pcm: cut.pcm,
            reply: self.conn.clone(),
        });
    }

    fn close(mut self, sink: &dyn UtteranceSink) {
        AUDIO_STATS.streams_active.fetch_sub(1, Ordering::Relaxed);
        if let Some(cut) = self.segmenter.finish(self.stream_ms) {
            self.deliver(cut, sink);
        }
        ::log::debug!(
            "device {}: audio stream closed after {} packets ({} errors)",
            self.conn.device_id,
            self.decoder.packets,
            self.decoder.errors
        );
    }
}
