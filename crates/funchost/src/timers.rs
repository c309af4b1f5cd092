//! Timer triggers: fire `POST /<FunctionName>` at each occurrence of the NCRONTAB schedule,
//! once at start-up with `runOnStartup`, one invocation at a time (an occurrence missed while
//! an invocation runs is skipped, as the host's timer does).
//! <https://learn.microsoft.com/azure/azure-functions/functions-bindings-timer>
//!
//! The runner keeps no schedule state between runs: `ScheduleStatus.Last` is the previous
//! firing in this run (or the start time), and `IsPastDue` is always false.

use time::OffsetDateTime;
use tokio::sync::watch;

use super::{
    config::TimerTrigger,
    invoke::Invoker,
    payload::{self, ScheduleStatus, Sys, TimerInfo, TimerSchedule},
    stopped,
};

/// One timer-triggered function.
pub struct TimerListener {
    pub function: String,
    pub trigger: TimerTrigger,
    pub invoker: Invoker,
}

impl TimerListener {
    /// Fires on schedule until `stop` turns true.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let started = OffsetDateTime::now_utc();
        let mut last = started;
        if self.trigger.run_on_startup {
            self.fire(started, last).await;
        }
        loop {
            // Never before the last firing: a wake-up a little early must not fire twice.
            let after = OffsetDateTime::now_utc().max(last);
            let Some(next) = self.trigger.schedule.next_after(after) else {
                tracing::error!(function = %self.function, "the schedule has no next occurrence; the timer stops");
                return;
            };
            let wait = (next - OffsetDateTime::now_utc()).max(time::Duration::ZERO);
            let wait = std::time::Duration::try_from(wait).unwrap_or_default();
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = stopped(&mut stop) => return,
            }
            self.fire(next, last).await;
            last = next;
        }
    }

    async fn fire(&self, scheduled: OffsetDateTime, last: OffsetDateTime) {
        let now = OffsetDateTime::now_utc();
        let status = self.trigger.use_monitor.then(|| ScheduleStatus {
            last,
            next: self
                .trigger
                .schedule
                .next_after(scheduled)
                .unwrap_or(scheduled),
            last_updated: now,
        });
        let info = TimerInfo {
            schedule: TimerSchedule {
                adjust_for_dst: true,
            },
            schedule_status: status,
            is_past_due: false,
        };
        let sys = Sys {
            method_name: &self.function,
            utc_now: now,
            rand_guid: uuid::Uuid::new_v4(),
        };
        let invocation = payload::timer_invocation(&self.trigger.binding, &info, &sys);
        match self.invoker.invoke(&self.function, &invocation).await {
            Ok(()) => {
                tracing::info!(function = %self.function, schedule = %self.trigger.schedule_text, "executed")
            }
            // A timer has no retry: the next occurrence is the next chance.
            Err(e) => {
                tracing::warn!(function = %self.function, error = %e, "timer invocation failed")
            }
        }
    }
}
