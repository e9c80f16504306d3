//! What a live run watches its reports for, once a second and at its end: the `--alert`s
//! (a line for each one that starts to hold) and the `--metrics` page.

use crate::{
    alert::Alerts,
    metrics::{self, server::Page},
    report::Report,
};

/// The alerts and the metrics page of a run.
pub struct Watch {
    alerts: Alerts,
    page: Option<Page>,
}

impl Watch {
    pub fn new(alerts: Vec<crate::alert::Alert>, page: Option<Page>) -> Self {
        Self {
            alerts: Alerts::new(alerts),
            page,
        }
    }

    /// Whether there is anything to watch for.
    pub fn active(&self) -> bool {
        self.page.is_some() || !self.alerts.list.is_empty()
    }

    /// Logs the alerts that start to hold in `rep` and publishes its metrics.
    pub fn observe(&mut self, rep: &Report) {
        for fired in self.alerts.check(rep) {
            log::warn!("{}", fired.line);
        }
        if let Some(page) = &self.page {
            let own = metrics::Own::read();
            page.set(metrics::render(rep, &own, &self.alerts.firing()));
        }
    }

    /// Times an alert started to hold.
    pub fn fired(&self) -> u64 {
        self.alerts.fired
    }
}
