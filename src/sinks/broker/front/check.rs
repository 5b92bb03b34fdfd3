//! One packet from a client against its rights: what goes on to the broker, what is refused.

use super::*;

/// Check one packet from the client: append what goes on to the broker to `out`; false when
/// the connection must be cut off.
pub(super) fn check(
    p: &[u8],
    role: MqttRole,
    who: &Who,
    ctx: &Ctx,
    notes: &mpsc::UnboundedSender<Note>,
    out: &mut Vec<u8>,
) -> bool {
    match packet::kind(p[0]) {
        packet::PUBLISH => {
            let head = match packet::publish_head(p) {
                Ok(h) => h,
                Err(e) => {
                    not_mqtt(ctx, who, &e);
                    return false;
                }
            };
            if let Err(why) = ctx.rights.may_publish(role, head.topic, head.retain) {
                ctx.refused(who.ip, Cause::Publish, || {
                    format!(
                        "MQTT: {who} published on `{}`, which it may not: {why}; the connection \
                         is closed",
                        shown(head.topic)
                    )
                });
                return false;
            }
            out.extend_from_slice(p);
        }
        packet::SUBSCRIBE => {
            let sub = match packet::parse_subscribe(p) {
                Ok(s) => s,
                Err(e) => {
                    not_mqtt(ctx, who, &e);
                    return false;
                }
            };
            let allowed: Vec<bool> = sub
                .filters
                .iter()
                .map(|(f, _)| ctx.rights.may_subscribe(f))
                .collect();
            // a guard post reading the events: the sink may stop holding them once the
            // broker's SUBACK is on its way back (`crate::sinks::mqtt::Readers`)
            if sub
                .filters
                .iter()
                .zip(&allowed)
                .any(|((f, _), a)| *a && ctx.readers.wants(f))
            {
                let _ = notes.send(Note::Reader { pkid: sub.pkid });
            }
            if allowed.iter().all(|a| *a) {
                out.extend_from_slice(p);
                return true;
            }
            let refused: Vec<String> = sub
                .filters
                .iter()
                .zip(&allowed)
                .filter(|(_, a)| !**a)
                .map(|((f, _), _)| format!("`{}`", shown(f)))
                .collect();
            ctx.refused(who.ip, Cause::Subscribe, || {
                format!(
                    "MQTT: {who} may not subscribe to {} (only {}/... may be read): answered \
                     0x80",
                    refused.join(", "),
                    ctx.rights.prefix()
                )
            });
            if allowed.iter().any(|a| *a) {
                let narrowed = packet::Subscribe {
                    pkid: sub.pkid,
                    filters: sub
                        .filters
                        .into_iter()
                        .zip(&allowed)
                        .filter(|(_, a)| **a)
                        .map(|(f, _)| f)
                        .collect(),
                };
                // sent before the SUBSCRIBE goes on, so it is there before the SUBACK
                let _ = notes.send(Note::Narrowed {
                    pkid: sub.pkid,
                    allowed,
                });
                out.extend_from_slice(&packet::encode_subscribe(&narrowed));
            } else {
                let codes = vec![packet::SUBSCRIPTION_REFUSED; allowed.len()];
                let _ = notes.send(Note::Answer(packet::encode_suback(sub.pkid, &codes)));
            }
        }
        packet::CONNECT => {
            not_mqtt(
                ctx,
                who,
                &PacketError::Malformed("a second CONNECT on one connection"),
            );
            return false;
        }
        _ => out.extend_from_slice(p),
    }
    true
}

/// The SUBACK codes for every filter the client asked for: the broker's `codes` for the ones
/// that went on (in order), 0x80 for the ones the front refused.
pub(super) fn widen(allowed: &[bool], codes: &[u8]) -> Vec<u8> {
    let mut broker = codes.iter();
    allowed
        .iter()
        .map(|a| match a {
            true => broker
                .next()
                .copied()
                .unwrap_or(packet::SUBSCRIPTION_REFUSED),
            false => packet::SUBSCRIPTION_REFUSED,
        })
        .collect()
}
