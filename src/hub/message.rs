//! What a message on the city broker means: its topic (`ronda/<site>/...`, the villages'
//! `[uplink]` topics) and payload read into what the store keeps. Pure, no I/O.

use serde_json::Value;

use super::store::NewEvent;

/// The subscriptions: every village's topics (QoS 1).
pub const FILTERS: [&str; 4] = [
    "ronda/+/events",
    "ronda/+/cameras/+/status",
    "ronda/+/availability",
    "ronda/+/lines/+/+/counts",
];

/// One message, understood.
#[derive(Clone, Debug, PartialEq)]
pub enum Message {
    Event(NewEvent),
    /// `None`: the retained status was cleared (the camera left the village's file).
    Status {
        site: String,
        camera: String,
        status: Option<(String, String)>,
    },
    Counts {
        site: String,
        camera: String,
        line: String,
        counts: Option<Counts>,
    },
    Availability {
        site: String,
        value: String,
    },
}

impl Message {
    pub fn site(&self) -> &str {
        match self {
            Message::Event(e) => &e.site,
            Message::Status { site, .. }
            | Message::Counts { site, .. }
            | Message::Availability { site, .. } => site,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Counts {
    pub count_in: i64,
    pub count_out: i64,
    pub occupancy: i64,
    pub since: Option<String>,
}

/// Why a message was not understood (it is acknowledged all the same: sent again, it would be
/// no better).
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum Unreadable {
    #[error("not a village topic")]
    Topic,
    #[error("the payload is not what the topic carries: {0}")]
    Payload(&'static str),
}

/// The longest event id taken (the villages' are 21 characters).
const MAX_ID: usize = 128;

pub fn parse(topic: &str, payload: &[u8]) -> Result<Message, Unreadable> {
    let levels: Vec<&str> = topic.split('/').collect();
    let site = match levels.as_slice() {
        ["ronda", site, ..] if !site.is_empty() => site.to_string(),
        _ => return Err(Unreadable::Topic),
    };
    match &levels[2..] {
        ["events"] => parse_event(site, payload).map(Message::Event),
        ["availability"] => {
            let value = std::str::from_utf8(payload)
                .map_err(|_| Unreadable::Payload("availability is not text"))?
                .trim();
            match value {
                "online" | "offline" => Ok(Message::Availability {
                    site,
                    value: value.to_string(),
                }),
                _ => Err(Unreadable::Payload("availability is not online/offline")),
            }
        }
        ["cameras", camera, "status"] => {
            let status = if payload.is_empty() {
                None
            } else {
                let v: Value = serde_json::from_slice(payload)
                    .map_err(|_| Unreadable::Payload("camera status is not JSON"))?;
                let state = v["state"]
                    .as_str()
                    .ok_or(Unreadable::Payload("camera status without `state`"))?;
                Some((state.to_string(), v.to_string()))
            };
            Ok(Message::Status {
                site,
                camera: camera.to_string(),
                status,
            })
        }
        ["lines", camera, line, "counts"] => {
            let counts = if payload.is_empty() {
                None
            } else {
                let v: Value = serde_json::from_slice(payload)
                    .map_err(|_| Unreadable::Payload("counts are not JSON"))?;
                let n = |k: &str| {
                    v[k].as_i64()
                        .ok_or(Unreadable::Payload("counts without in/out/occupancy"))
                };
                Some(Counts {
                    count_in: n("in")?,
                    count_out: n("out")?,
                    occupancy: n("occupancy")?,
                    since: v["since"].as_str().map(String::from),
                })
            };
            Ok(Message::Counts {
                site,
                camera: camera.to_string(),
                line: line.to_string(),
                counts,
            })
        }
        _ => Err(Unreadable::Topic),
    }
}

/// An event of `site` (the topic's site is the one kept: the city broker's rights tie a
/// village's login to its own topics, not to what its payload says).
fn parse_event(site: String, payload: &[u8]) -> Result<NewEvent, Unreadable> {
    let v: Value =
        serde_json::from_slice(payload).map_err(|_| Unreadable::Payload("event is not JSON"))?;
    let id = v["id"]
        .as_str()
        .filter(|id| {
            !id.is_empty()
                && id.len() <= MAX_ID
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
        .ok_or(Unreadable::Payload("event without a plain `id`"))?;
    let text = |k: &str| v[k].as_str().unwrap_or("").to_string();
    let link = |k: &str| v[k].as_str().filter(|s| !s.is_empty()).map(String::from);
    Ok(NewEvent {
        id: id.to_string(),
        site,
        camera: text("camera"),
        kind: text("type"),
        severity: text("severity"),
        time: text("time"),
        clip: link("clip"),
        snapshot: link("snapshot"),
        json: v.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_of_the_villages_are_read() {
        let e = parse(
            "ronda/rw9/events",
            br#"{"schema":1,"id":"17954321788830000ab","site":"rw9","camera":"gate-1","type":"intrusion","severity":"alert","time":"t","clip":"/api/incidents/17954321788830000ab/clip.mp4","snapshot":null}"#,
        )
        .unwrap();
        let Message::Event(e) = e else { panic!() };
        assert_eq!((e.site.as_str(), e.kind.as_str()), ("rw9", "intrusion"));
        assert_eq!(
            e.clip.as_deref(),
            Some("/api/incidents/17954321788830000ab/clip.mp4")
        );
        assert_eq!(e.snapshot, None);
        assert_eq!(
            parse("ronda/rw9/availability", b"offline").unwrap(),
            Message::Availability {
                site: "rw9".into(),
                value: "offline".into()
            }
        );
        let Message::Status { status, camera, .. } = parse(
            "ronda/rw9/cameras/gate-1/status",
            br#"{"state":"online","fps":null}"#,
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(camera, "gate-1");
        assert_eq!(status.unwrap().0, "online");
        let Message::Counts { line, counts, .. } = parse(
            "ronda/rw9/lines/gate-1/Gapura utama/counts",
            br#"{"in":3,"out":1,"occupancy":2,"since":"s"}"#,
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(line, "Gapura utama");
        assert_eq!(counts.unwrap().occupancy, 2);
        let Message::Counts { counts, .. } =
            parse("ronda/rw9/lines/gate-1/gate/counts", b"").unwrap()
        else {
            panic!()
        };
        assert_eq!(counts, None, "an empty retained message clears the line");
    }

    #[test]
    fn other_topics_and_broken_payloads_are_refused() {
        assert_eq!(parse("ronda/rw9/acks", b"{}"), Err(Unreadable::Topic));
        assert_eq!(parse("other/rw9/events", b"{}"), Err(Unreadable::Topic));
        assert!(parse("ronda/rw9/events", b"{\"id\": \"../../x\"}").is_err());
        assert!(parse("ronda/rw9/events", b"not json").is_err());
        assert!(parse("ronda/rw9/availability", b"maybe").is_err());
        assert!(parse("ronda/rw9/lines/gate-1/gate/counts", b"{\"in\":1}").is_err());
    }
}
