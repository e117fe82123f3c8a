//! The uplink ring of one device: a lock-free single-producer single-consumer
//! byte ring (`rtrb`) from the connection thread to the audio worker that owns
//! the device's decoder.
//!
//! # Contract
//! - **Bounded**: the ring is allocated once, when the device first sends audio
//!   or a listen boundary; pushing never allocates.
//! - **Never blocks**: a push that does not fit fails with [`RingFull`] and
//!   the caller drops (and counts) the packet. The producer never waits for
//!   the worker and the worker never waits for the producer.
//! - **Ordered**: listen boundaries travel in the same ring as the audio, so
//!   the worker sees them exactly between the packets they arrived between.
//! - **Boundaries are not lost to audio**: audio may not use the last
//!   [`CONTROL_RESERVE`] bytes, which stay free for boundary records.
//!
//! # Record layout
//! `kind: u8 | len: u16 (BE) | received_ns: u64 (BE) | payload: [u8; len]`.
//! A record is published with one commit, so the consumer sees all of it or
//! none of it: whenever [`HEADER`] bytes are readable, the whole record is.

use std::mem::ManuallyDrop;
use std::thread::Thread;

use rtrb::{Consumer, Producer, RingBuffer};

use crate::protocol::inbound::ListenMode;

/// Bytes before each payload.
pub const HEADER: usize = 11;
/// Bytes audio must leave free so boundary records always fit.
pub const CONTROL_RESERVE: usize = 256;
/// Largest payload: a binary frame is at most 4 KiB with its header (§2.4).
pub const MAX_PAYLOAD: usize = 4096;

const KIND_OPUS: u8 = 0;
const KIND_LISTEN_START: u8 = 1;
const KIND_LISTEN_STOP: u8 = 2;

/// A listen boundary from the device (§3.1), already debounced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Boundary {
    /// `listen start`, with the listen mode now in force.
    Start(ListenMode),
    Stop,
}

/// The push did not fit; the packet was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingFull;

/// What [`AudioConsumer::pop`] read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record {
    /// An Opus packet of `len` bytes, now at the start of the caller's buffer.
    Opus { len: usize, received_ns: u64 },
    Boundary {
        boundary: Boundary,
        received_ns: u64,
    },
}

/// Creates a ring of `capacity` bytes. `worker` is unparked after each push.
pub fn new(capacity: usize, worker: Thread) -> (AudioProducer, AudioConsumer) {
    let (producer, consumer) =
        RingBuffer::new(capacity.max(HEADER + CONTROL_RESERVE + MAX_PAYLOAD));
    (
        AudioProducer {
            inner: ManuallyDrop::new(producer),
            worker,
        },
        AudioConsumer { inner: consumer },
    )
}

/// The connection thread's end.
pub struct AudioProducer {
    /// Dropped by hand in `Drop`, before the worker is woken: the worker must
    /// find the ring abandoned when it looks (see the `Drop` impl).
    inner: ManuallyDrop<Producer<u8>>,
    /// The consumer's thread: woken after every push, so it can sleep when idle.
    worker: Thread,
}

impl Drop for AudioProducer {
    /// The connection ended: release our end, then wake the worker so it
    /// drains what is left and closes the stream now. Without the wake a quiet
    /// server kept a closed connection's stream (ring, decoder, VAD and the
    /// connection's waker fd) until some other device's push woke the worker.
    fn drop(&mut self) {
        // SAFETY: `inner` is never touched again; this is the only place it is dropped.
        unsafe { ManuallyDrop::drop(&mut self.inner) };
        self.worker.unpark();
    }
}

impl AudioProducer {
    /// Queues one Opus packet. Fails (nothing queued) when it would eat into
    /// the boundary reserve, or when the payload is larger than a frame may be.
    pub fn push_opus(&mut self, payload: &[u8], received_ns: u64) -> Result<(), RingFull> {
        if payload.len() > MAX_PAYLOAD
            || self.inner.slots() < HEADER + payload.len() + CONTROL_RESERVE
        {
            return Err(RingFull);
        }
        self.push(KIND_OPUS, payload, received_ns)
    }

    /// Queues a listen boundary; may use the reserve.
    pub fn push_boundary(&mut self, boundary: Boundary, received_ns: u64) -> Result<(), RingFull> {
        let (kind, mode) = match boundary {
            Boundary::Start(mode) => (KIND_LISTEN_START, mode_byte(mode)),
            Boundary::Stop => (KIND_LISTEN_STOP, 0),
        };
        self.push(kind, &[mode], received_ns)
    }

    fn push(&mut self, kind: u8, payload: &[u8], received_ns: u64) -> Result<(), RingFull> {
        let total = HEADER + payload.len();
        let chunk = self.inner.write_chunk_uninit(total).map_err(|_| RingFull)?;
        let len = (payload.len() as u16).to_be_bytes();
        let header = [kind, len[0], len[1]];
        let bytes = header
            .into_iter()
            .chain(received_ns.to_be_bytes())
            .chain(payload.iter().copied());
        // `fill_from_iter` commits what it wrote; the iterator yields exactly
        // `total` bytes, so the record is published whole.
        let written = chunk.fill_from_iter(bytes);
        debug_assert_eq!(written, total);
        self.worker.unpark();
        Ok(())
    }

    /// Free bytes, for tests and diagnostics.
    pub fn free(&self) -> usize {
        self.inner.slots()
    }
}

/// The worker's end.
pub struct AudioConsumer {
    inner: Consumer<u8>,
}

impl AudioConsumer {
    /// Takes the next record, copying an Opus payload into `payload` (which
    /// must hold [`MAX_PAYLOAD`] bytes). `None` when the ring is empty.
    pub fn pop(&mut self, payload: &mut [u8]) -> Option<Record> {
        let mut header = [0u8; HEADER];
        {
            let chunk = self.inner.read_chunk(HEADER).ok()?;
            let (first, second) = chunk.as_slices();
            header[..first.len()].copy_from_slice(first);
            header[first.len()..].copy_from_slice(second);
            // Dropped without commit: the header stays until the whole record is taken.
        }
        let len = usize::from(u16::from_be_bytes([header[1], header[2]]));
        let mut received = [0u8; 8];
        received.copy_from_slice(&header[3..11]);
        let received_ns = u64::from_be_bytes(received);
        let chunk = self.inner.read_chunk(HEADER + len).ok()?;
        let (first, second) = chunk.as_slices();
        let body = first.iter().chain(second.iter()).skip(HEADER);
        let copy_len = len.min(payload.len());
        for (slot, byte) in payload[..copy_len].iter_mut().zip(body) {
            *slot = *byte;
        }
        chunk.commit_all();
        match header[0] {
            KIND_LISTEN_START => Some(Record::Boundary {
                boundary: Boundary::Start(mode_from_byte(payload.first().copied().unwrap_or(0))),
                received_ns,
            }),
            KIND_LISTEN_STOP => Some(Record::Boundary {
                boundary: Boundary::Stop,
                received_ns,
            }),
            _ => Some(Record::Opus {
                len: copy_len,
                received_ns,
            }),
        }
    }

    /// True once the connection dropped its producer (it closed).
    pub fn is_abandoned(&self) -> bool {
        self.inner.is_abandoned()
    }

    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }
}

fn mode_byte(mode: ListenMode) -> u8 {
    match mode {
        ListenMode::Auto => 0,
        ListenMode::Manual => 1,
        ListenMode::Realtime => 2,
    }
}

fn mode_from_byte(byte: u8) -> ListenMode {
    match byte {
        1 => ListenMode::Manual,
        2 => ListenMode::Realtime,
        _ => ListenMode::Auto,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(capacity: usize) -> (AudioProducer, AudioConsumer) {
        new(capacity, std::thread::current())
    }

    #[test]
    fn records_come_out_in_order_with_their_payloads() {
        let (mut producer, mut consumer) = ring(8192);
        producer.push_opus(&[1, 2, 3], 10).unwrap();
        producer
            .push_boundary(Boundary::Start(ListenMode::Manual), 11)
            .unwrap();
        producer.push_opus(&[9; 300], 12).unwrap();
        producer.push_boundary(Boundary::Stop, 13).unwrap();
        let mut buf = [0u8; MAX_PAYLOAD];
        assert_eq!(
            consumer.pop(&mut buf),
            Some(Record::Opus {
                len: 3,
                received_ns: 10
            })
        );
        assert_eq!(&buf[..3], &[1, 2, 3]);
        assert_eq!(
            consumer.pop(&mut buf),
            Some(Record::Boundary {
                boundary: Boundary::Start(ListenMode::Manual),
                received_ns: 11
            })
        );
        assert_eq!(
            consumer.pop(&mut buf),
            Some(Record::Opus {
                len: 300,
                received_ns: 12
            })
        );
        assert!(buf[..300].iter().all(|b| *b == 9));
        assert_eq!(
            consumer.pop(&mut buf),
            Some(Record::Boundary {
                boundary: Boundary::Stop,
                received_ns: 13
            })
        );
        assert_eq!(consumer.pop(&mut buf), None);
    }

    #[test]
    fn a_full_ring_refuses_audio_but_keeps_room_for_boundaries() {
        let (mut producer, mut consumer) = ring(0);
        let capacity = producer.free();
        let packet = [7u8; 1000];
        let mut pushed = 0;
        while producer.push_opus(&packet, 0).is_ok() {
            pushed += 1;
        }
        assert_eq!(pushed, (capacity - CONTROL_RESERVE) / (HEADER + 1000));
        assert!(producer.free() >= CONTROL_RESERVE);
        for _ in 0..10 {
            producer.push_boundary(Boundary::Stop, 0).unwrap();
        }
        let mut buf = [0u8; MAX_PAYLOAD];
        let mut popped = 0;
        while consumer.pop(&mut buf).is_some() {
            popped += 1;
        }
        assert_eq!(popped, pushed + 10);
    }

    #[test]
    fn records_survive_wrapping_around_the_end() {
        let (mut producer, mut consumer) = ring(0);
        let mut buf = [0u8; MAX_PAYLOAD];
        for i in 0..10_000u32 {
            let payload: Vec<u8> = (0..(i % 700) as usize)
                .map(|j| (i as usize + j) as u8)
                .collect();
            producer.push_opus(&payload, u64::from(i)).unwrap();
            let Some(Record::Opus { len, received_ns }) = consumer.pop(&mut buf) else {
                panic!("record {i} missing")
            };
            assert_eq!((len, received_ns), (payload.len(), u64::from(i)));
            assert_eq!(&buf[..len], &payload[..]);
        }
    }

    #[test]
    fn oversized_payloads_are_refused() {
        let (mut producer, _consumer) = ring(65536);
        assert_eq!(producer.push_opus(&[0; MAX_PAYLOAD + 1], 0), Err(RingFull));
    }

    #[test]
    fn the_consumer_sees_the_producer_go() {
        let (producer, consumer) = ring(8192);
        assert!(!consumer.is_abandoned());
        drop(producer);
        assert!(consumer.is_abandoned());
    }
}
