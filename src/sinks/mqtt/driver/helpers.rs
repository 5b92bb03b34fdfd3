//! Small pieces of the driver without its state: quarantine, the hints after a refusal, the
//! acknowledgement payload.

use super::*;

pub(super) fn bad_seq(e: &StoreError) -> Option<i64> {
    match e {
        StoreError::BadEvent { seq, .. } => Some(*seq),
        _ => None,
    }
}

/// Set an event or a guard's acknowledgement (`what`) aside instead of sending it (see
/// `topic::refusal`); said once (each is quarantined once), with the event's id.
pub(super) fn quarantine(
    store: &Store,
    name: &str,
    what: Tag,
    topic: &str,
    why: &dyn Display,
) -> Result<(), StoreError> {
    match what {
        Tag::Event(seq) => {
            if let Some(id) = store.quarantine_event(seq, topic, &why.to_string())? {
                warn!(
                    "{name}: event {id} (#{seq}) is set aside, not sent: {why}; the events after \
                     it go on; see the quarantine table of the store"
                );
            }
        }
        Tag::Ack(seq) => {
            if let Some(id) = store.quarantine_ack(seq, topic, &why.to_string())? {
                warn!(
                    "{name}: the acknowledgement of event {id} (#{seq}) is set aside, not sent: \
                     {why}; see the quarantine table of the store"
                );
            }
        }
        Tag::State | Tag::Clear(_) | Tag::Offline => {}
    }
    Ok(())
}

/// The role's hint for the failures a user can fix; empty for the others.
pub(super) fn hint(e: &ConnectionError, hints: &Hints) -> &'static str {
    use rumqttc::ConnectReturnCode as C;
    match e {
        ConnectionError::ConnectionRefused(C::BadUserNamePassword | C::NotAuthorized) => {
            hints.login
        }
        ConnectionError::ConnectionRefused(C::BadClientId) => hints.client_id,
        ConnectionError::Tls(_) => hints.tls,
        _ => "",
    }
}

/// `<prefix>/acks`: `{"schema": 1, "event_id": ..., "user": ..., "time": ...}` (site time).
pub(crate) fn ack_payload(a: &crate::store::Ack) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "schema": 1,
        "event_id": a.event_id,
        "user": a.user,
        "time": a.time,
    }))
    .unwrap_or_default()
}
