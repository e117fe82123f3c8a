//! The idle deadline of one connection (PROTOCOL.md §3.8), as a pure state
//! machine over millisecond timestamps so tests can drive it exactly.
//!
//! The connection keeps one wheel timer at [`IdleTracker::next_wake`]. Activity
//! only moves `last_activity_ms`; a timer that fires early finds nothing due
//! and is re-armed, which keeps the per-message cost at one store.

use crate::config::Config;

/// The last-chance wait after the final warning.
pub const LAST_CHANCE_MS: u64 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdleSettings {
    /// `(idle_timeout_s + idle_buffer_s)` in ms, before the mode multiplier.
    pub base_timeout_ms: u64,
    /// Warning lead time before the deadline (`idle.warning_s`).
    pub warning_ms: u64,
    /// `idle.mode_multiplier`, applied in meeting and working mode.
    pub mode_multiplier: u64,
}

impl IdleSettings {
    pub fn from_config(config: &Config) -> Self {
        let idle = &config.idle;
        IdleSettings {
            base_timeout_ms: (idle.idle_timeout_s + idle.idle_buffer_s) * 1000,
            warning_ms: idle.warning_s * 1000,
            mode_multiplier: u64::from(idle.mode_multiplier),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Active,
    /// The first warning went out; it is sent once per idle period.
    Warned,
    /// The final warning went out; close at `close_at_ms` unless activity comes.
    LastChance {
        close_at_ms: u64,
    },
}

/// What the connection must do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdleAction {
    Nothing,
    /// `timeout_warning` with `secondsLeft`.
    Warn {
        seconds_left: u64,
    },
    /// `timeout_warning` with `final:true`; the last-chance wait begins.
    FinalWarn {
        seconds_left: u64,
    },
    /// Close with 1000 "idle timeout".
    Close,
}

#[derive(Debug, Clone)]
pub struct IdleTracker {
    settings: IdleSettings,
    /// Meeting or working mode: the deadline is multiplied.
    long_mode: bool,
    last_activity_ms: u64,
    phase: Phase,
}

impl IdleTracker {
    pub fn new(settings: IdleSettings, now_ms: u64) -> Self {
        IdleTracker {
            settings,
            long_mode: false,
            last_activity_ms: now_ms,
            phase: Phase::Active,
        }
    }

    /// A text message, detected voice or a non-empty ASR result.
    pub fn activity(&mut self, now_ms: u64) {
        self.last_activity_ms = now_ms;
        self.phase = Phase::Active;
    }

    /// Mode changes recompute the deadline from the last activity.
    pub fn set_long_mode(&mut self, long_mode: bool) {
        self.long_mode = long_mode;
    }

    pub fn set_settings(&mut self, settings: IdleSettings) {
        self.settings = settings;
    }

    pub fn deadline_ms(&self) -> u64 {
        let multiplier = if self.long_mode {
            self.settings.mode_multiplier
        } else {
            1
        };
        self.last_activity_ms + self.settings.base_timeout_ms * multiplier
    }

    fn warning_at_ms(&self) -> u64 {
        self.deadline_ms().saturating_sub(self.settings.warning_ms)
    }

    /// When the connection's idle timer should next fire.
    pub fn next_wake(&self) -> u64 {
        match self.phase {
            Phase::Active => self.warning_at_ms(),
            Phase::Warned => self.deadline_ms(),
            Phase::LastChance { close_at_ms } => close_at_ms,
        }
    }

    /// Advances the state machine to `now_ms` and says what is due.
    pub fn poll(&mut self, now_ms: u64) -> IdleAction {
        let deadline = self.deadline_ms();
        match self.phase {
            Phase::LastChance { close_at_ms } if now_ms >= close_at_ms => IdleAction::Close,
            Phase::LastChance { .. } => IdleAction::Nothing,
            Phase::Active | Phase::Warned if now_ms >= deadline => {
                self.phase = Phase::LastChance {
                    close_at_ms: now_ms + LAST_CHANCE_MS,
                };
                IdleAction::FinalWarn {
                    seconds_left: LAST_CHANCE_MS / 1000,
                }
            }
            Phase::Active if now_ms >= self.warning_at_ms() => {
                self.phase = Phase::Warned;
                IdleAction::Warn {
                    seconds_left: self.settings.warning_ms / 1000,
                }
            }
            Phase::Active | Phase::Warned => IdleAction::Nothing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULTS: IdleSettings = IdleSettings {
        base_timeout_ms: 660_000,
        warning_ms: 15_000,
        mode_multiplier: 3,
    };

    #[test]
    fn the_default_sequence_of_section_9_3() {
        let mut idle = IdleTracker::new(DEFAULTS, 0);
        assert_eq!(idle.next_wake(), 645_000);
        assert_eq!(idle.poll(644_999), IdleAction::Nothing);
        assert_eq!(idle.poll(645_000), IdleAction::Warn { seconds_left: 15 });
        assert_eq!(idle.next_wake(), 660_000);
        assert_eq!(idle.poll(659_000), IdleAction::Nothing);
        assert_eq!(
            idle.poll(660_000),
            IdleAction::FinalWarn { seconds_left: 10 }
        );
        assert_eq!(idle.next_wake(), 670_000);
        assert_eq!(idle.poll(669_999), IdleAction::Nothing);
        assert_eq!(idle.poll(670_000), IdleAction::Close);
    }

    #[test]
    fn the_warning_is_sent_once_per_idle_period() {
        let mut idle = IdleTracker::new(DEFAULTS, 0);
        assert_eq!(idle.poll(650_000), IdleAction::Warn { seconds_left: 15 });
        assert_eq!(idle.poll(651_000), IdleAction::Nothing);
    }

    #[test]
    fn activity_starts_a_new_period_even_in_the_last_chance_wait() {
        let mut idle = IdleTracker::new(DEFAULTS, 0);
        idle.poll(645_000);
        idle.poll(660_000);
        idle.activity(665_000);
        assert_eq!(idle.poll(670_000), IdleAction::Nothing);
        assert_eq!(idle.next_wake(), 665_000 + 645_000);
        assert_eq!(
            idle.poll(665_000 + 645_000),
            IdleAction::Warn { seconds_left: 15 }
        );
    }

    #[test]
    fn meeting_and_working_multiply_the_deadline() {
        let mut idle = IdleTracker::new(DEFAULTS, 1_000);
        idle.set_long_mode(true);
        assert_eq!(idle.deadline_ms(), 1_000 + 1_980_000);
        assert_eq!(idle.poll(1_000 + 660_000), IdleAction::Nothing);
        idle.set_long_mode(false);
        assert_eq!(
            idle.poll(1_000 + 660_000),
            IdleAction::FinalWarn { seconds_left: 10 }
        );
    }

    #[test]
    fn a_late_check_skips_straight_to_the_final_warning() {
        let mut idle = IdleTracker::new(DEFAULTS, 0);
        assert_eq!(
            idle.poll(700_000),
            IdleAction::FinalWarn { seconds_left: 10 }
        );
    }
}
