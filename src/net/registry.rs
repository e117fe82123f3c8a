//! The device registry (PROTOCOL.md §1.5): device-id → the connection that
//! currently speaks for it, plus every live connection (replaced ones
//! included) so shutdown and reloads reach them all.
//!
//! Read-mostly: broadcasts take the read lock just long enough to clone the
//! handles, and no lock is ever held while sending.

use std::collections::HashMap;

use parking_lot::RwLock;

use super::handle::{ConnEvent, ConnHandle};

#[derive(Default)]
pub struct Registry {
    /// device-id → its current connection; an entry is removed only by the
    /// connection it points at, so a replaced connection cannot evict its successor.
    devices: RwLock<HashMap<String, ConnHandle>>,
    /// conn-id → every connection that has not finished closing.
    live: RwLock<HashMap<u64, ConnHandle>>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `handle` at once; the connection it displaced (if any) is
    /// returned so the caller can tell it, outside the lock.
    pub fn register(&self, handle: ConnHandle) -> Option<ConnHandle> {
        self.live.write().insert(handle.conn_id, handle.clone());
        let device_id = handle.device_id.to_string();
        self.devices.write().insert(device_id, handle)
    }

    /// Removes the device entry only while it still points at `conn_id`;
    /// returns whether it did. The live entry goes in any case.
    pub fn unregister(&self, device_id: &str, conn_id: u64) -> bool {
        self.live.write().remove(&conn_id);
        let mut devices = self.devices.write();
        if devices.get(device_id).is_some_and(|h| h.conn_id == conn_id) {
            devices.remove(device_id);
            true
        } else {
            false
        }
    }

    /// Normalized ids of the registered devices, sorted.
    pub fn online(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.devices.read().keys().cloned().collect();
        ids.sort();
        ids
    }

    pub fn device_count(&self) -> usize {
        self.devices.read().len()
    }

    pub fn live_count(&self) -> usize {
        self.live.read().len()
    }

    pub fn registered(&self) -> Vec<ConnHandle> {
        self.devices.read().values().cloned().collect()
    }

    pub fn live(&self) -> Vec<ConnHandle> {
        self.live.read().values().cloned().collect()
    }

    /// Sends one event per registered device, built by `make`.
    pub fn broadcast_registered(&self, mut make: impl FnMut() -> ConnEvent) {
        for handle in self.registered() {
            handle.send(make());
        }
    }

    /// Sends one event per live connection, built by `make`.
    pub fn broadcast_live(&self, mut make: impl FnMut() -> ConnEvent) {
        for handle in self.live() {
            handle.send(make());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn handle(id: u64, device: &str) -> (ConnHandle, crossbeam_channel::Receiver<ConnEvent>) {
        let poll = mio::Poll::new().unwrap();
        let waker = Arc::new(mio::Waker::new(poll.registry(), mio::Token(0)).unwrap());
        ConnHandle::new(id, device, waker)
    }

    #[test]
    fn a_replaced_connection_cannot_evict_its_successor() {
        let registry = Registry::new();
        let (old, _old_rx) = handle(1, "dev");
        let (new, _new_rx) = handle(2, "dev");
        assert!(registry.register(old).is_none());
        let displaced = registry.register(new).expect("old displaced");
        assert_eq!(displaced.conn_id, 1);
        assert_eq!(registry.live_count(), 2);
        assert!(!registry.unregister("dev", 1));
        assert_eq!(registry.online(), vec!["dev".to_string()]);
        assert!(registry.unregister("dev", 2));
        assert!(registry.online().is_empty());
        assert_eq!(registry.live_count(), 0);
    }

    #[test]
    fn broadcasts_reach_each_registered_device() {
        let registry = Registry::new();
        let (a, a_rx) = handle(1, "a");
        let (b, b_rx) = handle(2, "b");
        registry.register(a);
        registry.register(b);
        registry.broadcast_registered(|| ConnEvent::SendText(Arc::from("x")));
        assert!(matches!(a_rx.try_recv(), Ok(ConnEvent::SendText(_))));
        assert!(matches!(b_rx.try_recv(), Ok(ConnEvent::SendText(_))));
    }
}
