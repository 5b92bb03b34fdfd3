//! The driver's retained camera status and line counts: pushed by the guard post's handles or
//! polled from the store for the up-link, and all of them again after every reconnect.

use super::*;

impl Driver {
    /// [`State::Polled`]: queue the retained status and counts that changed since they were
    /// last sent (`all`: every one, after a reconnect), and clear the topics gone from the store.
    pub(super) fn sync_state(&mut self, all: bool) {
        let State::Polled { status, counts } = self.role.state else {
            return;
        };
        if !(status || counts)
            || self.link.is_none()
            || self
                .shutdown
                .as_ref()
                .is_some_and(|s| s.offline_queued.is_some())
        {
            return;
        }
        let rows = match self.store.retained() {
            Ok(rows) => rows,
            Err(e) => {
                debug!("{}: retained state not readable now: {e}", self.role.name);
                return;
            }
        };
        let wanted = |suffix: &str| {
            (status && suffix.starts_with("cameras/")) || (counts && suffix.starts_with("lines/"))
        };
        let now: HashMap<String, String> = rows.into_iter().filter(|(s, _)| wanted(s)).collect();
        let gone: Vec<String> = self
            .state_sent
            .iter()
            .filter(|(s, p)| !p.is_empty() && !now.contains_key(*s))
            .map(|(s, _)| s.clone())
            .collect();
        let changed: Vec<(String, String)> = now
            .into_iter()
            .filter(|(s, p)| all || self.state_sent.get(s) != Some(p))
            .chain(gone.into_iter().map(|s| (s, String::new())))
            .collect();
        for (suffix, payload) in changed {
            let out = self.state_out(&suffix, &payload);
            if let (Some(out), Some(link)) = (out, &mut self.link) {
                link.queue.push_back(out);
            }
            self.state_sent.insert(suffix, payload);
        }
    }

    /// The retained message for topic `<prefix>/<suffix>`; an empty payload clears the topic.
    /// `None` when the broker or client would refuse it: [`State::Pushed`] sets it aside in
    /// the store (a clear of a topic the broker never took is simply dropped), [`State::Polled`]
    /// skips it.
    pub(super) fn state_out(&mut self, suffix: &str, payload: &str) -> Option<Out> {
        let topic = topic::full(&self.opts.topic_prefix, suffix);
        if let Some(why) = topic::refusal(&topic, payload.len(), MAX_PACKET) {
            if let State::Polled { .. } = self.role.state {
                debug!(topic = %topic::shown(&topic), "{}: not sent: {why}", self.role.name);
                return None;
            }
            let stored = if payload.is_empty() {
                self.store.forget_retained(suffix).map(|()| false)
            } else {
                self.store
                    .quarantine_retained(suffix, &topic, payload, &why.to_string())
            };
            match stored {
                Ok(true) => warn!(
                    "{}: the retained message on {} is set aside, not sent: {why}; see the \
                     quarantine table of the store",
                    self.role.name,
                    topic::shown(&topic)
                ),
                Ok(false) => debug!(
                    topic = %topic::shown(&topic),
                    "{}: refused again: {why}",
                    self.role.name
                ),
                Err(e) => self.store_trouble(e),
            }
            return None;
        }
        let tag = match self.role.state {
            State::Pushed if payload.is_empty() => Tag::Clear(suffix.to_string()),
            _ => Tag::State,
        };
        Some(Out {
            tag,
            topic,
            payload: payload.as_bytes().to_vec(),
            retain: true,
        })
    }
}
