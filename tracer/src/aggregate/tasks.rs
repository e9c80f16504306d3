//! Threads of one process: creation (with the creating stack), names, exits.
//!
//! Threads alive when tracing began are the baseline. A thread still alive when its process
//! calls exit_group never exited on its own: at exit it is reported as a leak, like a block
//! never freed.

use std::collections::HashMap;

use super::growth::Tracker;
use crate::event::{CallSite, TaskNew};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThreadInfo {
    pub name: String,
    /// Where it was created; `None` for threads alive before tracing began.
    pub site: Option<CallSite>,
    pub ts_ns: u64,
    pub alive: bool,
    /// Alive when the process called exit_group (or died).
    pub alive_at_exit: bool,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ThreadTotals {
    /// Alive now, the baseline included.
    pub alive: u64,
    /// Created while traced.
    pub created_total: u64,
    /// Exited while traced.
    pub exited_total: u64,
    /// Alive when tracing began.
    pub baseline: u64,
    /// Processes created (fork) while traced.
    pub processes_created: u64,
}

#[derive(Debug, Default)]
pub struct Tasks {
    pub threads: HashMap<u32, ThreadInfo>,
    pub totals: ThreadTotals,
    /// exit_group was called: every exit from now on ends the process.
    pub dying: bool,
    /// Threads alive per creating call site over time.
    pub growth: Tracker<CallSite>,
}

impl Tasks {
    /// Records the threads alive when tracing began: (tid, name).
    pub fn set_baseline(&mut self, threads: impl IntoIterator<Item = (u32, String)>) {
        for (tid, name) in threads {
            if self
                .threads
                .insert(
                    tid,
                    ThreadInfo {
                        name,
                        site: None,
                        ts_ns: 0,
                        alive: true,
                        alive_at_exit: false,
                    },
                )
                .is_none()
            {
                self.totals.baseline += 1;
                self.totals.alive += 1;
            }
        }
    }

    pub fn apply_new(&mut self, t: &TaskNew, ts_ns: u64) {
        if !t.is_thread() {
            self.totals.processes_created += 1;
            return;
        }
        let prev = self.threads.insert(
            t.child,
            ThreadInfo {
                name: t.comm.clone(),
                site: Some(t.site),
                ts_ns,
                alive: true,
                alive_at_exit: false,
            },
        );
        if prev.as_ref().is_some_and(|p| p.alive) {
            self.totals.alive = self.totals.alive.saturating_sub(1);
        }
        if let Some(p) = prev.filter(|p| p.alive) {
            if let Some(site) = p.site {
                self.growth.sub(site, ts_ns, 1);
            }
        }
        self.totals.created_total += 1;
        self.totals.alive += 1;
        self.growth.add(t.site, ts_ns, 1);
    }

    pub fn rename(&mut self, tid: u32, name: &str) {
        match self.threads.get_mut(&tid) {
            Some(t) => t.name = name.to_string(),
            None => {
                // A thread alive before the baseline was read; it is alive now.
                self.set_baseline([(tid, name.to_string())]);
            }
        }
    }

    pub fn group_exit(&mut self) {
        self.dying = true;
    }

    pub fn exited(&mut self, tid: u32, group_dead: bool, ts_ns: u64) {
        let dying = self.dying || group_dead;
        if let Some(t) = self.threads.get_mut(&tid) {
            if t.alive {
                t.alive = false;
                t.alive_at_exit = dying;
                self.totals.alive = self.totals.alive.saturating_sub(1);
                self.totals.exited_total += 1;
                // A thread ended by its process's exit stays counted at its site: the
                // growth until the exit is what the leak at exit is ranked by.
                if let Some(site) = t.site.filter(|_| !dying) {
                    self.growth.sub(site, ts_ns, 1);
                }
            }
        }
    }
}
