//! Coding mode (PROTOCOL.md §3.5): build and test logs in, insights out —
//! what is wrong and what to do next, never an echo of the log.
//!
//! - [`signals`]: line normalization, signal extraction and context stats.
//! - [`heuristics`]: insights built from the signals alone (the fallback).
//! - [`insight`]: the LLM prompt over signals and stats, and its parsing.
//! - [`service`]: the job pool that runs insights off the connection thread,
//!   and the broadcast copies.
//!
//! [`CodingState`] is one connection's buffer: a bounded ring of normalized
//! lines, the stats, and whether an insight is due.

pub mod heuristics;
pub mod insight;
pub mod service;
pub mod signals;

use std::collections::VecDeque;

use signals::{LogLine, Stats};

#[derive(Debug, Default)]
pub struct CodingState {
    /// The newest `coding.history_max_lines` lines; older ones fall off.
    pub lines: VecDeque<LogLine>,
    pub stats: Stats,
    /// A debounced insight is owed (lines arrived since the last one).
    pub insight_due: bool,
}

impl CodingState {
    /// `start` and `clear` empty the buffer and the stats.
    pub fn reset(&mut self) {
        *self = CodingState::default();
    }

    pub fn push(&mut self, line: LogLine, max_lines: usize) {
        signals::update_stats(&mut self.stats, &line);
        self.lines.push_back(line);
        while self.lines.len() > max_lines.max(1) {
            self.lines.pop_front();
        }
    }
}
