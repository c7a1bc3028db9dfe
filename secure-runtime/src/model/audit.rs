//! The audit log's `tracing` target.

/// The audit target of poem-secure's `tracing` events: every refusal,
/// misconfiguration and store outage is logged under it, never a secret.
pub const AUDIT_TARGET: &str = "poem_secure::audit";

/// A `tracing` subscriber that records events, for tests that assert logs.
#[cfg(test)]
pub(crate) mod capture {
    use std::{
        fmt::Debug,
        sync::{Arc, Mutex},
    };

    use tracing::{
        field::{Field, Visit},
        span, Event, Level, Metadata, Subscriber,
    };

    /// `(level, value of the "event" field)` of every event seen.
    #[derive(Clone, Default)]
    pub(crate) struct Capture(pub(crate) Arc<Mutex<Vec<(Level, String)>>>);

    impl Capture {
        /// Runs `f` with this subscriber as the thread's default.
        pub(crate) fn run<T>(&self, f: impl FnOnce() -> T) -> T {
            tracing::subscriber::with_default(self.clone(), f)
        }
        pub(crate) fn events(&self) -> Vec<(Level, String)> {
            self.0.lock().unwrap().clone()
        }
    }

    struct EventName(String);

    impl Visit for EventName {
        fn record_str(&mut self, f: &Field, v: &str) {
            if f.name() == "event" {
                self.0 = v.to_owned();
            }
        }
        fn record_debug(&mut self, f: &Field, v: &dyn Debug) {
            if f.name() == "event" {
                self.0 = format!("{v:?}");
            }
        }
    }

    impl Subscriber for Capture {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
            span::Id::from_u64(1)
        }
        fn record(&self, _: &span::Id, _: &span::Record<'_>) {}
        fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}
        fn event(&self, e: &Event<'_>) {
            let mut name = EventName(String::new());
            e.record(&mut name);
            self.0.lock().unwrap().push((*e.metadata().level(), name.0));
        }
        fn enter(&self, _: &span::Id) {}
        fn exit(&self, _: &span::Id) {}
    }
}
