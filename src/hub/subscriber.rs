//! The hub's MQTT subscriber: a persistent session on the city broker (`clean_session =
//! false`, a fixed client id), QoS 1 subscriptions to every village's topics, and manual
//! acknowledgements: a message is acknowledged (PUBACK) only once what it carries is committed
//! to the store, so a hub that crashes or loses power in between gets it again from the broker.
//!
//! No queue between the broker and the store: a message is stored before the next is read, so
//! while the store is slow the broker holds the rest (its in-flight window, then its queue for
//! the hub's session). Nothing is dropped on the way; a message that cannot be understood is
//! acknowledged and counted (sent again, it would be no better).

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, EventLoop, Packet, Publish, QoS, TlsConfiguration, Transport};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::HubError;
use super::message::{FILTERS, Message, parse};
use super::store::{HubStore, Stored};
use crate::backoff::Backoff;
use crate::sinks::MqttOptions;
use crate::sinks::mqtt::Tls;

/// Largest message taken (the villages send at most 256 KiB).
const MAX_PACKET: usize = 1 << 20;

/// What the pages and the log may know of the link.
#[derive(Debug, Default)]
pub struct LinkState {
    pub connected: AtomicBool,
    /// Events stored (new ids).
    pub events: AtomicU64,
    /// Events that were already stored (a village's resend after a broken link).
    pub duplicates: AtomicU64,
    /// Messages not understood (acknowledged, not stored).
    pub unreadable: AtomicU64,
    /// The store refuses writes (logged once until it writes again).
    pub store_failing: AtomicBool,
}

/// A rumqttc client and event loop for the hub's session on the broker of `o`.
pub fn client(o: &MqttOptions) -> Result<(AsyncClient, EventLoop), HubError> {
    let mut m = rumqttc::MqttOptions::new(&o.client_id, &o.host, o.port);
    m.set_keep_alive(o.keep_alive.max(Duration::from_secs(1)))
        // the broker keeps the session, the subscriptions and what arrives meanwhile
        .set_clean_session(false)
        .set_manual_acks(true)
        .set_max_packet_size(MAX_PACKET, MAX_PACKET);
    if o.username.is_some() || o.password.is_some() {
        m.set_credentials(
            o.username.clone().unwrap_or_default(),
            o.password.clone().unwrap_or_default(),
        );
    }
    if o.tls.is_some() {
        crate::sinks::mqtt::install_crypto_provider();
    }
    match &o.tls {
        None => {}
        Some(Tls::Ca { pem, .. }) => {
            m.set_transport(Transport::tls_with_config(TlsConfiguration::Simple {
                ca: pem.clone(),
                alpn: None,
                client_auth: None,
            }));
        }
        Some(Tls::SystemRoots) => {
            // rumqttc panics when the system has no CA certificates; say what to do instead
            let config = std::panic::catch_unwind(TlsConfiguration::default).map_err(|_| {
                HubError::Broker(format!(
                    "{}: this system has no CA certificates to check the broker with; set \
                     [broker] ca_file",
                    o.broker()
                ))
            })?;
            m.set_transport(Transport::tls_with_config(config));
        }
    }
    // Requests are the subscriptions and one acknowledgement per message read. The event loop
    // takes them only once it has handed out every packet it already read, so a burst (retained
    // state of many villages at once) can hold more acknowledgements than this: those wait in
    // the subscriber (`Subscriber::run`), never blocking it.
    let (client, mut eventloop) = AsyncClient::new(m, 256);
    eventloop
        .network_options
        .set_connection_timeout(o.connect_timeout.as_secs().max(1));
    Ok((client, eventloop))
}

/// The subscriber; run it on a thread of its own ([`Subscriber::run`] blocks on the store).
pub struct Subscriber {
    pub opts: MqttOptions,
    pub store: Arc<HubStore>,
    pub state: Arc<LinkState>,
    /// The configured villages: another site is stored too, and logged once.
    pub known: HashSet<String>,
    pub stop: CancellationToken,
}

impl Subscriber {
    pub async fn run(self, client: AsyncClient, mut eventloop: EventLoop) {
        let mut strangers: HashSet<String> = HashSet::new();
        let mut unreadable_logged: HashSet<String> = HashSet::new();
        let mut backoff = Backoff::new(self.opts.backoff_min, self.opts.backoff_max);
        let mut outage: Option<Instant> = None;
        let broker = self.opts.broker();
        // Acknowledgements of stored messages the request channel had no room for yet. Awaiting
        // room instead would deadlock: the channel is emptied only by `eventloop.poll()`, and
        // only after it has handed out the packets of a burst, which nobody would poll for.
        let mut unsent: VecDeque<Publish> = VecDeque::new();
        loop {
            while let Some(p) = unsent.front() {
                if client.try_ack(p).is_err() {
                    break;
                }
                unsent.pop_front();
            }
            let polled = tokio::select! {
                _ = self.stop.cancelled() => break,
                p = eventloop.poll() => p,
            };
            match polled {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    self.state.connected.store(true, Ordering::Relaxed);
                    backoff.reset();
                    match outage.take() {
                        Some(since) => info!(
                            broker = %broker,
                            "hub: the city broker is reachable again after {:.0} s",
                            since.elapsed().as_secs_f64()
                        ),
                        None => {
                            info!(broker = %broker, session_present = ack.session_present, "hub: connected to the city broker")
                        }
                    }
                    // again at every connect: a broker that lost the session (restarted
                    // without persistence) would otherwise send nothing
                    for f in FILTERS {
                        if let Err(e) = client.subscribe(f, QoS::AtLeastOnce).await {
                            warn!("hub: cannot subscribe to {f}: {e}");
                        }
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    // Until it is stored: the messages after it wait (per-village order), and
                    // if the broker meanwhile drops the silent connection, it sends this one
                    // again on the next, as one already stored then.
                    while !self.keep(&p.topic, &p.payload, &mut strangers, &mut unreadable_logged) {
                        if !self.wait_for_store().await {
                            break;
                        }
                    }
                    if self.stop.is_cancelled() {
                        break;
                    }
                    // only now: the broker forgets the message on this acknowledgement (in the
                    // order the messages came, after those still waiting for room)
                    if !unsent.is_empty() || client.try_ack(&p).is_err() {
                        unsent.push_back(p);
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    self.state.connected.store(false, Ordering::Relaxed);
                    // the broker sends what was not acknowledged again on the next connection;
                    // stored already, it is only acknowledged then
                    unsent.clear();
                    if outage.is_none() {
                        outage = Some(Instant::now());
                        warn!(broker = %broker, "hub: the city broker is unreachable ({e}); check [broker] url, username and the password variable; retrying");
                    } else {
                        debug!("hub: still unreachable: {e}");
                    }
                    let delay = backoff.next_delay();
                    tokio::select! {
                        _ = self.stop.cancelled() => break,
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
        self.state.connected.store(false, Ordering::Relaxed);
        // a clean goodbye; the session stays on the broker (clean_session = false)
        let _ = client.try_disconnect();
        let _ = tokio::time::timeout(Duration::from_millis(500), eventloop.poll()).await;
    }

    /// Store what a message says; `false` if the store failed (logged once per failure run).
    fn keep(
        &self,
        topic: &str,
        payload: &[u8],
        strangers: &mut HashSet<String>,
        unreadable_logged: &mut HashSet<String>,
    ) -> bool {
        let now = chrono::Utc::now().timestamp_millis();
        let msg = match parse(topic, payload) {
            Ok(m) => m,
            Err(why) => {
                self.state.unreadable.fetch_add(1, Ordering::Relaxed);
                let site = topic.split('/').nth(1).unwrap_or("").to_string();
                if unreadable_logged.insert(site) {
                    warn!(
                        topic = %crate::topic::shown(topic),
                        "hub: a message is not understood and is left out ({why}); further ones of this village are logged at debug"
                    );
                } else {
                    debug!(topic = %crate::topic::shown(topic), "hub: not understood ({why})");
                }
                return true;
            }
        };
        let site = msg.site().to_string();
        if !self.known.contains(&site) && strangers.insert(site.clone()) {
            info!(
                site = %crate::topic::shown(&site),
                "hub: a village not in the configuration publishes; it is shown as an unknown village (add it to [[villages]])"
            );
        }
        let r = match &msg {
            Message::Event(e) => self.store.add_event(e, now),
            Message::Status {
                site,
                camera,
                status,
            } => self.store.set_camera(
                site,
                camera,
                status.as_ref().map(|(s, j)| (s.as_str(), j.as_str())),
                now,
            ),
            Message::Counts {
                site,
                camera,
                line,
                counts,
            } => self.store.set_counts(
                site,
                camera,
                line,
                counts
                    .as_ref()
                    .map(|c| (c.count_in, c.count_out, c.occupancy, c.since.as_deref())),
                now,
            ),
            Message::Availability { site, value } => self.store.set_availability(site, value, now),
        };
        let ok = match r {
            Ok(Stored::New(seq)) => {
                self.state.events.fetch_add(1, Ordering::Relaxed);
                debug!(seq, site = %site, "hub: event stored");
                true
            }
            Ok(Stored::Duplicate) => {
                self.state.duplicates.fetch_add(1, Ordering::Relaxed);
                debug!(site = %site, "hub: event already stored");
                true
            }
            Ok(Stored::Updated) => true,
            Err(e) => {
                if self.state.store_failing.swap(true, Ordering::Relaxed) {
                    debug!("hub: still cannot store: {e}");
                } else {
                    warn!(
                        "hub: cannot store a message ({e}); nothing is acknowledged until it is stored, trying again every second"
                    );
                }
                false
            }
        };
        if ok && self.state.store_failing.swap(false, Ordering::Relaxed) {
            info!("hub: the store writes again");
        }
        ok
    }

    /// After a store failure: wait a little (the disk may come back); `false` when stopping
    /// (the message, not acknowledged, comes again from the broker to the next start).
    async fn wait_for_store(&self) -> bool {
        tokio::select! {
            _ = self.stop.cancelled() => false,
            _ = tokio::time::sleep(Duration::from_secs(1)) => true,
        }
    }
}
