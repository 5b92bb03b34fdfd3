//! Just enough of MQTT 3.1.1's wire format for the broker's front ([`super::front`]): where a
//! packet ends in a byte stream, and the packets the front looks into or writes itself
//! (CONNECT, CONNACK, PUBLISH, PUBACK, SUBSCRIBE, SUBACK, UNSUBSCRIBE; PUBLISH and SUBSCRIBE also
//! for restoring the guard apps' sessions at a start, `super::restore`). Everything else crosses
//! the front as bytes, unread.
//!
//! Why by hand: rumqttd has users but no per-topic rights, and what the front decides on is a
//! few fields of three packet types; a parser of our own, tested against hostile input, is
//! smaller than bending a client or broker library into a proxy. Pure functions, no I/O.

/// Packet types (the high four bits of the first byte).
pub const CONNECT: u8 = 1;
pub const PUBLISH: u8 = 3;
pub const PUBACK: u8 = 4;
pub const SUBSCRIBE: u8 = 8;
pub const SUBACK: u8 = 9;
pub const UNSUBSCRIBE: u8 = 10;

/// CONNACK return codes of MQTT 3.1.1.
pub const UNACCEPTABLE_VERSION: u8 = 0x01;
pub const IDENTIFIER_REJECTED: u8 = 0x02;
pub const SERVER_UNAVAILABLE: u8 = 0x03;
pub const BAD_LOGIN: u8 = 0x04;
pub const NOT_AUTHORIZED: u8 = 0x05;
/// MQTT 5's CONNACK reason code "Unsupported Protocol Version".
pub const V5_UNSUPPORTED_VERSION: u8 = 0x84;
/// A SUBACK's return code for a filter the server refused.
pub const SUBSCRIPTION_REFUSED: u8 = 0x80;

/// Why bytes are not the packet they claim to be.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    #[error("the packet length takes more than 4 bytes")]
    BadLength,
    #[error("a packet of {size} bytes, more than the {max} taken")]
    TooLarge { size: usize, max: usize },
    #[error("a {0} packet that ends too early")]
    Truncated(&'static str),
    #[error("a {0} packet with text that is not UTF-8")]
    NotText(&'static str),
    #[error("{0}")]
    Malformed(&'static str),
}

/// The type of the packet starting with `first` (its first byte).
pub fn kind(first: u8) -> u8 {
    first >> 4
}

/// The length of the whole packet at the start of `buf` once all of it is there (`None`: more
/// bytes are needed). A packet over `max` bytes is an error as soon as its length is read, so
/// a client cannot make the front buffer more than that.
pub fn frame_len(buf: &[u8], max: usize) -> Result<Option<usize>, PacketError> {
    let mut len = 0usize;
    for i in 1..=4 {
        let Some(&b) = buf.get(i) else {
            return Ok(None);
        };
        len += usize::from(b & 0x7f) << (7 * (i - 1));
        if b & 0x80 == 0 {
            let total = 1 + i + len;
            if total > max {
                return Err(PacketError::TooLarge { size: total, max });
            }
            return Ok((buf.len() >= total).then_some(total));
        }
    }
    Err(PacketError::BadLength)
}

/// Fixed header `first` and the remaining length, then `body`.
fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 5);
    out.push(first);
    let mut len = body.len();
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if len == 0 {
            break;
        }
    }
    out.extend_from_slice(body);
    out
}

/// The bytes after the fixed header of a whole packet (as [`frame_len`] cut it).
fn body(p: &[u8]) -> &[u8] {
    let len_bytes = p[1..]
        .iter()
        .take(4)
        .take_while(|b| **b & 0x80 != 0)
        .count()
        + 1;
    p.get(1 + len_bytes..).unwrap_or_default()
}

/// Reads fields front to back, every read checked against the end.
struct Fields<'a> {
    rest: &'a [u8],
    what: &'static str,
}

impl<'a> Fields<'a> {
    fn u8(&mut self) -> Result<u8, PacketError> {
        let (&b, rest) = self
            .rest
            .split_first()
            .ok_or(PacketError::Truncated(self.what))?;
        self.rest = rest;
        Ok(b)
    }

    fn u16(&mut self) -> Result<u16, PacketError> {
        Ok(u16::from_be_bytes([self.u8()?, self.u8()?]))
    }

    fn bytes(&mut self) -> Result<&'a [u8], PacketError> {
        let n = usize::from(self.u16()?);
        if self.rest.len() < n {
            return Err(PacketError::Truncated(self.what));
        }
        let (b, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(b)
    }

    fn text(&mut self) -> Result<&'a str, PacketError> {
        std::str::from_utf8(self.bytes()?).map_err(|_| PacketError::NotText(self.what))
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    // MQTT strings are at most 65,535 bytes: longer ones were never parsed from a packet
    let b = &b[..b.len().min(usize::from(u16::MAX))];
    out.extend_from_slice(&(b.len() as u16).to_be_bytes());
    out.extend_from_slice(b);
}

/// A client's last will.
#[derive(Clone, PartialEq, Eq)]
pub struct Will {
    pub topic: String,
    pub message: Vec<u8>,
    pub qos: u8,
    pub retain: bool,
}

/// An MQTT 3.1.1 CONNECT.
#[derive(Clone, PartialEq, Eq)]
pub struct Connect {
    pub clean_session: bool,
    pub keep_alive: u16,
    pub client_id: String,
    pub will: Option<Will>,
    pub username: Option<String>,
    pub password: Option<Vec<u8>>,
}

impl std::fmt::Debug for Connect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connect")
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("will", &self.will.as_ref().map(|w| &w.topic))
            .finish_non_exhaustive()
    }
}

/// What the first packet of a connection says.
#[derive(Debug, PartialEq, Eq)]
pub enum Hello {
    /// MQTT 3.1.1, the one version the front (and rumqttd's listener behind it) speaks.
    Mqtt311(Connect),
    /// Another protocol level: 3 is MQTT 3.1, 5 is MQTT 5. Answered with a refusal the client
    /// understands.
    OtherVersion(u8),
}

/// Read a whole CONNECT packet.
pub fn parse_connect(p: &[u8]) -> Result<Hello, PacketError> {
    const WHAT: &str = "CONNECT";
    if p.first() != Some(&0x10) {
        return Err(PacketError::Malformed("the first packet is not a CONNECT"));
    }
    let mut f = Fields {
        rest: body(p),
        what: WHAT,
    };
    let name = f.bytes()?;
    let level = f.u8()?;
    match (name, level) {
        (b"MQTT", 4) => {}
        (b"MQTT", l) | (b"MQIsdp", l) => return Ok(Hello::OtherVersion(l)),
        _ => {
            return Err(PacketError::Malformed(
                "not an MQTT CONNECT (protocol name)",
            ));
        }
    }
    let flags = f.u8()?;
    if flags & 0x01 != 0 {
        return Err(PacketError::Malformed(
            "CONNECT flags: the reserved bit is set",
        ));
    }
    let keep_alive = f.u16()?;
    let client_id = f.text()?.to_string();
    let will = if flags & 0x04 != 0 {
        let qos = (flags >> 3) & 0x03;
        if qos == 3 {
            return Err(PacketError::Malformed("CONNECT: a will with QoS 3"));
        }
        Some(Will {
            topic: f.text()?.to_string(),
            message: f.bytes()?.to_vec(),
            qos,
            retain: flags & 0x20 != 0,
        })
    } else {
        if flags & 0x38 != 0 {
            return Err(PacketError::Malformed(
                "CONNECT: will QoS or retain set without a will",
            ));
        }
        None
    };
    let username = (flags & 0x80 != 0)
        .then(|| f.text().map(str::to_string))
        .transpose()?;
    let password = (flags & 0x40 != 0)
        .then(|| f.bytes().map(<[u8]>::to_vec))
        .transpose()?;
    if password.is_some() && username.is_none() {
        return Err(PacketError::Malformed(
            "CONNECT: a password without a user name",
        ));
    }
    Ok(Hello::Mqtt311(Connect {
        clean_session: flags & 0x02 != 0,
        keep_alive,
        client_id,
        will,
        username,
        password,
    }))
}

/// The CONNECT for `c`, as the front sends it on to the broker (with its own login).
pub fn encode_connect(c: &Connect) -> Vec<u8> {
    let mut flags = 0u8;
    if c.username.is_some() {
        flags |= 0x80;
    }
    if c.password.is_some() {
        flags |= 0x40;
    }
    if let Some(w) = &c.will {
        flags |= 0x04 | (w.qos.min(2) << 3);
        if w.retain {
            flags |= 0x20;
        }
    }
    if c.clean_session {
        flags |= 0x02;
    }
    let mut b = vec![0, 4, b'M', b'Q', b'T', b'T', 4, flags];
    b.extend_from_slice(&c.keep_alive.to_be_bytes());
    put_bytes(&mut b, c.client_id.as_bytes());
    if let Some(w) = &c.will {
        put_bytes(&mut b, w.topic.as_bytes());
        put_bytes(&mut b, &w.message);
    }
    if let Some(u) = &c.username {
        put_bytes(&mut b, u.as_bytes());
    }
    if let Some(p) = &c.password {
        put_bytes(&mut b, p);
    }
    packet(0x10, &b)
}

/// An MQTT 3.1.1 CONNACK with `code` (0: accepted).
pub fn connack(code: u8) -> [u8; 4] {
    [0x20, 2, 0, code]
}

/// An MQTT 5 CONNACK with reason `code` and no properties: what an MQTT 5 client understands
/// as "not this version" (it cannot read a 3.1.1 CONNACK's refusal).
pub fn connack_v5(code: u8) -> [u8; 5] {
    [0x20, 3, 0, code, 0]
}

/// What the front needs of a PUBLISH: where it goes, and whether it is retained.
#[derive(Debug, PartialEq, Eq)]
pub struct PublishHead<'a> {
    pub topic: &'a str,
    pub qos: u8,
    pub retain: bool,
}

/// The topic and flags of a whole PUBLISH packet.
pub fn publish_head(p: &[u8]) -> Result<PublishHead<'_>, PacketError> {
    let qos = (p[0] >> 1) & 0x03;
    if qos == 3 {
        return Err(PacketError::Malformed("PUBLISH with QoS 3"));
    }
    let mut f = Fields {
        rest: body(p),
        what: "PUBLISH",
    };
    Ok(PublishHead {
        topic: f.text()?,
        qos,
        retain: p[0] & 0x01 != 0,
    })
}

/// A SUBSCRIBE: its packet id and each filter with the QoS asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscribe {
    pub pkid: u16,
    pub filters: Vec<(String, u8)>,
}

pub fn parse_subscribe(p: &[u8]) -> Result<Subscribe, PacketError> {
    if p[0] != 0x82 {
        return Err(PacketError::Malformed("SUBSCRIBE with wrong header flags"));
    }
    let mut f = Fields {
        rest: body(p),
        what: "SUBSCRIBE",
    };
    let pkid = f.u16()?;
    let mut filters = Vec::new();
    while !f.rest.is_empty() {
        let filter = f.text()?.to_string();
        let qos = f.u8()?;
        if qos > 2 {
            return Err(PacketError::Malformed("SUBSCRIBE with a QoS above 2"));
        }
        filters.push((filter, qos));
    }
    if filters.is_empty() {
        return Err(PacketError::Malformed("SUBSCRIBE without a filter"));
    }
    Ok(Subscribe { pkid, filters })
}

pub fn encode_subscribe(s: &Subscribe) -> Vec<u8> {
    let mut b = s.pkid.to_be_bytes().to_vec();
    for (filter, qos) in &s.filters {
        put_bytes(&mut b, filter.as_bytes());
        b.push(*qos);
    }
    packet(0x82, &b)
}

/// A SUBACK's packet id and return codes (one per filter of its SUBSCRIBE, in order).
pub fn parse_suback(p: &[u8]) -> Result<(u16, Vec<u8>), PacketError> {
    let mut f = Fields {
        rest: body(p),
        what: "SUBACK",
    };
    let pkid = f.u16()?;
    Ok((pkid, f.rest.to_vec()))
}

pub fn encode_suback(pkid: u16, codes: &[u8]) -> Vec<u8> {
    let mut b = pkid.to_be_bytes().to_vec();
    b.extend_from_slice(codes);
    packet(0x90, &b)
}

/// A whole PUBLISH: where it goes, its QoS, its packet id (QoS 1 and 2 only) and its message.
#[derive(Debug, PartialEq, Eq)]
pub struct Publish<'a> {
    pub topic: &'a str,
    pub qos: u8,
    pub pkid: Option<u16>,
    pub payload: &'a [u8],
}

pub fn parse_publish(p: &[u8]) -> Result<Publish<'_>, PacketError> {
    let head = publish_head(p)?;
    let mut f = Fields {
        rest: body(p),
        what: "PUBLISH",
    };
    f.text()?;
    let pkid = match head.qos {
        0 => None,
        _ => Some(f.u16()?),
    };
    Ok(Publish {
        topic: head.topic,
        qos: head.qos,
        pkid,
        payload: f.rest,
    })
}

/// A QoS 1 PUBLISH, not retained.
pub fn encode_publish(topic: &str, pkid: u16, payload: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(topic.len() + payload.len() + 4);
    put_bytes(&mut b, topic.as_bytes());
    b.extend_from_slice(&pkid.to_be_bytes());
    b.extend_from_slice(payload);
    packet(0x32, &b)
}

/// The packet id of a PUBACK.
pub fn parse_puback(p: &[u8]) -> Result<u16, PacketError> {
    Fields {
        rest: body(p),
        what: "PUBACK",
    }
    .u16()
}

/// The filters an UNSUBSCRIBE gives up.
pub fn parse_unsubscribe(p: &[u8]) -> Result<Vec<String>, PacketError> {
    let mut f = Fields {
        rest: body(p),
        what: "UNSUBSCRIBE",
    };
    f.u16()?;
    let mut filters = Vec::new();
    while !f.rest.is_empty() {
        filters.push(f.text()?.to_string());
    }
    Ok(filters)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn connect() -> Connect {
        Connect {
            clean_session: true,
            keep_alive: 30,
            client_id: "pos-1".into(),
            will: Some(Will {
                topic: "ronda/rw9/acks".into(),
                message: b"gone".to_vec(),
                qos: 1,
                retain: false,
            }),
            username: Some("pos1".into()),
            password: Some(b"rahasia".to_vec()),
        }
    }

    #[test]
    fn a_connect_reads_back_as_written() {
        let c = connect();
        let bytes = encode_connect(&c);
        assert_eq!(frame_len(&bytes, 1024), Ok(Some(bytes.len())));
        assert_eq!(parse_connect(&bytes), Ok(Hello::Mqtt311(c.clone())));
        let bare = Connect {
            will: None,
            username: None,
            password: None,
            ..c
        };
        assert_eq!(
            parse_connect(&encode_connect(&bare)),
            Ok(Hello::Mqtt311(bare))
        );
        assert!(!format!("{:?}", connect()).contains("rahasia"));
    }

    #[test]
    fn other_versions_are_told_apart() {
        let mut v5 = encode_connect(&connect());
        v5[8] = 5;
        assert_eq!(parse_connect(&v5), Ok(Hello::OtherVersion(5)));
        // MQTT 3.1: "MQIsdp", level 3
        let v31 = packet(
            0x10,
            &[0, 6, b'M', b'Q', b'I', b's', b'd', b'p', 3, 2, 0, 5],
        );
        assert_eq!(parse_connect(&v31), Ok(Hello::OtherVersion(3)));
        let http = b"GET / HTTP/1.1\r\n";
        assert!(parse_connect(http).is_err());
    }

    #[test]
    fn lengths_are_framed_as_mqtt_writes_them() {
        assert_eq!(frame_len(&[], 10), Ok(None));
        assert_eq!(frame_len(&[0xc0], 10), Ok(None));
        assert_eq!(frame_len(&[0xc0, 0], 10), Ok(Some(2)));
        assert_eq!(frame_len(&[0x30, 3, 0, 1], 10), Ok(None));
        // 321 = 0xC1 0x02
        let big = packet(0x30, &[7; 321]);
        assert_eq!(&big[..3], [0x30, 0xC1, 0x02]);
        assert_eq!(frame_len(&big, 1000), Ok(Some(324)));
        assert_eq!(
            frame_len(&big, 100),
            Err(PacketError::TooLarge {
                size: 324,
                max: 100
            })
        );
        assert_eq!(
            frame_len(&[0x30, 0xff, 0xff, 0xff, 0xff, 1], usize::MAX),
            Err(PacketError::BadLength)
        );
    }

    #[test]
    fn publish_subscribe_and_suback() {
        // QoS 1, retained, topic "a/b", packet id 7, payload "x"
        let p = packet(0x33, &[0, 3, b'a', b'/', b'b', 0, 7, b'x']);
        assert_eq!(
            publish_head(&p),
            Ok(PublishHead {
                topic: "a/b",
                qos: 1,
                retain: true
            })
        );
        let s = Subscribe {
            pkid: 9,
            filters: vec![("#".into(), 1), ("ronda/rw9/#".into(), 0)],
        };
        assert_eq!(parse_subscribe(&encode_subscribe(&s)), Ok(s));
        let a = encode_suback(9, &[0x80, 0]);
        assert_eq!(a, [0x90, 4, 0, 9, 0x80, 0]);
        assert_eq!(parse_suback(&a), Ok((9, vec![0x80, 0])));
    }

    #[test]
    fn whole_publish_puback_and_unsubscribe() {
        let p = encode_publish("ronda/rw9/events", 300, b"{\"id\":\"x\"}");
        assert_eq!(
            parse_publish(&p),
            Ok(Publish {
                topic: "ronda/rw9/events",
                qos: 1,
                pkid: Some(300),
                payload: b"{\"id\":\"x\"}",
            })
        );
        let q0 = packet(0x30, &[0, 1, b'a', b'h', b'i']);
        assert_eq!(
            parse_publish(&q0),
            Ok(Publish {
                topic: "a",
                qos: 0,
                pkid: None,
                payload: b"hi",
            })
        );
        assert_eq!(parse_puback(&[0x40, 2, 1, 44]), Ok(300));
        assert!(parse_puback(&[0x40, 1, 1]).is_err());
        let u = packet(0xa2, &[0, 5, 0, 1, b'#', 0, 3, b'a', b'/', b'b']);
        assert_eq!(parse_unsubscribe(&u), Ok(vec!["#".into(), "a/b".into()]));
    }

    proptest! {
        /// Whatever a client sends, the parsers answer (an error or a packet), never panic.
        #[test]
        fn hostile_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(Some(n)) = frame_len(&bytes, 1 << 20) {
                let p = &bytes[..n];
                let _ = parse_connect(p);
                let _ = publish_head(p);
                let _ = parse_subscribe(p);
                let _ = parse_suback(p);
                let _ = parse_publish(p);
                let _ = parse_puback(p);
                let _ = parse_unsubscribe(p);
            }
        }

        /// Framed random bodies: the header is right, the fields inside are anything.
        #[test]
        fn hostile_bodies_never_panic(first in any::<u8>(), body in proptest::collection::vec(any::<u8>(), 0..300)) {
            let p = packet(first, &body);
            prop_assert_eq!(frame_len(&p, 1 << 20), Ok(Some(p.len())));
            let _ = parse_connect(&p);
            let _ = publish_head(&p);
            let _ = parse_subscribe(&p);
            let _ = parse_suback(&p);
            let _ = parse_publish(&p);
            let _ = parse_puback(&p);
            let _ = parse_unsubscribe(&p);
        }
    }
}
