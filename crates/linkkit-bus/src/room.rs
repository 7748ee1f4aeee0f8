//! Room in a queue: how far a producer may run ahead of the queue's consumers.
//!
//! A fan-out worker turns an event into a job per endpoint far faster than senders deliver
//! them. Left alone it empties the fan-out queue into the deliveries queue, and every job of a
//! burst then waits there, decided on what was known when the burst came in: an endpoint that
//! goes down meanwhile still has each of its jobs cross the broker only to be parked by a
//! sender, and RabbitMQ, which pages a deep queue to disk, spends more on every message. Held
//! to a bounded number of jobs waiting, the fan-out leaves the rest of a burst as events (one
//! message for many jobs) until the senders make room, and decides each job (sent or stored
//! parked) shortly before it can go.
//!
//! The queue's depth is read every [`SAMPLE_EVERY`] with a passive declare. To it the room adds
//! what this process has reserved and not yet published, and what it has published since the
//! reading was asked for: a batch whose publishing spans several readings is counted in each.
//! Jobs other processes publish between two readings are not seen, so with several processes
//! the bound is near, not exact. When the depth cannot be read, or the process is stopping,
//! the room holds nobody back: it only ever delays, never loses.

use std::sync::Mutex;
use std::time::Duration;

use lapin::Channel;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::queue_depth::inspect;
use crate::{Broker, BusError, Topology};

/// How often the queue's depth is read.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);

#[derive(Debug)]
pub struct QueueRoom {
    queue: String,
    /// Messages that may wait in the queue.
    limit: u32,
    state: Mutex<State>,
    changed: Notify,
    /// Producers wait in turn, so a large batch is not overtaken forever by small ones.
    turn: tokio::sync::Mutex<()>,
}

#[derive(Debug, Default)]
struct State {
    /// Messages ready in the queue at the last reading.
    waiting: u32,
    /// Messages reserved and not yet published.
    in_flight: u32,
    /// Messages published and not yet in a reading: since the last reading was asked for.
    published: u32,
    /// Nobody is held back: the process is stopping, or the last reading failed.
    open: bool,
}

impl QueueRoom {
    /// Room for `limit` messages waiting in `queue`.
    pub fn new(queue: String, limit: u32) -> Self {
        Self {
            queue,
            limit,
            state: Mutex::new(State::default()),
            changed: Notify::new(),
            turn: tokio::sync::Mutex::new(()),
        }
    }

    /// Waits, in turn with other producers of this process, until `count` more messages fit
    /// under the limit, and reserves them. A batch larger than the limit waits for an empty
    /// queue and then goes whole.
    pub async fn reserve(&self, count: u32) -> Reservation<'_> {
        if count == 0 {
            return self.reservation(0);
        }
        let needed = count.min(self.limit);
        let _turn = self.turn.lock().await;
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            {
                let mut state = self.lock();
                let taken = state
                    .waiting
                    .saturating_add(state.in_flight)
                    .saturating_add(state.published);
                if state.open || taken.saturating_add(needed) <= self.limit {
                    state.in_flight = state.in_flight.saturating_add(count);
                    return self.reservation(count);
                }
            }
            changed.await;
        }
    }

    /// Records a reading of the queue's depth, asked for when `published_before` messages
    /// had been published since the previous one: those are in it.
    fn sampled(&self, waiting: u32, published_before: u32) {
        {
            let mut state = self.lock();
            state.waiting = waiting;
            state.published = state.published.saturating_sub(published_before);
        }
        self.changed.notify_waiters();
    }

    /// From now on nobody waits (the process is stopping, or the depth cannot be read).
    fn open(&self) {
        self.lock().open = true;
        self.changed.notify_waiters();
    }

    /// Reads the queue's depth every [`SAMPLE_EVERY`] until `shutdown` fires, then opens the
    /// room so the messages in hand can finish. Each channel it opens first declares
    /// `topology`, so the queue exists before it is read.
    pub async fn keep_sampled(
        &self,
        broker: Broker,
        topology: Topology,
        shutdown: CancellationToken,
    ) {
        let mut ticks = tokio::time::interval(SAMPLE_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut channel: Option<Channel> = None;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = ticks.tick() => {}
            }
            let published_before = self.lock().published;
            match self.read_depth(&broker, &topology, &mut channel).await {
                Ok(waiting) => {
                    self.lock().open = false;
                    self.sampled(waiting, published_before);
                }
                Err(error) => {
                    // A queue that cannot be read must not stop the pipeline: the room holds
                    // nobody back until it can be read again.
                    tracing::debug!(queue = %self.queue, error = %error, "could not read the queue's depth");
                    channel = None;
                    self.open();
                }
            }
        }
        self.open();
        if let Some(channel) = channel {
            let _ = channel.close(200, "room no longer kept").await;
        }
    }

    async fn read_depth(
        &self,
        broker: &Broker,
        topology: &Topology,
        channel: &mut Option<Channel>,
    ) -> Result<u32, BusError> {
        let open = match channel.take() {
            Some(open) if open.status().connected() => open,
            _ => {
                let fresh = broker.channel().await?;
                topology.declare(&fresh).await?;
                fresh
            }
        };
        let declared = inspect(&open, &self.queue).await?;
        *channel = Some(open);
        Ok(declared.message_count())
    }

    fn reservation(&self, count: u32) -> Reservation<'_> {
        Reservation {
            room: self,
            reserved: count,
            published: 0,
        }
    }

    /// A reservation of `reserved` is over, `published` of its messages sent.
    fn settle(&self, reserved: u32, published: u32) {
        {
            let mut state = self.lock();
            state.in_flight = state.in_flight.saturating_sub(reserved);
            state.published = state.published.saturating_add(published);
        }
        self.changed.notify_waiters();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("the room is never poisoned")
    }
}

/// Room reserved for a batch; when it is dropped, what it did not publish goes back.
#[derive(Debug)]
pub struct Reservation<'a> {
    room: &'a QueueRoom,
    reserved: u32,
    published: u32,
}

impl Reservation<'_> {
    /// `published` messages went to the queue (more than reserved counts too); the rest of the
    /// reservation goes back.
    pub fn used(mut self, published: usize) {
        self.published = u32::try_from(published).unwrap_or(u32::MAX);
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.room.settle(self.reserved, self.published);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A reading of `waiting` messages that sees everything published so far.
    fn read(room: &QueueRoom, waiting: u32) {
        let published = room.lock().published;
        room.sampled(waiting, published);
    }

    async fn is_waiting<F: std::future::Future>(future: &mut std::pin::Pin<&mut F>) -> bool {
        tokio::time::timeout(Duration::from_millis(50), future.as_mut())
            .await
            .is_err()
    }

    #[tokio::test]
    async fn producers_wait_once_the_limit_is_reserved_and_go_when_a_sample_shows_room() {
        let room = QueueRoom::new("q".into(), 10);
        room.reserve(6).await.used(6);
        room.reserve(4).await.used(4);
        let next = room.reserve(1);
        tokio::pin!(next);
        assert!(is_waiting(&mut next).await, "ten reserved, none may follow");

        read(&room, 10);
        assert!(is_waiting(&mut next).await, "ten wait in the queue");
        read(&room, 3);
        next.await.used(1);
    }

    #[tokio::test]
    async fn an_unused_reservation_goes_back_and_a_larger_use_is_counted() {
        let room = QueueRoom::new("q".into(), 10);
        let reserved = room.reserve(8).await;
        reserved.used(2);
        room.reserve(8).await.used(8);
        let next = room.reserve(1);
        tokio::pin!(next);
        assert!(is_waiting(&mut next).await, "2 + 8 reserved");
        read(&room, 0);
        next.await.used(5);
        let after = room.reserve(6);
        tokio::pin!(after);
        assert!(
            is_waiting(&mut after).await,
            "a use of 5 on a reservation of 1 counts 5"
        );
    }

    #[tokio::test]
    async fn a_batch_larger_than_the_limit_goes_whole_into_an_empty_queue() {
        let room = QueueRoom::new("q".into(), 10);
        room.reserve(25).await.used(25);
        let next = room.reserve(25);
        tokio::pin!(next);
        assert!(is_waiting(&mut next).await);
        read(&room, 1);
        assert!(is_waiting(&mut next).await, "one message still waits");
        read(&room, 0);
        next.await.used(25);
    }

    #[tokio::test]
    async fn a_batch_still_being_published_counts_until_a_reading_has_it() {
        let room = QueueRoom::new("q".into(), 10);
        let slow = room.reserve(10).await;
        read(&room, 0);
        read(&room, 0);
        let next = room.reserve(1);
        tokio::pin!(next);
        assert!(
            is_waiting(&mut next).await,
            "ten on their way, however many readings miss them"
        );
        let asked = room.lock().published;
        slow.used(10);
        room.sampled(0, asked);
        assert!(
            is_waiting(&mut next).await,
            "published after the reading was asked for: not in it, still counted"
        );
        read(&room, 3);
        next.await.used(1);
    }

    #[tokio::test]
    async fn producers_take_turns_so_a_large_batch_is_not_overtaken() {
        let room = Arc::new(QueueRoom::new("q".into(), 10));
        room.reserve(10).await.used(10);
        let large = tokio::spawn({
            let room = room.clone();
            async move { room.reserve(8).await.used(8) }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let small = tokio::spawn({
            let room = room.clone();
            async move { room.reserve(1).await.used(1) }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        read(&room, 5);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !large.is_finished() && !small.is_finished(),
            "room for five: the large batch waits, and the small one waits behind it"
        );
        read(&room, 0);
        large.await.unwrap();
        small.await.unwrap();
    }

    #[tokio::test]
    async fn an_open_room_holds_nobody_back() {
        let room = QueueRoom::new("q".into(), 10);
        room.reserve(10).await.used(10);
        let next = room.reserve(3);
        tokio::pin!(next);
        assert!(is_waiting(&mut next).await);
        room.open();
        next.await.used(3);
    }
}
