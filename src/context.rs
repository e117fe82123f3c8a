//! What every connection thread shares with the rest of the server: the
//! config, the registry, the timer wheel and the stop signal. Built once by
//! [`crate::server`] and handed out as an `Arc`.

use std::sync::Arc;
use std::time::Instant;

use crate::config::ConfigStore;
use crate::log::LogControl;
use crate::net::registry::Registry;
use crate::shutdown::Shutdown;
use crate::timer::TimerHandle;

pub struct ServerContext {
    pub config: Arc<ConfigStore>,
    pub registry: Arc<Registry>,
    /// Workflow task events (the task store's writer).
    pub workflow: crate::workflow::service::WorkflowService,
    pub timers: TimerHandle,
    /// Intent and chat LLM calls of spoken turns.
    pub assistant: crate::modes::chat::service::AssistantService,
    /// Coding insights' job pool.
    pub coding: crate::modes::coding::service::CodingService,
    /// Meeting journals, summary workers, archive and webhook.
    pub meetings: Arc<crate::modes::meeting::service::MeetingService>,
    /// The decode/VAD worker pool every uplink ring feeds.
    pub audio: crate::audio::worker::AudioPool,
    pub shutdown: Shutdown,
    /// The WebSocket URL devices are told to use (startup log, OTA answer).
    pub device_url: String,
    /// For `/healthz` uptime.
    pub started: Instant,
    /// Cached host load for `stats`, sampled by the periodic stats timer.
    pub host_load: crate::net::stats::HostLoadSampler,
    /// Present when the global logger is installed, so reloads can retune it.
    pub log: Option<LogControl>,
}

impl ServerContext {
    pub fn uptime_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }
}
